"""A picture is decoded once for PDQ and its thumbnail, and the hashes do not change."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hashwatch.signals.hasher import HashOptions, hash_stream
from hashwatch.signals.image import decode_image
from hashwatch.signals.pdq import FAST, REFERENCE, compute_pdq, hash_decoded


def _photo(w: int, h: int, seed: int, fmt: str = "JPEG", orientation: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BILINEAR)
    noisy = np.asarray(img, np.int16) + rng.integers(-20, 21, (h, w, 3))
    picture = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    if fmt == "JPEG":
        picture.save(out, "JPEG", quality=85, exif=exif)
    else:
        picture.save(out, fmt, exif=exif)
    return out.getvalue()


CASES = [
    (320, 240, "JPEG", 1),  # decoded whole
    (1280, 960, "JPEG", 1),  # DCT-scaled by 2... 4
    (2400, 1800, "JPEG", 6),  # scaled and rotated by its EXIF orientation
    (900, 700, "PNG", 8),  # not a JPEG: box-averaged luma
]


@pytest.mark.parametrize(("w", "h", "fmt", "orientation"), CASES)
def test_the_colour_decode_hashes_exactly_like_the_luma_decode(
    w: int, h: int, fmt: str, orientation: int
) -> None:
    data = _photo(w, h, w + h, fmt, orientation)
    alone = compute_pdq(data, FAST, dihedral=True)
    decoded = decode_image(data, FAST, keep_colour=True)
    assert decoded.colour is not None and decoded.colour.mode in ("YCbCr", "RGB")
    # The colour picture is upright and no larger than the reduced decode.
    assert (decoded.colour.width >= decoded.colour.height) == (alone.width >= alone.height)
    assert decoded.colour.size[0] <= max(w, h)
    assert hash_decoded(decoded, FAST, dihedral=True) == alone


def test_a_scanned_picture_gets_its_thumbnail_from_the_same_decode() -> None:
    data = _photo(2400, 1800, 3, "JPEG", 6)  # stored landscape, shown portrait
    options = HashOptions(thumbnail=True, exif=True)
    signals = hash_stream(io.BytesIO(data), "p.jpg", len(data), options)
    assert signals.error is None and signals.pdq is not None
    assert signals.pdq == compute_pdq(data, FAST, dihedral=True)
    assert signals.thumbnail is not None
    with Image.open(io.BytesIO(signals.thumbnail)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 160
        assert thumb.height > thumb.width  # upright, as the orientation says


def test_the_reference_policy_still_hashes_at_full_size_with_a_thumbnail() -> None:
    data = _photo(640, 480, 9)
    options = HashOptions(thumbnail=True, policy="reference")
    signals = hash_stream(io.BytesIO(data), "p.jpg", len(data), options)
    assert signals.pdq == compute_pdq(data, REFERENCE, dihedral=True)
    assert signals.thumbnail is not None
