"""Benign generated video clips for tests: a slideshow of generated scenes with a moving mark.

Each second shows one :func:`tests.media.scene` (a different seed per second) with a small
square drifting across it, so frames within a second are close (PDQ within a few bits) and
seconds differ (PDQ ~128 bits apart): a copy sampled at other instants still matches second
by second, and clips made of other seeds do not match at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

from tests.media import scene


def write_clip(
    path: Path,
    seeds: Sequence[int],
    *,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    scene_size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
    container: str | None = None,
    crf: int = 23,
    gop: int | None = None,
) -> Path:
    """Write one second per seed; returns ``path``. Scenes are drawn at ``scene_size`` and
    scaled to ``size``, so clips of one seed list at two sizes show the same pictures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "ultrafast", "g": str(gop or fps)}
        for second, seed in enumerate(seeds):
            base = np.asarray(scene(seed, scene_size).resize(size), dtype=np.uint8)
            for i in range(fps):
                rgb = base.copy()
                side = max(2, w // 24)
                x = int((w - side) * i / fps)
                rgb[h // 2 - side // 2 : h // 2 + side // 2, x : x + side] = (255, 255, 255)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = second * fps + i
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
