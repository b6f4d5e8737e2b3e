"""Pictures made fit to show a reviewer: blurred and greyscale by their settings, or revealed.

Every picture sent to a browser is decoded and encoded again here, never passed through as
the evidence's bytes: no metadata, trailing data or second format rides along, and the type
the browser is told is the type it gets. A revealed full-size picture is PNG (lossless: the
pixels as decoded, upright by its EXIF orientation, the first frame of an animation); an aided
one (blurred and/or greyscale) is a JPEG no larger than :data:`MAX_AIDED_SIDE` on its longer
side, since blurring removes the detail a larger one would carry.

The blur is Pillow's Gaussian blur with a radius relative to the picture's longer side
(``strength`` in thousandths: 40 = 4 %), so a thumbnail and the full view look alike.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter

from hashwatch.signals.image import SixteenBit, decode_image

__all__ = ["MAX_AIDED_SIDE", "MAX_BLUR_STRENGTH", "Picture", "aided", "blur_radius", "revealed"]

MAX_AIDED_SIDE = 1024
MAX_BLUR_STRENGTH = 100  # a radius of 10 % of the longer side
_JPEG_QUALITY = 85


@dataclass(frozen=True)
class Picture:
    """Encoded bytes and their media type."""

    data: bytes
    media_type: str

    @property
    def extension(self) -> str:
        return "png" if self.media_type == "image/png" else "jpg"


@dataclass(frozen=True)
class _Hints:
    """Decoder hints (:class:`hashwatch.signals.image.DecodeHints`) for an aided view."""

    decode_min_side: int | None
    decode_grey: bool
    sixteen_bit: SixteenBit = "clip"


def blur_radius(width: int, height: int, strength: int) -> float:
    """The Gaussian radius in pixels for a picture of ``width`` x ``height``."""
    return max(width, height) * strength / 1000


def _encode(im: Image.Image, fmt: str) -> Picture:
    buf = io.BytesIO()
    if fmt == "PNG":
        im.save(buf, "PNG", compress_level=1)
        return Picture(buf.getvalue(), "image/png")
    im.save(buf, "JPEG", quality=_JPEG_QUALITY)
    return Picture(buf.getvalue(), "image/jpeg")


def _flat(im: Image.Image, greyscale: bool) -> Image.Image:
    """8-bit L or RGB pixels (transparency over white, as a page shows them)."""
    if greyscale:
        return im if im.mode == "L" else im.convert("L")
    if im.mode in ("RGBA", "LA", "PA") or im.info.get("transparency") is not None:
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im if im.mode == "RGB" else im.convert("RGB")


def revealed(data: bytes) -> Picture:
    """The picture in ``data`` as decoded, losslessly re-encoded (PNG)."""
    decoded = decode_image(data)
    im = decoded.image
    if im.mode not in ("L", "RGB", "RGBA"):
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    return _encode(im, "PNG")


def aided(data: bytes, *, blur: bool, strength: int, greyscale: bool) -> Picture:
    """The picture in ``data`` blurred (when ``blur``) and greyscale (when ``greyscale``),
    reduced to at most :data:`MAX_AIDED_SIDE` pixels on its longer side."""
    decoded = decode_image(data, _Hints(MAX_AIDED_SIDE, greyscale))
    im = _flat(decoded.image, greyscale)
    if max(im.size) > MAX_AIDED_SIDE:
        im = im.copy()
        im.thumbnail((MAX_AIDED_SIDE, MAX_AIDED_SIDE), Image.Resampling.BILINEAR)
    if blur:
        im = im.filter(ImageFilter.GaussianBlur(blur_radius(im.width, im.height, strength)))
    return _encode(im, "JPEG")
