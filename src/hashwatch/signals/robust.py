"""Cheap, exact help for PDQ against framed and slightly turned copies.

* **Border trim** (as Thorn's ``perception`` does with ``unletterbox``): a copy framed by a
  uniform border (letterboxing, padding) has another PDQ hash; the hash of the picture with
  the rows and columns that match the border colour removed is the original's again.
* **Reference rotations**: PDQ tolerates about 1°; extra hashes of a reference turned by small
  angles (``ROTATION_ANGLES``) let an exact PDQ query find copies turned by a few degrees. They
  multiply the index by ``1 + len(angles)``, so a list opts in.

Mirrored copies need nothing here: the dihedral hashes (on by default) include them.
:func:`trimmed_decode` gives the hasher the border-trimmed picture from the decode it already
has (no second decode), so every query carries the trimmed picture's PDQ beside its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hashwatch.signals.image import AxisMap, DecodedImage

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "ROTATION_ANGLES",
    "TRIM_TOLERANCE",
    "border_box",
    "rotated",
    "trim_borders",
    "trimmed_decode",
]

TRIM_TOLERANCE = 12  # grey levels a border pixel may differ from the border colour
ROTATION_ANGLES = (-4.0, -2.0, 2.0, 4.0)
_MIN_KEPT = 0.5  # a trim that keeps less than half a side is a picture, not a border


def _close(pixels: npt.NDArray[np.uint8], colour: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
    """Which pixels (of an ``... x c`` array) are within tolerance of ``colour``."""
    return np.asarray(np.abs(pixels.astype(np.int16) - colour).max(axis=-1) <= TRIM_TOLERANCE)


_CHUNK = 16  # lines tested at a time from an edge inwards


def _run(lines: npt.NDArray[np.uint8], colour: npt.NDArray[np.int16]) -> int:
    """How many leading lines (along the first axis of ``lines``) are uniform: tested a few
    at a time from the edge, so the cost follows the border's width, not the picture's."""
    n = len(lines)
    for start in range(0, n, _CHUNK):
        ok = _close(lines[start : start + _CHUNK], colour).mean(axis=1) >= 0.98
        bad = np.flatnonzero(~ok)
        if len(bad):
            return start + int(bad[0])
    return n


def _edge_colour(edges: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.int16] | None:
    """The border colour (per channel, the median of the four edge lines' pixels, each line
    ``n x c``, truncated to an integer), or None when no edge line is uniform in it: then the
    picture has no border to trim. One pass over the four lines together."""
    flat = np.concatenate(edges)
    n = len(flat)
    # np.median's value, truncated: the middle value, or the mean of the middle two.
    low, high = (n - 1) // 2, n // 2
    ordered = np.partition(np.ascontiguousarray(flat.T), [low, high], axis=1)
    colour: npt.NDArray[np.int16] = (ordered[:, low].astype(np.int16) + ordered[:, high]) // 2
    close = _close(flat, colour)
    sizes = [len(edge) for edge in edges]
    starts = np.cumsum([0, *sizes[:-1]])
    counts = np.add.reduceat(close, starts, dtype=np.intp).tolist()
    if not any(count / size >= 0.98 for count, size in zip(counts, sizes, strict=True)):
        return None
    return colour


def _may_have_border(image: Image.Image) -> bool:
    """False when :func:`border_box` would find no border on ``image`` from its edges alone
    (most pictures): a colour picture is settled from its four edge lines, without making an
    array of every pixel (a grey one's array is cheap: taken whole)."""
    w, h = image.size
    if h < 16 or w < 16:
        return False
    if image.mode == "L":
        grey = np.asarray(image, dtype=np.uint8)[..., np.newaxis]
        return _edge_colour([grey[0], grey[-1], grey[:, 0], grey[:, -1]]) is not None
    lines = [(0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h)]
    edges = []
    for box in lines:
        line = np.asarray(image.crop(box), dtype=np.uint8)
        edges.append(line.reshape(max(box[2] - box[0], box[3] - box[1]), -1))
    return _edge_colour(edges) is not None


def border_box(pixels: npt.NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
    """The box ``(left, top, right, bottom)`` of the picture inside uniform borders, for an
    ``h x w`` (grey) or ``h x w x c`` array; None when there are none worth trimming (less
    than 2 % of a side) or the picture is uniform throughout.

    A line (row or column) is uniform when 98 % of its pixels are within
    :data:`TRIM_TOLERANCE` of the border colour (JPEG ringing at the content's edge). Most
    pictures have no uniform edge line at all: that is settled from the four edges alone."""
    rgb = pixels[..., np.newaxis] if pixels.ndim == 2 else pixels
    h, w = rgb.shape[:2]
    if h < 16 or w < 16:
        return None
    colour = _edge_colour([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    if colour is None:
        return None
    top = _run(rgb, colour)
    if top >= h:
        return None
    columns = rgb.transpose(1, 0, 2)
    bottom, left, right = (
        _run(rgb[::-1], colour),
        _run(columns, colour),
        _run(columns[::-1], colour),
    )
    kept_h, kept_w = h - top - bottom, w - left - right
    if kept_h < h * _MIN_KEPT or kept_w < w * _MIN_KEPT:
        return None
    if max(top, bottom) < 0.02 * h and max(left, right) < 0.02 * w:
        return None
    return left, top, w - right, h - bottom


def trim_borders(image: Image.Image) -> Image.Image | None:
    """The picture without uniform borders, or None when it has none worth trimming (see
    :func:`border_box`)."""
    rgb = image.convert("RGB")
    box = border_box(np.asarray(rgb, dtype=np.uint8))
    return None if box is None else rgb.crop(box)


def trimmed_decode(decoded: DecodedImage) -> DecodedImage | None:
    """The border-trimmed picture of a decode, ready for PDQ, or None when it has no uniform
    border. The border is found on the decode's colour picture when it kept one (a grey
    border around grey-matching colours is not taken for one), else on its luma; the trimmed
    picture is hashed at the decode's resolution (PDQ reduces to 64 x 64 anyway)."""
    image = decoded.image
    source = decoded.colour if decoded.colour is not None else image
    if source.size != image.size:
        source = image
    if source.mode not in ("L", "RGB", "YCbCr"):
        source = source.convert("RGB")  # palette, alpha, 16-bit: compared as 8-bit colour
    if source is not image and decoded.luma_of_colour and not _may_have_border(image):
        # The border colour is a median per channel, so its Y is the Y plane's own median,
        # and a pixel within tolerance in every channel is within it in Y: an edge line
        # uniform in colour is uniform in Y. No uniform Y edge: none in colour either, and
        # the Y plane is already an array (no crops of the colour picture).
        return None
    if not _may_have_border(source):
        return None
    box = border_box(np.asarray(source, dtype=np.uint8))
    if box is None:
        return None
    inner = image.crop(box)
    return replace(
        decoded,
        image=inner,
        width=inner.width,
        height=inner.height,
        rows=AxisMap(inner.height),
        cols=AxisMap(inner.width),
        colour=None,
        luma_of_colour=False,
    )


def rotated(image: Image.Image, angle: float) -> Image.Image:
    """The picture turned by ``angle`` degrees (counter-clockwise) and cropped to the largest
    centred rectangle with no corners from outside the picture."""
    from PIL import Image as PILImage

    rgb = image.convert("RGB")
    w, h = rgb.size
    turned = rgb.rotate(angle, resample=PILImage.Resampling.BILINEAR)
    a = abs(np.radians(angle))
    # Largest axis-aligned rectangle of the same aspect inside the turned picture.
    f = 1.0 / (np.cos(a) + np.sin(a) * max(w / h, h / w))
    cw, ch = int(w * f), int(h * f)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return turned.crop((x0, y0, x0 + cw, y0 + ch))
