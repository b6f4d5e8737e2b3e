"""Image decoding: type from content, formats, orientation, limits and broken files."""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from hashwatch.errors import DecodeError
from hashwatch.signals.image import (
    DEFAULT_MAX_PIXELS,
    IMAGE_MEDIA_TYPES,
    AxisMap,
    decode_image,
    sniff_media_type,
)
from hashwatch.signals.pdq import FAST, REFERENCE, ZERO_HASH, PdqPolicy, compute_pdq, pdq_distance

DATA = Path(__file__).parent / "data" / "pdq"
BRIDGE = DATA / "dih" / "bridge-1-original.jpg"
POLICIES = [FAST, REFERENCE]
T = Image.Transpose


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()  # the encoder; hashwatch registers the decoder itself
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bridge() -> Image.Image:
    return Image.open(BRIDGE).convert("RGB")


# ------------------------------------------------------------------------------- sniffing

SMALL = Image.new("RGB", (40, 30), (10, 200, 30))


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
        ("HEIF", "image/heic"),
        ("AVIF", "image/avif"),
    ],
)
def test_sniff_from_content(fmt: str, media_type: str) -> None:
    data = _encode(SMALL, fmt)
    assert sniff_media_type(data[:32]) == media_type
    assert media_type in IMAGE_MEDIA_TYPES
    assert decode_image(data).media_type == media_type


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff\xd8",
        b"BM" + b"\0" * 30,
        b"MZ\x90\x00" + b"\0" * 28,
        b"\0\0\0\x18ftypmp42" + b"\0" * 20,
    ],
    ids=["empty", "short-jpeg", "bm-without-dib", "exe", "mp4"],
)
def test_sniff_rejects_what_is_not_an_image(head: bytes) -> None:
    assert sniff_media_type(head) is None


def test_sniff_heif_by_compatible_brand() -> None:
    head = b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"
    assert sniff_media_type(head) == "image/heic"
    assert sniff_media_type(b"\0\0\0\x14ftypmif1\0\0\0\0mif1") == "image/heif"


def test_type_comes_from_content_not_name(tmp_path: Path) -> None:
    as_dll = tmp_path / "system32.dll"
    as_dll.write_bytes(BRIDGE.read_bytes())
    png_as_jpg = tmp_path / "photo.jpg"
    png_as_jpg.write_bytes(_encode(Image.open(BRIDGE), "PNG"))
    text_as_png = tmp_path / "notes.png"
    text_as_png.write_bytes(b"just some text, not a picture\n" * 4)

    dll = compute_pdq(as_dll)
    assert dll.media_type == "image/jpeg"
    assert dll.hash == compute_pdq(BRIDGE).hash
    png = compute_pdq(png_as_jpg)
    assert png.media_type == "image/png"
    assert pdq_distance(png.hash, dll.hash) <= 8
    with pytest.raises(DecodeError, match="not a supported image format"):
        compute_pdq(text_as_png)


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("HEIF", {"quality": 90}),
        ("GIF", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("WEBP", {"quality": 90}),
        ("AVIF", {"quality": 90}),
    ],
)
def test_generated_formats_hash_like_the_source(
    fmt: str, params: dict[str, object], bridge: Image.Image
) -> None:
    small = bridge.resize((800, 502), Image.Resampling.LANCZOS)
    baseline = compute_pdq(_encode(small, "PNG"), REFERENCE)
    data = _encode(small, fmt, **params)
    for policy in POLICIES:
        result = compute_pdq(data, policy)
        assert (result.width, result.height) == (800, 502)
        assert pdq_distance(result.hash, baseline.hash) <= 12, (fmt, policy.name)


def test_sources_bytes_path_and_streams_agree(tmp_path: Path) -> None:
    data = BRIDGE.read_bytes()
    expected = compute_pdq(data).hash
    assert compute_pdq(BRIDGE).hash == expected
    assert compute_pdq(str(BRIDGE)).hash == expected
    assert compute_pdq(bytearray(data)).hash == expected
    assert compute_pdq(memoryview(data)).hash == expected
    with BRIDGE.open("rb") as fh:
        assert compute_pdq(fh).hash == expected

    class OneWay(io.BytesIO):
        """A pipe-like stream: no seeking back to re-read the head."""

        def seekable(self) -> bool:
            return False

    assert compute_pdq(OneWay(data)).hash == expected
    with pytest.raises(DecodeError, match="cannot read"):
        compute_pdq(tmp_path / "missing.jpg")


def test_animated_gif_hashes_its_first_frame(bridge: Image.Image) -> None:
    first = bridge.resize((400, 251))
    second = first.transpose(T.ROTATE_180)
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    animated = compute_pdq(buf.getvalue())
    assert getattr(Image.open(io.BytesIO(buf.getvalue())), "n_frames", 1) == 2
    alone = compute_pdq(_encode(first, "GIF"))
    flipped = compute_pdq(_encode(second, "GIF"))
    assert pdq_distance(animated.hash, alone.hash) <= 4
    assert pdq_distance(animated.hash, flipped.hash) > 31


def test_animated_webp_hashes_its_first_frame(bridge: Image.Image) -> None:
    first = bridge.resize((400, 251))
    second = first.transpose(T.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    first.save(buf, "WEBP", save_all=True, append_images=[second], lossless=True)
    animated = compute_pdq(buf.getvalue(), REFERENCE)
    assert animated.hash == compute_pdq(_encode(first, "PNG"), REFERENCE).hash


# ---------------------------------------------------------------------------- orientation

# Stored pixels = the upright picture transformed by the inverse of the orientation.
STORE_FOR = {
    1: None,
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def _with_orientation(upright: Image.Image, orientation: int, fmt: str = "JPEG") -> bytes:
    op = STORE_FOR[orientation]
    stored = upright if op is None else upright.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(stored, fmt, exif=exif.tobytes(), **({"quality": 92} if fmt == "JPEG" else {}))


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_exif_orientation_6_hashes_like_the_upright_photo(
    policy: PdqPolicy, bridge: Image.Image
) -> None:
    upright = compute_pdq(_with_orientation(bridge, 1), policy)
    sideways = compute_pdq(_with_orientation(bridge, 6), policy)
    assert (sideways.width, sideways.height) == (1600, 1004)
    assert pdq_distance(sideways.hash, upright.hash) <= 4
    # What the orientation is for: the stored pixels alone hash far away.
    stored_only = compute_pdq(_encode(bridge.transpose(T.ROTATE_90), "JPEG", quality=92), policy)
    assert pdq_distance(stored_only.hash, upright.hash) > 31


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fast_follows_orientation_with_partial_blocks(
    orientation: int, bridge: Image.Image
) -> None:
    # 2003 x 1317 is no multiple of the 8 px blocks of a reduced decode: the partial block
    # comes first on a flipped axis. Measured 0 bits; a wrong block map gives 6-10.
    upright = bridge.resize((2003, 1317), Image.Resampling.BICUBIC)
    data = _with_orientation(upright, orientation)
    fast, ref = compute_pdq(data, FAST), compute_pdq(data, REFERENCE)
    assert (fast.width, fast.height) == (2003, 1317)
    assert pdq_distance(fast.hash, ref.hash) <= 4
    decoded = decode_image(data, FAST)
    assert decoded.orientation == orientation
    assert decoded.reduced


def test_png_exif_orientation(bridge: Image.Image) -> None:
    small = bridge.resize((400, 251))
    upright = compute_pdq(_encode(small, "PNG"))
    assert pdq_distance(compute_pdq(_with_orientation(small, 8, "PNG")).hash, upright.hash) <= 4


def test_broken_exif_is_ignored(bridge: Image.Image) -> None:
    data = _encode(bridge.resize((400, 251)), "JPEG", exif=b"Exif\0\0MM\0*\0\0\0\x08\xff\xff")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns "Corrupt EXIF data"
        result = compute_pdq(data)
    assert result.quality > 0 and (result.width, result.height) == (400, 251)


def test_axis_map_edges() -> None:
    assert AxisMap(10).edges() == list(range(11))
    assert AxisMap(10, 4).edges() == [0, 4, 8, 10]
    assert AxisMap(10, 4, reversed=True).edges() == [0, 2, 6, 10]
    assert AxisMap(10, 4).length == 3


# ---------------------------------------------------------------------------------- errors


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming ``width`` x ``height``, a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_decompression_bomb_is_rejected_before_decoding(policy: PdqPolicy) -> None:
    bomb = _png_header_only(100_000, 100_000)  # 10^10 px: 30 GB if it were decoded
    assert len(bomb) < 200
    start = time.perf_counter()
    with pytest.raises(DecodeError, match="decompression bomb"):
        compute_pdq(bomb, policy)
    assert time.perf_counter() - start < 1.0


def test_pixel_limit_is_configurable(bridge: Image.Image) -> None:
    data = _encode(bridge, "PNG")
    with pytest.raises(DecodeError, match="exceeds the limit of 1,000,000"):
        compute_pdq(data, max_pixels=1_000_000)
    assert compute_pdq(data, max_pixels=1600 * 1004).width == 1600
    assert DEFAULT_MAX_PIXELS == 178_956_970


def test_pillow_bomb_warning_turned_error_becomes_decode_error() -> None:
    header = _png_header_only(10_000, 10_000)  # above Pillow's warning level, below its error
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(DecodeError, match="decompression bomb"):
            decode_image(header)
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(DecodeError, match="exceeds the limit"),
    ):
        decode_image(header, max_pixels=50_000_000)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("name", "cut", "reason"),
    [
        ("half", 0.5, "truncated"),
        ("header", 1000, "truncated"),
        ("magic", 10, "corrupt"),
    ],
)
def test_truncated_jpeg(policy: PdqPolicy, name: str, cut: float, reason: str) -> None:
    data = BRIDGE.read_bytes()
    end = int(len(data) * cut) if cut < 1 else int(cut)
    with pytest.raises(DecodeError, match=reason):
        compute_pdq(data[:end], policy)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_garbage_and_empty_input(policy: PdqPolicy) -> None:
    rng = np.random.default_rng(7)
    with pytest.raises(DecodeError, match="not a supported image format"):
        compute_pdq(rng.bytes(10_000), policy)
    with pytest.raises(DecodeError, match="empty"):
        compute_pdq(b"", policy)
    with pytest.raises(DecodeError, match="not a readable image/jpeg"):
        compute_pdq(b"\xff\xd8\xff" + rng.bytes(3000), policy)
    with pytest.raises(DecodeError):
        compute_pdq(b"\x89PNG\r\n\x1a\n" + rng.bytes(3000), policy)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF"])
def test_damaged_files_raise_only_decode_error(fmt: str, bridge: Image.Image) -> None:
    data = _encode(bridge.resize((120, 80)), fmt)
    rng = np.random.default_rng(len(fmt))
    damaged = [data[:cut] for cut in np.linspace(12, len(data) - 1, 6).astype(int)]
    for _ in range(12):
        flipped = bytearray(data)
        for i in rng.integers(0, len(data), int(rng.integers(1, 12))):
            flipped[i] = int(rng.integers(0, 256))
        damaged.append(bytes(flipped))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about some damage it can read through
        for blob in damaged:
            for policy in POLICIES:
                try:
                    result = compute_pdq(blob, policy)
                except DecodeError:
                    continue
                assert len(result.hash) == 64


def test_corrupt_pixel_data_in_a_complete_file(bridge: Image.Image) -> None:
    data = bytearray(_encode(bridge.resize((400, 251)), "PNG"))
    data[200:260] = os.urandom(60)  # inside the compressed pixels: zlib or CRC must object
    with pytest.raises(DecodeError):
        compute_pdq(bytes(data), REFERENCE)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("size", [(3, 3), (4, 300), (300, 4)])
def test_tiny_images_hash_to_zero(policy: PdqPolicy, size: tuple[int, int]) -> None:
    data = _encode(Image.new("RGB", size, (200, 30, 30)), "PNG")
    result = compute_pdq(data, policy, dihedral=True)
    assert (result.hash, result.quality) == (ZERO_HASH, 0)
    assert result.dihedral == (ZERO_HASH,) * 8
    assert (result.width, result.height) == size


def test_five_pixels_is_hashable() -> None:
    rng = np.random.default_rng(3)
    grey = _encode(Image.fromarray(rng.integers(0, 256, (5, 5), dtype=np.uint8)), "PNG")
    fast, ref = compute_pdq(grey, FAST), compute_pdq(grey, REFERENCE)
    assert fast.hash == ref.hash != ZERO_HASH  # same pixels, same filter: identical
    assert fast.quality == ref.quality
    # In colour fast-1 rounds luma to 8 bits before filtering; 25 pixels leave few bits stable.
    colour = _encode(Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)), "PNG")
    assert pdq_distance(compute_pdq(colour, FAST).hash, compute_pdq(colour, REFERENCE).hash) <= 8
