"""PDQ hashes of video frames, sampled as Meta's vPDQ samples them.

Why vPDQ's semantics: hash lists of videos (vPDQ) are made of per-frame PDQ hashes of every k-th
decoded frame, ``k = int(seconds_per_hash * fps)`` (at least 1), each with its frame number,
quality and timestamp (``frame_number / fps``). Matching ignores order and time, so what matters
is that the same frames are hashed and that each hash is close to Meta's; frame numbers count
decoded frames from 0, exactly as the reference tool does.

Why it is faster than "decode every frame, convert to RGB, pdqhash": a decoder has to decode
every frame of an inter-coded stream anyway (``skip_frame = "NONKEY"`` or ``"NONREF"`` would drop
frames and shift the numbering), but only the sampled frames are converted. With the default
policy (:data:`~hashwatch.signals.pdq.FAST`) a sampled frame is not converted to RGB at all:
its luma plane (Y of 8-bit YUV, expanded from limited to full range as an RGB conversion would)
is box-averaged by an integer factor to 256..511 px and goes through ``fast-1``'s replay of
PDQ's filter (see :mod:`hashwatch.signals.pdq`). For BT.601 YUV, ``0.299 R + 0.587 G + 0.114 B``
of the converted frame *is* the expanded Y (the chroma terms cancel), so only rounding and
clipping separate the two. Pixel formats without such a plane (GIF palettes, RGB codecs) go
through an RGB conversion. :data:`~hashwatch.signals.pdq.REFERENCE` hashes the full-size RGB
frame as vPDQ does. Decoding every frame dominates (bench/bench_video.py, 720p30 H.264: ~1.3x
the baseline in CPU-seconds). Run with one BLAS thread (OPENBLAS_NUM_THREADS=1, as hashwatch's
runner sets): OpenBLAS's spinning threads would otherwise cost more CPU than the hashing.

Errors: bad input never raises. A broken or truncated video gives the frames that could be read
and an ``error`` string; a file with no readable video stream gives no frames and an ``error``.
Display rotation (side data) is ignored, as vPDQ ignores it: frames are hashed at stored size.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import av
import numpy as np
from PIL import Image

from hashwatch.errors import DecodeError
from hashwatch.signals.image import AxisMap, DecodedImage, luma_image
from hashwatch.signals.pdq import FAST, PdqPolicy, hash_decoded
from hashwatch.signals.video_sniff import sniff_video_type

__all__ = ["FrameHash", "VideoSignals", "hash_video", "hash_video_frames", "sniff"]

# 8-bit planar/semi-planar YUV formats whose plane 0 is the luma at full size.
_YUV8 = {
    "yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p",
    "yuv411p", "yuvj411p", "yuv410p", "yuva420p", "yuva422p", "yuva444p", "nv12", "nv21",
}  # fmt: skip
_FULL_RANGE_FORMATS = {"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p"}
_COLOR_RANGE_JPEG = 2  # AVCOL_RANGE_JPEG
_END_TOLERANCE_S = 0.5  # a stream that stops earlier than its announced duration is truncated


class FrameHash(TypedDict):
    """One sampled frame: number among decoded frames (from 0), ``frame / fps``, PDQ, quality."""

    frame: int
    timestamp: float
    pdq: str
    quality: int


@dataclass
class VideoSignals:
    """What :func:`hash_video` found. ``error`` is None when the whole stream decoded.

    ``media_type`` is always "video" (the kind of signal); ``mime_type`` is the sniffed container
    type (None when unrecognised, e.g. GIF, which PyAV reads as a video too). ``duration`` is the
    container's announced duration in seconds (0.0 when unknown), ``fps``
    the stream's average frame rate, ``policy`` the PDQ policy's versioned name.
    """

    media_type: str
    mime_type: str | None
    duration: float
    fps: float
    width: int
    height: int
    policy: str
    frames: list[FrameHash] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (frames as plain dicts)."""
        return {
            "media_type": self.media_type,
            "mime_type": self.mime_type,
            "duration": self.duration,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "policy": self.policy,
            "frames": [dict(f) for f in self.frames],
            "error": self.error,
        }


def sniff(head: bytes) -> str | None:
    """The video MIME type of a file starting with ``head`` (see :func:`sniff_video_type`)."""
    return sniff_video_type(head)


def hash_video(
    source: bytes | Path, *, frame_interval: float = 1.0, policy: PdqPolicy = FAST
) -> VideoSignals:
    """PDQ of one frame per ``frame_interval`` seconds (every k-th frame, k = int(interval*fps)).

    Never raises for bad input: see the module docstring.
    """
    if not frame_interval > 0:
        raise ValueError("frame_interval must be positive")
    return _hash(source, policy, lambda fps: max(1, int(frame_interval * fps)), None)


def hash_video_frames(
    source: bytes | Path, frame_numbers: Iterable[int], *, policy: PdqPolicy = FAST
) -> VideoSignals:
    """PDQ of the given decoded-frame numbers only (for conformance checks against vPDQ)."""
    wanted = frozenset(frame_numbers)
    return _hash(source, policy, None, wanted)


def _hash(
    source: bytes | Path,
    policy: PdqPolicy,
    step_for: Any,
    wanted: frozenset[int] | None,
) -> VideoSignals:
    """Open, decode every frame, hash the sampled ones; errors become ``VideoSignals.error``."""
    head = bytes(source[:256]) if isinstance(source, bytes) else _read_head(source)
    result = VideoSignals("video", sniff_video_type(head), 0.0, 0.0, 0, 0, policy.name)
    try:
        container = av.open(
            io.BytesIO(source) if isinstance(source, bytes) else str(source), mode="r"
        )
    except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
        result.error = f"cannot open as video: {exc}"
        return result
    with container:
        if not container.streams.video:
            result.error = "no video stream"
            return result
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        result.fps = float(rate) if rate else 0.0
        result.width, result.height = stream.width, stream.height
        if container.duration is not None and container.duration > 0:
            result.duration = container.duration / 1_000_000
        elif stream.duration is not None and stream.time_base is not None:
            result.duration = float(stream.duration * stream.time_base)
        fps = result.fps if result.fps > 0 else 30.0  # vPDQ needs a rate; 30 when unknown
        step = step_for(fps) if step_for is not None else 1
        count = 0
        try:
            for count, frame in enumerate(_frames(container, stream), start=1):
                n = count - 1
                if (wanted is None and n % step == 0) or (wanted is not None and n in wanted):
                    hashed = hash_decoded(_decoded(frame, policy), policy)
                    result.frames.append(
                        FrameHash(
                            frame=n,
                            timestamp=round(n / fps, 3),
                            pdq=hashed.hash,
                            quality=hashed.quality,
                        )
                    )
        except (av.FFmpegError, OSError, ValueError, EOFError, MemoryError, DecodeError) as exc:
            result.error = f"decoding stopped after {count} frames: {exc}"
            return result
        if count == 0:
            result.error = "no frame could be decoded"
        elif result.duration > 0 and count / fps < result.duration - _END_TOLERANCE_S:
            result.error = (
                f"truncated: {count} frames ({count / fps:.2f} s) of {result.duration:.2f} s"
            )
    return result


def _read_head(path: Path) -> bytes:
    """The first bytes of ``path`` for sniffing (empty when unreadable: av.open will report)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(256)
    except OSError:
        return b""


def _frames(container: Any, stream: Any) -> Iterator[Any]:
    """Every decoded frame of ``stream``; a decoding failure raises (reported as the error).

    FFmpeg's decoders conceal most damage themselves, so this stops only on what they cannot.
    """
    yield from container.decode(stream)


def _decoded(frame: Any, policy: PdqPolicy) -> DecodedImage:
    """The frame as a :class:`DecodedImage`: reduced luma (fast) or full-size RGB (reference)."""
    width, height = int(frame.width), int(frame.height)
    if policy.kind == "reference" or policy.decode_min_side is None:
        image = Image.fromarray(frame.to_ndarray(format="rgb24"), "RGB")
        return DecodedImage(image, width, height, "video", 1, AxisMap(height), AxisMap(width))
    luma = _luma_plane(frame)
    if luma is None:
        image = luma_image(frame.to_image())
        full_range = True
    else:
        image = Image.fromarray(luma, "L")
        full_range = _is_full_range(frame)
    min_side = policy.decode_min_side
    gx, gy = max(1, width // min_side), max(1, height // min_side)
    if gx > 1 or gy > 1:
        image = image.reduce((gx, gy))
    if not full_range:
        # Limited (MPEG) range 16..235 to 0..255, as FFmpeg's YUV->RGB conversion does.
        values = (np.asarray(image, dtype=np.float32) - 16.0) * (255.0 / 219.0)
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    return DecodedImage(image, width, height, "video", 1, AxisMap(height, gy), AxisMap(width, gx))


def _luma_plane(frame: Any) -> np.ndarray[Any, np.dtype[np.uint8]] | None:
    """Plane 0 of an 8-bit YUV frame as a (height, width) view, or None for other formats."""
    if frame.format.name not in _YUV8:
        return None
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
    return np.ascontiguousarray(rows[: frame.height, : frame.width])


def _is_full_range(frame: Any) -> bool:
    """True for JPEG-range YUV (yuvj formats or a frame flagged full range)."""
    if frame.format.name in _FULL_RANGE_FORMATS:
        return True
    return int(getattr(frame, "color_range", 0) or 0) == _COLOR_RANGE_JPEG
