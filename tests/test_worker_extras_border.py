"""A scan worker decides whether a picture has a uniform border from its luma first, and looks
at the colour picture only when the luma allows a border: the decision, and the trimmed
picture a framed copy is hashed from, are the ones a full test of the colour picture gives.

Thousands of small generated JPEGs (benign: noise, gradients, flat frames) are decoded as the
worker decodes them (colour kept) and trimmed; each answer is compared with
:func:`border_box` run on the whole colour picture, which is what the border decision was
before the luma came first. The pictures are built to reach every branch: no border at all,
a flat colour frame, a grey frame whose luma matches the content's edge, an edge whose luma
is flat while its colour varies, and edges just inside and just outside the 98 % and the
tolerance limits.
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import numpy.typing as npt
from PIL import Image

from hashwatch.signals.hasher import HashOptions, hash_stream
from hashwatch.signals.image import DecodedImage, decode_image
from hashwatch.signals.pdq import FAST
from hashwatch.signals.robust import TRIM_TOLERANCE, border_box, trimmed_decode

KINDS = ("plain", "frame", "grey_frame", "flat_luma_edge", "near_limit", "near_tolerance")


def _content(rng: np.random.Generator, h: int, w: int) -> npt.NDArray[np.float64]:
    y, x = np.mgrid[0:h, 0:w]
    base = (
        rng.uniform(0, 255, 3)
        + np.stack([x * rng.uniform(-3, 3), y * rng.uniform(-3, 3)], 2)[..., [0, 1, 0]]
    )
    return np.asarray(base + rng.normal(0, rng.uniform(2, 30), (h, w, 3)))


def _to_ycc(rgb: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return np.stack([y, 128 + (b - y) * 0.564, 128 + (r - y) * 0.713], -1)


def _from_ycc(ycc: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128, ycc[..., 2] - 128
    return np.stack([y + 1.402 * cr, y - 0.344 * cb - 0.714 * cr, y + 1.772 * cb], -1)


def generated(kind: str, seed: int) -> bytes:
    """One small benign JPEG of the given kind."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(16, 90)), int(rng.integers(16, 90))
    pixels = _content(rng, h, w)
    band = max(1, int(min(h, w) * rng.uniform(0.03, 0.2)))
    sides = rng.random(4) < 0.7
    if kind in ("frame", "grey_frame"):
        if kind == "frame":
            colour = rng.uniform(0, 255, 3)
        else:  # grey, at the luma of the content's own edge: only its colour tells them apart
            luma = _to_ycc(pixels[0])[..., 0].mean()
            colour = np.array([luma, luma, luma])
        top, bottom, left, right = sides
        if top:
            pixels[:band, :] = colour
        if bottom:
            pixels[-band:, :] = colour
        if left:
            pixels[:, :band] = colour
        if right:
            pixels[:, -band:] = colour
    elif kind == "flat_luma_edge":  # a flat luma along the edges, colours varying along them
        ycc = _to_ycc(pixels)
        ycc[:band, :, 0] = ycc[-band:, :, 0] = rng.uniform(40, 200)
        ycc[:band, :, 1:] = rng.uniform(60, 196, (band, w, 2))
        pixels = _from_ycc(ycc)
    elif kind == "near_limit":  # a flat frame with 0 to 4 % of its pixels off
        colour = rng.uniform(30, 220, 3)
        pixels[:band, :] = pixels[-band:, :] = colour
        pixels[:, :band] = pixels[:, -band:] = colour
        off = rng.random((h, w)) < rng.uniform(0, 0.04)
        pixels[off] = rng.uniform(0, 255, (int(off.sum()), 3))
    elif kind == "near_tolerance":  # a frame whose pixels stray about the tolerance
        colour = rng.uniform(40, 210, 3)
        spread = TRIM_TOLERANCE * rng.uniform(0.6, 1.4)
        pixels[:band, :] = colour + rng.uniform(-spread, spread, (band, w, 3))
        pixels[:, :band] = colour + rng.uniform(-spread, spread, (h, band, 3))
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=int(rng.integers(60, 98)))
    return out.getvalue()


def full_colour_decision(decoded: DecodedImage) -> Image.Image | None:
    """The trimmed picture as found by :func:`border_box` on the whole colour picture."""
    source = decoded.colour if decoded.colour is not None else decoded.image
    if source.size != decoded.image.size:
        source = decoded.image
    box = border_box(np.asarray(source, dtype=np.uint8))
    return None if box is None else decoded.image.crop(box)


def test_the_luma_first_border_decision_is_the_colour_pictures_own() -> None:
    seen: Counter[str] = Counter()
    for seed in range(2400):
        kind = KINDS[seed % len(KINDS)]
        decoded = decode_image(generated(kind, seed), FAST, keep_colour=True)
        assert decoded.luma_of_colour, "a small colour JPEG's luma is its Y plane"
        expected = full_colour_decision(decoded)
        trimmed = trimmed_decode(decoded)
        if expected is None:
            assert trimmed is None, (kind, seed)
            seen[f"{kind}: none"] += 1
            if border_box(np.asarray(decoded.image)) is not None:
                seen["a border in luma, none in colour"] += 1
            continue
        assert trimmed is not None, (kind, seed)
        assert trimmed.image.tobytes() == expected.tobytes(), (kind, seed)
        assert (trimmed.width, trimmed.height) == expected.size
        seen[f"{kind}: trimmed"] += 1
    # Every kind of edge was met, and both answers came up where either may.
    assert seen["plain: none"] >= 350 and seen["frame: trimmed"] >= 200
    assert seen["grey_frame: trimmed"] >= 100 and seen["flat_luma_edge: none"] >= 350
    assert seen["a border in luma, none in colour"] >= 50, seen
    for kind in ("near_limit", "near_tolerance"):
        assert seen[f"{kind}: none"] >= 20 and seen[f"{kind}: trimmed"] >= 20, seen


def test_the_luma_stands_for_the_colour_only_where_it_is_its_y_plane() -> None:
    """A JPEG reduced further after its decode, a PNG, a decode without colour: no shortcut."""
    small = generated("frame", 3)
    assert decode_image(small, FAST, keep_colour=True).luma_of_colour
    assert not decode_image(small, FAST).luma_of_colour
    big = io.BytesIO()
    Image.new("RGB", (1200, 700), (40, 90, 160)).save(big, "JPEG")
    assert not decode_image(big.getvalue(), FAST, keep_colour=True).luma_of_colour
    png = io.BytesIO()
    Image.open(io.BytesIO(small)).save(png, "PNG")
    assert not decode_image(png.getvalue(), FAST, keep_colour=True).luma_of_colour


def test_a_worker_hashes_a_framed_picture_as_inside_its_frame() -> None:
    """The worker's options (thumbnail on: colour kept) and hash's (luma only) give one
    trimmed hash for a framed JPEG, and none for a plain one."""
    worker = HashOptions(exif=True, thumbnail=True)
    for seed in range(6, 60, 6):
        for kind in ("frame", "plain"):
            data = generated(kind, seed + (1 if kind == "frame" else 0))
            fs = hash_stream(io.BytesIO(data), "p.jpg", len(data), worker)
            decoded = decode_image(data, FAST, keep_colour=True)
            expected = full_colour_decision(decoded)
            assert (fs.trimmed is None) == (expected is None), (kind, seed)
