"""A video's contact sheet: a few evenly spaced frames tiled into one small JPEG for the report.

The sheet fits the report's thumbnail box (:data:`~hashwatch.signals.exif.THUMBNAIL_SIZE`,
160 px) as an image thumbnail does, and is shown the same way: blurred and grey until the
reviewer reveals that one item. Six frames are taken, at the middle of six equal parts of the
video, and tiled 3x2 or 2x3 (whichever gives the larger tiles for the video's shape; fewer
distinct frames, as a very short video gives, are tiled larger).

Why it is cheap: the frames are not decoded in sequence. For each time the container seeks to
the keyframe before it; that keyframe is the tile when it lies within half a tile's spacing of
the time (always, in a video much longer than its keyframe interval). Otherwise frames are
decoded forward from it, skipping frames nothing refers to, up to :data:`DECODE_BUDGET_PIXELS`
pixels' worth (about 4 frames of 1080p, 9 of 720p): in a short video with distant keyframes a
tile shows the frame the budget reached, a little before its time. Frames are scaled to tile
size by the decoder's scaler (no full-size RGB conversion). Two tiles that land on the same
frame are shown once. A 20-second 1080p video with x264's default keyframe interval (250
frames) takes about 0.15 s; a minute of phone video (a keyframe a second) six seeks.

Bad input never raises: a file that is not a video, or that no frame can be read from, gives
None; a truncated video gives the tiles that could be read.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from hashwatch.signals.exif import THUMBNAIL_SIZE

__all__ = ["DECODE_BUDGET_PIXELS", "TILES", "contact_sheet_jpeg"]

TILES = 6
DECODE_BUDGET_PIXELS = 8_000_000  # per tile, decoding forward from the keyframe
_GAP = 2  # px between tiles
_BACKGROUND = (34, 34, 34)


def contact_sheet_jpeg(
    source: bytes | BinaryIO | str | os.PathLike[str],
    *,
    tiles: int = TILES,
    size: int = THUMBNAIL_SIZE,
) -> bytes | None:
    """A JPEG of up to ``tiles`` evenly spaced frames of the video in ``source`` (its bytes, a
    seekable binary file, or a path), the whole sheet within a ``size`` px box; None when no
    frame can be read."""
    try:
        with _opened(source) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            width, height = int(stream.width or 0), int(stream.height or 0)
            if width <= 0 or height <= 0:
                return None
            # Frames are scaled to fit the whole box, then tiled as their number allows.
            _, _, fit_w, fit_h = _layout(width, height, 1, size)
            duration = _duration(container, stream)
            frames = _grab(container, stream, duration, tiles, fit_w, fit_h)
    except Exception:  # a broken container, a decoder fault: no sheet, never an error
        return None
    if not frames:
        return None
    return _tile(frames, *_layout(width, height, len(frames), size))


@contextmanager
def _opened(source: bytes | BinaryIO | str | os.PathLike[str]) -> Iterator[Any]:
    if isinstance(source, bytes | bytearray | memoryview):
        target: Any = io.BytesIO(bytes(source))
    elif isinstance(source, str | os.PathLike):
        target = str(Path(source))
    else:
        target = source
    import av  # PyAV only when a sheet is drawn: a server that never draws one skips it

    container = av.open(target, mode="r")
    try:
        yield container
    finally:
        container.close()


def _layout(width: int, height: int, count: int, size: int) -> tuple[int, int, int, int]:
    """Columns, rows and tile size for ``count`` frames: the grid with the largest tiles within
    the box (fewest empty cells on a tie)."""
    best: tuple[float, int, int, int, int, int] | None = None
    for cols in range(1, count + 1):
        rows = -(-count // cols)
        scale = min(
            (size - _GAP * (cols - 1)) / (cols * width),
            (size - _GAP * (rows - 1)) / (rows * height),
        )
        tile_w, tile_h = max(1, int(width * scale)), max(1, int(height * scale))
        key = (tile_w * tile_h, -(cols * rows - count), cols, rows, tile_w, tile_h)
        if best is None or key[:2] > best[:2]:
            best = key
    assert best is not None
    return best[2:]


def _duration(container: Any, stream: Any) -> float:
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / 1_000_000
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def _grab(
    container: Any, stream: Any, duration: float, count: int, tile_w: int, tile_h: int
) -> list[Image.Image]:
    """Up to ``count`` frames scaled to the tile size, near evenly spaced times."""
    budget = max(1, DECODE_BUDGET_PIXELS // max(1, int(stream.width) * int(stream.height)))
    spacing = duration / count if duration > 0 else 0.0
    times = [spacing * (k + 0.5) for k in range(count)] if duration > 0 else [0.0]
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    # Frames nothing refers to need not be decoded to reach a later one.
    stream.codec_context.skip_frame = "NONREF"
    seen: set[int | None] = set()
    out: list[Image.Image] = []
    for target in times:
        try:
            frame = _frame_at(container, stream, start + target, spacing / 2, budget)
        except Exception:  # a truncated or damaged part: keep the tiles read so far
            break
        if frame is None or frame.pts in seen:
            continue
        seen.add(frame.pts)
        scaled = frame.reformat(width=tile_w, height=tile_h, format="rgb24")
        out.append(scaled.to_image())
    return out


def _frame_at(container: Any, stream: Any, target: float, slack: float, budget: int) -> Any:
    """The first frame from ``slack`` seconds before ``target`` on (the keyframe before it when
    that is close enough), or the last one the budget reached."""
    if target > 0 and stream.time_base is not None:
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
    last = None
    for decoded, frame in enumerate(container.decode(stream), start=1):
        last = frame
        if frame.time is None or frame.time >= target - slack or decoded >= budget:
            break
    return last


def _tile(frames: list[Image.Image], cols: int, rows: int, tile_w: int, tile_h: int) -> bytes:
    sheet = Image.new(
        "RGB", (cols * tile_w + _GAP * (cols - 1), rows * tile_h + _GAP * (rows - 1)), _BACKGROUND
    )
    for n, image in enumerate(frames[: cols * rows]):
        col, row = n % cols, n // cols
        tile = image.resize((tile_w, tile_h), Image.Resampling.BILINEAR)
        sheet.paste(tile, (col * (tile_w + _GAP), row * (tile_h + _GAP)))
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=70)
    return out.getvalue()
