"""Frame hashes of animated images (GIF, WebP, APNG) decoded with Pillow.

PyAV reads animated GIFs as videos, but FFmpeg's WebP decoder has no animation and its APNG
support depends on the build; Pillow reads all three. Frames are sampled as vPDQ samples a
video: one per ``frame_interval`` seconds of display time (each frame's ``duration``), frame
numbers counting every frame from 0. The result has the shape of a video's
(:class:`~hashwatch.signals.video.VideoSignals`), so an animated image matches like a clip.
Bad input never raises: what was read is returned with an ``error``.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageSequence

from hashwatch.errors import DecodeError
from hashwatch.signals.image import AxisMap, DecodedImage
from hashwatch.signals.pdq import PdqPolicy, hash_decoded
from hashwatch.signals.video import FrameHash, VideoSignals

__all__ = ["hash_animated_image"]

_DEFAULT_FRAME_MS = 100  # browsers show a frame without a duration for about this long
MAX_FRAMES = 100_000  # an animation bomb stops here, with an error


def hash_animated_image(
    source: bytes | Path, mime: str, *, frame_interval: float, policy: PdqPolicy
) -> VideoSignals:
    """PDQ of one frame per ``frame_interval`` seconds of an animated image."""
    result = VideoSignals("video", mime, 0.0, 0.0, 0, 0, policy.name)
    elapsed_ms = 0.0
    next_due = 0.0
    count = 0
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            result.width, result.height = im.size
            for count, frame in enumerate(ImageSequence.Iterator(im), start=1):
                if count > MAX_FRAMES:
                    result.error = f"more than {MAX_FRAMES} frames: stopped"
                    break
                frame.load()  # frames are deltas, and WebP sets ``duration`` on load
                seconds = elapsed_ms / 1000
                if seconds >= next_due - 1e-9:
                    rgb = frame.convert("RGB")
                    w, h = rgb.size
                    hashed = hash_decoded(
                        DecodedImage(rgb, w, h, "image", 1, AxisMap(h), AxisMap(w)), policy
                    )
                    result.frames.append(
                        FrameHash(
                            frame=count - 1,
                            timestamp=round(seconds, 3),
                            pdq=hashed.hash,
                            quality=hashed.quality,
                        )
                    )
                    next_due += frame_interval * max(
                        1, int((seconds - next_due) // frame_interval) + 1
                    )
                duration = frame.info.get("duration") or _DEFAULT_FRAME_MS
                elapsed_ms += float(duration)
    except (
        OSError,
        ValueError,
        MemoryError,
        EOFError,
        DecodeError,
        Image.DecompressionBombError,
    ) as exc:
        result.error = f"decoding stopped after {count} frames: {exc}"
    result.duration = round(elapsed_ms / 1000, 3)
    if result.duration > 0 and count:
        result.fps = round(count / result.duration, 3)
    return result
