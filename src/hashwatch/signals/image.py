"""Image decoding for hashing: type from content, safe limits, EXIF orientation, reduced decode.

Why this module exists rather than a bare ``Image.open``:

* **Type from content.** Evidence files are often misnamed (a JPEG saved as ``.dll``, a PNG as
  ``.jpg``). :func:`sniff_media_type` looks only at the first bytes; the name is never used, and
  Pillow is told which single plug-in to use, so a file cannot be parsed by a format it does not
  claim to be.
* **Decode budget.** ``max_decode_pixels`` bounds the pixels one file may cost to decode (after
  a JPEG's DCT scaling; over all frames of an animation, :mod:`hashwatch.signals.animated`),
  checked from the header before any pixel is decoded; what exceeds it is refused with a
  :class:`~hashwatch.errors.DecodeBudgetError` saying so. The default, 2**28 pixels, lies above
  Pillow's per-picture limit, so it stops many large frames in a small file, not a still.
* **No bombs.** The pixel count is checked against ``max_pixels`` from the header, before any
  pixel is decoded; Pillow's own ``DecompressionBombError`` (and its warning, where warnings are
  errors) become :class:`~hashwatch.errors.DecodeError`. Pillow's ``DecompressionBombWarning``
  (a picture between its warning and error sizes, which our own limit already judged) is not
  printed: it would only put a multi-line Python warning into the CLI's and server's output.
  Corrupt and truncated files too: the caller gets one exception type with the reason, never a
  crash. Pillow refuses more than
  ``2 * Image.MAX_IMAGE_PIXELS`` (the default ``max_pixels``) before we are asked; an
  application wanting a higher limit must raise Pillow's global too (a library must not).
* **Orientation.** A phone photo stored sideways with EXIF Orientation=6 must hash like the
  upright picture (otherwise it lands ~126 bits away), so the EXIF orientation is applied.
  HEIC/HEIF files come already rotated from pillow-heif, which resets their tag to 1.
* **Reduced decode.** PDQ only ever looks at a 64x64 summary of the picture. With a minimum
  side set (:class:`DecodeHints`), a JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg's DCT
  scaling (each output pixel is the average of a 2x2, 4x4 or 8x8 block) as long as the shorter
  side stays at least that, and then every format has each axis box-averaged by an integer
  factor down to less than twice that; with ``grey`` a JPEG decodes only its luma plane and
  other formats are converted to luma (:func:`luma_image`) first. The result records, per axis,
  which full-resolution pixels each decoded pixel covers (:class:`AxisMap`) so that the hasher
  can still reproduce the full-resolution filter (see :mod:`hashwatch.signals.pdq`).
* **First frame.** Animated GIF/WebP and multi-image HEIF: the first (primary) frame is decoded.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from hashwatch.errors import DecodeBudgetError, DecodeError

# Pillow warns (and prints) for pictures between MAX_IMAGE_PIXELS and twice that; hashwatch
# has judged the size against its own limit before Pillow's check runs (see "No bombs" above).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module="PIL")

__all__ = [
    "DEFAULT_MAX_DECODE_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_MEDIA_TYPES",
    "SNIFF_BYTES",
    "AxisMap",
    "DecodeHints",
    "DecodedImage",
    "SixteenBit",
    "check_decode_budget",
    "decode_image",
    "luma_image",
    "sniff_media_type",
]

# Pillow's own hard limit (2 x Image.MAX_IMAGE_PIXELS): about 179 MP, e.g. 13,000 x 13,000.
DEFAULT_MAX_PIXELS = 178_956_970

# How 16-bit and wider pixels become 8 bits: as Pillow's convert (clip) or scaled (fast-1).
SixteenBit = Literal["clip", "scale"]

# Pixels one file may decode (after JPEG DCT scaling, over all frames): 2**28, 256 Mi pixels.
# Above Pillow's own per-picture limit (178,956,970), so every still picture that Pillow
# accepts is still hashed (an investigator loses no evidence by default): the budget caps
# what a small file can make a decoder do over many frames (a 1.5 KB WebP announcing 30
# frames of 6000 x 6000). A service bounds the memory of large stills by decoding few at once.
DEFAULT_MAX_DECODE_PIXELS = 268_435_456

# How many leading bytes sniff_media_type needs to see.
SNIFF_BYTES = 32

# media type -> the one Pillow plug-in allowed to open it.
_PILLOW_FORMAT = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
}
IMAGE_MEDIA_TYPES: frozenset[str] = frozenset(_PILLOW_FORMAT)

# ISO-BMFF brands (bytes 8..12 of an ``ftyp`` box, and its compatible brands).
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
# Sizes of the BMP info headers (OS/2 v1 and v2, Windows v1..v5): "BM" alone is too weak a magic.
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}

# EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose).
_T = Image.Transpose
_ORIENT: dict[int, Image.Transpose] = {
    2: _T.FLIP_LEFT_RIGHT,
    3: _T.ROTATE_180,
    4: _T.FLIP_TOP_BOTTOM,
    5: _T.TRANSPOSE,
    6: _T.ROTATE_270,
    7: _T.TRANSVERSE,
    8: _T.ROTATE_90,
}
# For each orientation: (upright rows come from stored rows?, upright rows reversed?,
# upright columns reversed?). Rows from stored columns means the axes are swapped.
_AXES: dict[int, tuple[bool, bool, bool]] = {
    1: (True, False, False),
    2: (True, False, True),
    3: (True, True, True),
    4: (True, True, False),
    5: (False, False, False),
    6: (False, False, True),
    7: (False, True, True),
    8: (False, True, False),
}
_JPEG_SCALES = (8, 4, 2)
# What Pillow and its plug-ins raise on hostile or damaged input (seen in fuzzing: AVIF raises
# RuntimeError, TIFF tags LookupError/TypeError); at this boundary all mean "not decodable".
_DECODER_FAILURES = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    RuntimeError,
    LookupError,
    TypeError,
    ArithmeticError,
    MemoryError,
    struct.error,
)
# Modes Image.reduce accepts.
_REDUCIBLE = frozenset(
    ["L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "F"]
)


def sniff_media_type(head: bytes) -> str | None:
    """The image media type that the first bytes of a file announce, or None.

    Pass at least :data:`SNIFF_BYTES` (32) bytes. Only the content is looked at, never a name.
    The table is deliberately small: video and archive types are sniffed elsewhere.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if head[:2] == b"BM" and len(head) >= 18:
        if int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES:
            return "image/bmp"
        return None
    if head[4:8] == b"ftyp":
        return _sniff_bmff(head)
    return None


def _sniff_bmff(head: bytes) -> str | None:
    """HEIC, HEIF or AVIF from the ``ftyp`` box: major brand first, then compatible brands."""
    box_size = int.from_bytes(head[0:4], "big")
    end = min(len(head), box_size) if box_size >= 16 else len(head)
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    for brand in brands:
        if brand in _HEIC_BRANDS:
            return "image/heic"
        if brand in _AVIF_BRANDS:
            return "image/avif"
    if any(b in _HEIF_BRANDS for b in brands):
        return "image/heif"
    return None


@dataclass(frozen=True)
class AxisMap:
    """Which full-resolution pixels each decoded pixel of one axis averages.

    ``size`` is the full-resolution length of the axis (after orientation); decoded pixel ``r``
    covers ``[edges[r], edges[r+1])``. With ``step`` 1 that is pixel ``r`` itself. With a reduced
    decode the blocks are ``step`` wide except the last, which is partial when ``size`` is not a
    multiple; ``reversed`` says the axis was flipped by the orientation, so the partial block
    comes first.
    """

    size: int
    step: int = 1
    reversed: bool = False

    @property
    def length(self) -> int:
        """Number of decoded pixels along this axis."""
        return -(-self.size // self.step)

    def edges(self) -> list[int]:
        """The ``length + 1`` block boundaries, in full-resolution pixels."""
        n = self.length
        forward = [min(r * self.step, self.size) for r in range(n + 1)]
        if not self.reversed:
            return forward
        return [self.size - forward[n - r] for r in range(n + 1)]


class DecodeHints(Protocol):
    """What a hashing policy tells the decoder (``PdqPolicy`` satisfies this)."""

    @property
    def decode_min_side(self) -> int | None:
        """Reduce while the shorter side stays at least this; None: full resolution."""

    @property
    def decode_grey(self) -> bool:
        """Decode only the luma plane where the format allows it (JPEG)."""

    @property
    def sixteen_bit(self) -> SixteenBit:
        """How 16-bit and wider pixels become 8-bit luma (see :func:`luma_image`)."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded, upright picture ready for hashing.

    ``width``/``height`` are the full-resolution size after orientation, whatever resolution
    ``image`` was decoded at; ``rows``/``cols`` map ``image``'s pixels to that full size.
    ``orientation`` is the EXIF value that was applied (1: none). ``colour`` (asked for with
    ``keep_colour``) is the same decode in colour, upright, before any reduction to luma: what a
    thumbnail is made from without decoding the file a second time.
    """

    image: Image.Image
    width: int
    height: int
    media_type: str
    orientation: int
    rows: AxisMap
    cols: AxisMap
    colour: Image.Image | None = field(default=None, repr=False, compare=False)
    # A JPEG's parsed EXIF, as a fresh open of the file gives it (its APP1 segment comes before
    # the pixels): EXIF leads read from it without opening the file again. None otherwise.
    exif: Image.Exif | None = field(default=None, repr=False, compare=False)
    # True when ``image`` is exactly the Y plane of a YCbCr ``colour`` (a JPEG kept in colour
    # and not reduced further): a test of its luma then bounds the same test in colour
    # (hashwatch.signals.robust.trimmed_decode).
    luma_of_colour: bool = field(default=False, repr=False, compare=False)

    @property
    def reduced(self) -> bool:
        """True when ``image`` is smaller than the full-resolution picture."""
        return self.rows.step > 1 or self.cols.step > 1


_heif_lock = threading.Lock()
_heif_registered = False


def _ensure_heif_opener() -> None:
    """Register pillow-heif's HEIF plug-in on first use, not at import (no import side effect)."""
    global _heif_registered
    if _heif_registered:
        return
    with _heif_lock:
        if not _heif_registered:
            try:
                import pillow_heif
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise DecodeError("HEIC/HEIF support needs pillow-heif") from exc
            pillow_heif.register_heif_opener()
            _heif_registered = True


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF orientation 1..8; anything unreadable or out of range counts as 1.

    A damaged EXIF block must not stop the picture from being hashed, so every parse error is
    swallowed here (Pillow raises many kinds: struct.error, ValueError, KeyError, SyntaxError).
    """
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _parsed_exif(im: Image.Image) -> Image.Exif | None:
    """The EXIF that :func:`_exif_orientation` parsed (Pillow keeps it), or None where it could
    not be parsed."""
    try:
        return im.getexif()
    except Exception:
        return None


def _jpeg_scale(width: int, height: int, min_side: int) -> int:
    """The largest libjpeg reduction (8, 4, 2 or 1) keeping the shorter side >= ``min_side``."""
    shorter = min(width, height)
    for scale in _JPEG_SCALES:
        if -(-shorter // scale) >= min_side:
            return scale
    return 1


def check_decode_budget(pixels: int, budget: int | None, what: str) -> None:
    """Raise :class:`DecodeBudgetError` when decoding ``pixels`` would exceed ``budget`` (None:
    no budget). ``what`` names the thing in the message, e.g. "image/png of 13300x13300"."""
    if budget is not None and pixels > budget:
        raise DecodeBudgetError(
            f"decode budget: {what} needs {pixels:,} decoded pixels, over the limit of "
            f"{budget:,} (max_decode_pixels); not decoded"
        )


def _decode(
    fp: BinaryIO,
    media_type: str,
    hints: DecodeHints | None,
    max_pixels: int,
    max_decode_pixels: int | None,
    keep_colour: bool = False,
) -> DecodedImage:
    fmt = _PILLOW_FORMAT[media_type]
    if fmt == "HEIF":
        _ensure_heif_opener()
    try:
        im: Image.Image = Image.open(fp, formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb: {exc}") from exc
    except Image.DecompressionBombWarning as exc:  # raised only where warnings are errors
        raise DecodeError(f"decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise DecodeError(f"not a readable {media_type} file") from exc
    except _DECODER_FAILURES as exc:
        raise DecodeError(f"corrupt {media_type} header: {exc}") from exc

    width, height = im.size
    if width <= 0 or height <= 0:
        raise DecodeError(f"{media_type} claims an empty size {width}x{height}")
    if width * height > max_pixels:
        raise DecodeError(
            f"image of {width}x{height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} (decompression bomb?)"
        )

    min_side = hints.decode_min_side if hints is not None else None
    grey = hints is not None and hints.decode_grey
    scale = 1
    if fmt == "JPEG" and (min_side is not None or grey):
        scale = _jpeg_scale(width, height, min_side) if min_side is not None else 1
        luma_only = grey and im.mode in ("RGB", "YCbCr", "L")
        # Kept in colour, a JPEG decodes as YCbCr: its Y plane is the very luma plane that a
        # luma-only decode gives (same IDCT, same DCT scaling; tests/test_decode_once.py).
        mode = "YCbCr" if keep_colour and im.mode == "RGB" else "L"
        if scale > 1 or luma_only:
            im.draft(mode if luma_only else im.mode, (width // scale, height // scale))
            scale = _actual_step(width, height, im.size)
    # im.size is what load() will decode (a JPEG's draft has set its DCT scaling).
    check_decode_budget(
        im.width * im.height, max_decode_pixels, f"{media_type} of {width}x{height}"
    )

    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"decompression bomb: {exc}") from exc
    except _DECODER_FAILURES as exc:
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason:
            reason = f"truncated file ({reason})"
        raise DecodeError(f"cannot decode {media_type}: {reason}") from exc

    orientation = _exif_orientation(im)  # after load: PNG may keep eXIf after the pixels
    exif = _parsed_exif(im) if fmt == "JPEG" else None
    colour: Image.Image | None = None
    luma_of_colour = False
    try:
        if keep_colour:
            colour = im
            if grey and im.mode == "YCbCr":
                im = im.getchannel(0)
                luma_of_colour = True
        if grey:
            im = luma_image(im, hints.sixteen_bit if hints is not None else "clip")
        step_x = step_y = scale
        if min_side is not None:
            im, gx, gy = _bound(im, min_side)
            step_x, step_y = scale * gx, scale * gy
            luma_of_colour = luma_of_colour and gx == gy == 1
        if orientation in _ORIENT:
            im = im.transpose(_ORIENT[orientation])
            if colour is not None:
                colour = colour.transpose(_ORIENT[orientation])
    except _DECODER_FAILURES as exc:
        raise DecodeError(f"cannot convert {media_type} pixels: {exc}") from exc

    rows_from_rows, rows_rev, cols_rev = _AXES[orientation]
    if rows_from_rows:
        up_w, up_h, row_step, col_step = width, height, step_y, step_x
    else:
        up_w, up_h, row_step, col_step = height, width, step_x, step_y
    return DecodedImage(
        image=im,
        width=up_w,
        height=up_h,
        media_type=media_type,
        orientation=orientation,
        rows=AxisMap(up_h, row_step, rows_rev and row_step > 1),
        cols=AxisMap(up_w, col_step, cols_rev and col_step > 1),
        colour=colour,
        exif=exif,
        luma_of_colour=luma_of_colour,
    )


def _bound(im: Image.Image, min_side: int) -> tuple[Image.Image, int, int]:
    """Box-average each axis by an integer factor down to ``[min_side, 2 * min_side)`` pixels.

    Each axis on its own, so that a panorama's long axis is bounded too. Returns the image
    and the factors along x and y.
    """
    gx = max(1, im.width // min_side)
    gy = max(1, im.height // min_side)
    if gx == 1 and gy == 1:
        return im, 1, 1
    if im.mode not in _REDUCIBLE:
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    return im.reduce((gx, gy)), gx, gy


def luma_image(im: Image.Image, sixteen_bit: SixteenBit = "clip") -> Image.Image:
    """The picture as 8-bit luma (mode L, ITU-R 601 weights as PDQ uses), whatever its mode.

    Wide modes (I;16, I;16B, I;16L, I, F) are, with ``sixteen_bit="clip"``, what Pillow's
    ``convert`` makes of them, as python-threatexchange's pipeline does: values clipped to
    0..255 (F truncated), so a list made by HMA matches. ``"scale"`` (``fast-1`` only, kept to
    reproduce its hashes) scales 16-bit values (value / 257) as a viewer shows them; modes I and F
    there hold 0..255 when Pillow made them from 8-bit pictures, larger values are taken as
    16-bit, and anything else is stretched to 0..255. Alpha is ignored, as the reference
    pipeline ignores it.
    """
    mode = im.mode
    if mode == "L":
        return im
    if sixteen_bit == "clip" and (mode.startswith("I;16") or mode in ("I", "F")):
        return im.convert("L")  # = each channel of convert("RGB"), which the reference hashes
    if mode.startswith("I;16"):
        wide = np.asarray(im).astype(np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")
    if mode in ("I", "F"):
        values = np.nan_to_num(np.asarray(im, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if low >= 0 and high <= 255:
            scaled = values
        elif low >= 0 and high <= 65535:
            scaled = values / 257.0
        else:
            scaled = (values - low) * (255.0 / (high - low))
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")
    if mode == "LAB":
        return im.getchannel("L")
    try:
        return im.convert("L")
    except ValueError:
        return im.convert("RGB").convert("L")


def _actual_step(width: int, height: int, decoded: tuple[int, int]) -> int:
    """The DCT scale libjpeg actually applied, from the decoded size (ceil(size / scale))."""
    for scale in (8, 4, 2, 1):
        if (-(-width // scale), -(-height // scale)) == decoded:
            return scale
    raise DecodeError(f"unexpected reduced JPEG size {decoded} for {width}x{height}")


def decode_image(
    source: bytes | bytearray | memoryview | Path | str | BinaryIO,
    hints: DecodeHints | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decode_pixels: int | None = DEFAULT_MAX_DECODE_PIXELS,
    keep_colour: bool = False,
) -> DecodedImage:
    """Decode the image in ``source`` (bytes already read, a path, or a seekable binary file).

    The type comes from the content (:func:`sniff_media_type`). ``hints`` (a ``PdqPolicy``)
    may allow a reduced or luma-only decode; without hints the picture is decoded whole.
    Raises :class:`DecodeError` for anything that is not a decodable image within ``max_pixels``
    (header size) and ``max_decode_pixels`` (pixels actually decoded; None: no budget).
    ``keep_colour`` also keeps the decode in colour (``DecodedImage.colour``, for a thumbnail).
    """
    limits = (max_pixels, max_decode_pixels, keep_colour)
    if isinstance(source, (bytes, bytearray, memoryview)):
        media_type = sniff_media_type(bytes(source[:SNIFF_BYTES]))
        if media_type is None:
            raise DecodeError(_unknown(bytes(source[:SNIFF_BYTES])))
        # BytesIO over bytes shares the buffer (no copy until written to).
        data = source if isinstance(source, bytes) else bytes(source)
        return _decode(io.BytesIO(data), media_type, hints, *limits)
    if isinstance(source, (str, Path)):
        try:
            with open(source, "rb") as fh:
                return _decode_stream(fh, hints, limits)
        except OSError as exc:
            raise DecodeError(f"cannot read {source}: {exc}") from exc
    return _decode_stream(source, hints, limits)


def _decode_stream(
    fp: BinaryIO, hints: DecodeHints | None, limits: tuple[int, int | None, bool]
) -> DecodedImage:
    if not fp.seekable():
        return decode_image(
            fp.read(),
            hints,
            max_pixels=limits[0],
            max_decode_pixels=limits[1],
            keep_colour=limits[2],
        )
    start = fp.tell()
    head = fp.read(SNIFF_BYTES)
    fp.seek(start)
    media_type = sniff_media_type(head)
    if media_type is None:
        raise DecodeError(_unknown(head))
    return _decode(fp, media_type, hints, *limits)


def _unknown(head: bytes) -> str:
    if not head:
        return "empty file: not an image"
    return f"not a supported image format (starts with {head[:8].hex()})"
