"""Investigative leads from image metadata, and the small thumbnail a reviewer sees.

Leads are the EXIF facts that can tie pictures to one camera, place or time: make, model,
body serial number, owner name, capture time, GPS position, software. They are read from the
image header only (no pixel decode). A lead is a lead: EXIF can be edited or stripped.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageOps

__all__ = ["THUMBNAIL_SIZE", "exif_leads", "read_exif_leads", "thumbnail_jpeg", "thumbnail_of"]

THUMBNAIL_SIZE = 160

_IFD0 = {0x010F: "make", 0x0110: "model", 0x0131: "software", 0x0132: "modified"}
_EXIF = {
    0x9003: "capture_time",
    0xA430: "owner",
    0xA431: "serial",
    0xA434: "lens",
    0xA435: "lens_serial",
}
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value is None:
        return None
    text = "".join(ch for ch in str(value).strip("\x00 ").strip() if ch.isprintable())
    return text[:200] or None


def _degrees(parts: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(x) for x in parts)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    if _text(ref) in ("S", "W"):
        value = -value
    return round(value, 6)


def read_exif_leads(content: bytes) -> dict[str, Any] | None:
    """The leads present in the image's EXIF, or None when it carries none."""
    try:
        with Image.open(io.BytesIO(content)) as im:
            return exif_leads(im.getexif())
    except Exception:
        return None


def exif_leads(exif: Image.Exif) -> dict[str, Any] | None:
    """The leads present in EXIF already parsed (a decode's), or None when it carries none."""
    try:
        leads: dict[str, Any] = {}
        for tag, name in _IFD0.items():
            if (value := _text(exif.get(tag))) is not None:
                leads[name] = value
        sub = exif.get_ifd(_EXIF_IFD)
        for tag, name in _EXIF.items():
            if (value := _text(sub.get(tag))) is not None:
                leads[name] = value
        gps = exif.get_ifd(_GPS_IFD)
        if gps:
            lat = _degrees(gps.get(2), gps.get(1))
            lon = _degrees(gps.get(4), gps.get(3))
            if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
                leads["gps"] = {"lat": lat, "lon": lon}
        orientation = exif.get(0x0112)
        if orientation not in (None, 1):
            leads["orientation"] = int(orientation)
    except Exception:
        return None
    return leads or None


def thumbnail_jpeg(content: bytes, size: int = THUMBNAIL_SIZE) -> bytes | None:
    """A small upright JPEG for the report (JPEGs decode at reduced size: cheap)."""
    try:
        with Image.open(io.BytesIO(content)) as im:
            im.draft("RGB", (size * 2, size * 2))
            im.seek(0)
            small = ImageOps.exif_transpose(im.convert("RGB"))
            small.thumbnail((size, size))
            out = io.BytesIO()
            small.save(out, "JPEG", quality=70)
            return out.getvalue()
    except Exception:
        return None


def thumbnail_of(picture: Image.Image, size: int = THUMBNAIL_SIZE) -> bytes | None:
    """A small JPEG for the report from a picture already decoded and upright (the reduced
    colour decode PDQ hashing made: no second decode, no full-size resize). An integer box
    reduction first, then a bilinear resize of the rest (10x cheaper than a bicubic resize of
    the whole picture; the report shows thumbnails blurred).

    A JPEG's colour decode (YCbCr) stays in YCbCr to the end: JPEG stores YCbCr, so the
    encoder takes it as it is, where a conversion to RGB and the encoder's conversion back
    cost more than the rest on a small picture (bytes within a grey level or two of the RGB
    path's; tests/test_worker_extras_thumbnail.py)."""
    try:
        small = picture
        factor = max(picture.width, picture.height) // size
        if factor > 1 and picture.mode in ("RGB", "YCbCr", "L", "RGBA", "CMYK"):
            small = picture.reduce(factor)
        if small.mode not in ("RGB", "YCbCr"):
            small = small.convert("RGB")
        if small.width > size or small.height > size:
            if small is picture:
                small = picture.copy()  # thumbnail() resizes in place; the caller's stays
            small.thumbnail((size, size), resample=Image.Resampling.BILINEAR)
        out = io.BytesIO()
        small.save(out, "JPEG", quality=70)
        return out.getvalue()
    except Exception:
        return None
