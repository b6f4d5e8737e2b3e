"""A reviewer's thumbnail of a JPEG is made from its colour decode without going through RGB
(JPEG stores YCbCr): it has the size it had and looks the same, within a mean of two grey
levels of the thumbnail made through RGB; pictures decoded in other modes give the very bytes
they gave.

The pictures are generated (gradients and shapes, as tests/media.py draws them): benign.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from hashwatch.signals.exif import THUMBNAIL_SIZE, thumbnail_of
from hashwatch.signals.hasher import HashOptions, hash_stream
from hashwatch.signals.image import decode_image
from hashwatch.signals.pdq import FAST
from tests.media import jpeg_bytes, scene


def through_rgb(picture: Image.Image, size: int = THUMBNAIL_SIZE) -> bytes:
    """The thumbnail as it was made before: reduced, converted to RGB, resized, saved."""
    small = picture
    factor = max(picture.width, picture.height) // size
    if factor > 1 and picture.mode in ("RGB", "YCbCr", "L", "RGBA", "CMYK"):
        small = picture.reduce(factor)
    if small.mode != "RGB":
        small = small.convert("RGB")
    elif small is picture:
        small = picture.copy()
    small.thumbnail((size, size), resample=Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=70)
    return out.getvalue()


def pixels(jpeg: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(jpeg)) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        return np.asarray(im, dtype=np.int16)


# Decoded at full size and halved (320x240), resized (256x192), reduced by 4 (1280x960 decodes
# at 640x480), reduced by 3 and resized (2000x1500 decodes at 500x375), tall, and one that fits.
SIZES = [(320, 240), (256, 192), (1280, 960), (2000, 1500), (240, 420), (150, 100)]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_a_jpegs_thumbnail_keeps_its_size_and_looks_the_same(size: tuple[int, int]) -> None:
    for seed in range(4):
        data = jpeg_bytes(scene(seed + 7 * size[0], size))
        colour = decode_image(data, FAST, keep_colour=True).colour
        assert colour is not None and colour.mode == "YCbCr"
        new, old = pixels(thumbnail_of(colour) or b""), pixels(through_rgb(colour))
        assert new.shape == old.shape
        assert max(new.shape[:2]) == min(THUMBNAIL_SIZE, max(size))
        assert float(np.abs(new - old).mean()) < 2.0


def test_the_callers_picture_is_left_as_it_was() -> None:
    colour = decode_image(jpeg_bytes(scene(3, (256, 192))), FAST, keep_colour=True).colour
    assert colour is not None
    before = colour.tobytes()
    assert thumbnail_of(colour)
    assert colour.size == (256, 192) and colour.tobytes() == before


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_other_modes_give_the_bytes_they_gave(mode: str) -> None:
    """PNG and grey decodes (RGB, L, RGBA, palette) are thumbnailed through RGB as before."""
    for size in ((320, 240), (256, 192), (140, 90)):
        picture = scene(5, size).convert(mode)
        assert thumbnail_of(picture) == through_rgb(picture)


def test_a_scan_workers_thumbnail_is_the_one_made_from_its_decode() -> None:
    data = jpeg_bytes(scene(11, (320, 240)))
    fs = hash_stream(io.BytesIO(data), "p.jpg", len(data), HashOptions(thumbnail=True))
    colour = decode_image(data, FAST, keep_colour=True).colour
    assert colour is not None and fs.thumbnail == thumbnail_of(colour)
