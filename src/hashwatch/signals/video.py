"""PDQ hashes of video frames: vPDQ's frame hashes, sampled keyframe-first by default.

What a hash list of videos holds (Meta's vPDQ): per-frame PDQ hashes, each with its frame number
(index among decoded frames, from 0, in presentation order), quality and timestamp
(``frame_number / fps``). vPDQ hashes every k-th frame, ``k = int(seconds_per_hash * fps)``.
Matching ignores order and time: a video matches when enough of its frames are within 31 bits of
some frame of the other. So what matters is that the frames hashed cover the video densely
enough and that each hash is the one Meta's tool would give *that* frame.

Two samplings (``hash_video(..., sampling=...)``, recorded in :attr:`VideoSignals.sampling`):

* ``"exact"``: decode every frame and hash frames ``k*n``, exactly vPDQ's choice.
* ``"fast"`` (default): one frame per ``frame_interval`` seconds of presentation time, chosen
  keyframe-first (:mod:`hashwatch.signals._video_decode`). Why not always vPDQ's frames: an
  inter-coded frame can only be decoded after every frame it refers to, back to the last
  keyframe, so hashing frame 30, 60, ... of a 30 fps video means decoding all of them, and that
  decoding was ~80 % of the cost. A keyframe decodes alone, so a slot holding one hashes it;
  only slots without one decode further, from their GOP's keyframe to the slot's cheapest frame
  (first in decoding order) or to vPDQ's own frame when that is a few packets further, skipping
  frames nothing refers to. Each frame keeps its true frame number and ``timestamp = frame /
  fps``, and its hash is bit for bit the one a full decode gives that frame (no lossy decoder
  shortcut: skipping the loop filter moved hashes by up to 42 bits on the benchmark's video).
  Where keyframes are not vPDQ's frames, the frames hashed differ from vPDQ's by less than an
  interval; that matters only for content that changes within a few frames (the conformance
  videos move so fast that 2 frames apart can be 90 bits apart), and the tests compare each
  frame with Meta's hash of the same frame number. Where timestamps cannot give true frame
  numbers (the cases listed in :mod:`~hashwatch.signals._video_decode`), and for non-seekable
  file objects, ``fast`` decodes everything and reports ``sampling == "exact"``. The speed-up
  depends on the GOP (bench/bench_video.py, 720p30 H.264 against "decode all + RGB + pdqhash"):
  ~7x with a keyframe every second, as phones record; ~3x with 2 s GOPs (half the slots decode
  half a GOP); ~1.5x with keyframes seconds apart and P-frames only, where nearly every frame
  must be decoded anyway.

* ``"keyframes"``: only keyframes, at most one per ``frame_interval``; nothing else is
  decoded. The frames hashed are as far apart as the encoder put keyframes (every 1-2 s in
  phone recordings and streaming re-encodes, up to ~10 s with x264's defaults), so a video is
  covered more sparsely; a known video hashed densely (``lists add-media``: 10 frames a second)
  is still found, because every keyframe lies within 0.05 s of a listed frame. For triage of
  large collections where speed matters more than density.

Pixels, with the default policy (:data:`~hashwatch.signals.pdq.FAST`): a hashed frame is not
converted to RGB at all: its luma plane (Y of 8-bit YUV, expanded from limited to full range as
an RGB conversion would) is box-averaged by an integer factor to 256..511 px and goes through
the fast policies' replay of PDQ's filter (see :mod:`hashwatch.signals.pdq`). For BT.601 YUV,
``0.299 R + 0.587 G + 0.114 B`` of the converted frame *is* the expanded Y (the chroma terms
cancel), so only rounding and clipping separate the two. Pixel formats without such a plane (GIF
palettes, RGB codecs) go through an RGB conversion. :data:`~hashwatch.signals.pdq.REFERENCE`
hashes the full-size RGB frame as vPDQ does. The decoder runs on one thread by default: FFmpeg's
threads saved no CPU time in the benchmark (within 3 %), the scan runs one process per core, and
one thread applies ``skip_frame`` to exactly the packet it is set for. Run with one BLAS thread
(OPENBLAS_NUM_THREADS=1, as hashwatch's runner sets): OpenBLAS's spinning threads would
otherwise cost more CPU than the hashing.

Animated WebP, which FFmpeg does not decode, is read with Pillow
(:mod:`hashwatch.signals.animated`); its frames are numbered in order, ``fps`` is frames per
second of its total duration.

Decode budget (``max_decode_pixels``, given for animated images, whose frames cost a full
canvas each whatever their file size): frame pixels x frames sent to the decoder, counted before
each is decoded. Past it nothing more is decoded; the frames hashed so far are kept and
``error`` says so. Videos are hashed without one by default (None): their cost follows their
length, which a scan means to cover.

Errors: bad input never raises. A broken or truncated video gives the frames that could be read
and an ``error`` string; a file with no readable video stream gives no frames and an ``error``.
Display rotation (side data) is ignored, as vPDQ ignores it: frames are hashed at stored size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypedDict

import numpy as np
from PIL import Image

from hashwatch.errors import DecodeError
from hashwatch.signals._video_decode import KeyframeSampler, NeedExact, timestamps_reorder
from hashwatch.signals.animated import hash_webp_frames
from hashwatch.signals.image import AxisMap, DecodedImage, luma_image
from hashwatch.signals.pdq import FAST, PdqPolicy, hash_decoded
from hashwatch.signals.video_sniff import sniff_video_type

__all__ = [
    "SAMPLINGS",
    "FrameHash",
    "VideoSignals",
    "hash_av_frame",
    "hash_video",
    "hash_video_frames",
    "sniff",
]

SAMPLINGS = ("fast", "exact", "keyframes")

# 8-bit planar/semi-planar YUV formats whose plane 0 is the luma at full size.
_YUV8 = {f"yuv{j}{sub}p" for j in ("", "j") for sub in ("420", "422", "444", "440", "411")}
_YUV8 |= {"yuv410p", "yuva420p", "yuva422p", "yuva444p", "nv12", "nv21"}
_FULL_RANGE_FORMATS = {"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p"}
_COLOR_RANGE_JPEG = 2  # AVCOL_RANGE_JPEG
_END_TOLERANCE_S = 0.5  # a stream that stops earlier than its announced duration is truncated
# Limited (MPEG) range 16..235 to 0..255, as FFmpeg's YUV->RGB conversion does, per 8-bit value.
_EXPAND_LUT = np.clip(np.rint((np.arange(256) - 16.0) * (255.0 / 219.0)), 0, 255).astype(np.uint8)


def _read_errors() -> tuple[type[Exception], ...]:
    """What a failed read or decode raises (PyAV imported here: importing this module, as the
    server does through the hasher, does not load it)."""
    import av

    return (av.FFmpegError, OSError, ValueError, EOFError, MemoryError, DecodeError)


Source = bytes | Path | BinaryIO


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
    container's announced duration in seconds (0.0 when unknown), ``fps`` the stream's average
    frame rate, ``policy`` the PDQ policy's versioned name, ``sampling`` how frames were chosen
    ("fast": keyframe-first, "exact": every k-th decoded frame, see the module docstring).
    ``over_budget``: frames were left undecoded for want of decode budget (``error`` says so).
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
    sampling: str = "exact"
    over_budget: bool = False  # frames were left undecoded for the decode budget (see error)

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
            "sampling": self.sampling,
            "frames": [dict(f) for f in self.frames],
            "error": self.error,
        }


def sniff(head: bytes) -> str | None:
    """The video MIME type of a file starting with ``head`` (see :func:`sniff_video_type`)."""
    return sniff_video_type(head)


def hash_video(
    source: Source,
    *,
    frame_interval: float = 1.0,
    policy: PdqPolicy = FAST,
    sampling: str = "fast",
    threads: int = 1,
    max_decode_pixels: int | None = None,
) -> VideoSignals:
    """PDQ of one frame per ``frame_interval`` seconds of ``source`` (bytes, path, binary file).

    ``sampling``: "fast" (keyframe-first, the default), "keyframes" (keyframes only, at most
    one per interval: as far apart as the video's keyframes) or "exact" (every k-th decoded frame,
    ``k = int(frame_interval * fps)``, as vPDQ); see the module docstring. ``threads``: decoder
    threads (0: FFmpeg's choice). ``max_decode_pixels``: the decode budget (None: none). Never
    raises for bad input: see the module docstring.
    """
    if not frame_interval > 0:
        raise ValueError("frame_interval must be positive")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}")
    if threads < 0:
        raise ValueError("threads must be 0 (FFmpeg's choice) or more")
    job = _Job(_Input(source), policy, threads, max_decode_pixels)
    return job.run(frame_interval, sampling, None)


def hash_video_frames(
    source: Source, frame_numbers: Iterable[int], *, policy: PdqPolicy = FAST, threads: int = 1
) -> VideoSignals:
    """PDQ of the given decoded-frame numbers only (for conformance checks against vPDQ)."""
    wanted = frozenset(frame_numbers)
    return _Job(_Input(source), policy, threads).run(1.0, "exact", wanted)


def hash_av_frame(frame: Any, policy: PdqPolicy = FAST) -> tuple[str, int]:
    """PDQ hash and quality of one decoded PyAV video frame (live streams sample with this).

    Raises :class:`~hashwatch.errors.DecodeError` when the frame's pixels cannot be prepared.
    """
    hashed = hash_decoded(_decoded(frame, policy), policy)
    return hashed.hash, hashed.quality


class _Input:
    """The source, opened (and re-opened, for a fallback to exact sampling) as PyAV input."""

    def __init__(self, source: Source) -> None:
        self._data: bytes | None = None
        self._path: str | None = None
        self._file: Any = None
        self._start = 0
        self.reopenable = True
        if isinstance(source, bytes | bytearray | memoryview):
            self._data = bytes(source)
            self.head = self._data[:256]
        elif isinstance(source, str | os.PathLike):
            self._path = os.fspath(source)
            self.head = _read_head(self._path)
        else:
            self._file, self._start, self.head, self.reopenable = _peek(source)

    def open(self) -> Any:
        """A PyAV input container (raises FFmpeg's or the file's errors)."""
        import av

        if self._data is not None:
            return av.open(io.BytesIO(self._data), mode="r")
        if self._path is not None:
            return av.open(self._path, mode="r")
        if not self.reopenable:
            return av.open(self._file, mode="r")
        self._file.seek(self._start)
        # FFmpeg seeks to absolute offsets: shift them when the file does not start at 0.
        return av.open(_Window(self._file, self._start) if self._start else self._file, mode="r")

    def read_all(self) -> bytes:
        """Every byte (animated WebP, read by Pillow)."""
        if self._data is not None:
            return self._data
        if self._path is not None:
            return Path(self._path).read_bytes()
        if self.reopenable:
            self._file.seek(self._start)
        return bytes(self._file.read())


class _Job:
    """One hashing run over one input; :meth:`run` never raises for bad input."""

    def __init__(
        self, source: _Input, policy: PdqPolicy, threads: int, budget: int | None = None
    ) -> None:
        self.source = source
        self.policy = policy
        self.threads = threads
        self.budget = budget  # decoded pixels left (None: no budget)
        self.budget_limit = budget or 0
        self.result = VideoSignals(
            "video", sniff_video_type(source.head), 0.0, 0.0, 0, 0, policy.name
        )

    def run(self, interval: float, sampling: str, wanted: frozenset[int] | None) -> VideoSignals:
        head = self.source.head
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return self._pillow(interval, sampling, wanted)
        if sampling in ("fast", "keyframes") and self.source.reopenable:
            try:
                return self._decode(interval, sampling, wanted)
            except NeedExact:
                self.result.frames, self.result.error = [], None
        return self._decode(interval, "exact", wanted)

    def _decode(
        self, interval: float, sampling: str, wanted: frozenset[int] | None
    ) -> VideoSignals:
        result = self.result
        result.sampling = sampling
        try:
            container = self.source.open()
        except _read_errors() as exc:
            result.error = f"cannot open as video: {exc}"
            return result
        with container:
            if not container.streams.video:
                result.error = "no video stream"
                return result
            stream = container.streams.video[0]
            self._describe(container, stream)
            stream.codec_context.thread_count = self.threads
            if sampling != "exact":
                if timestamps_reorder(container, stream):
                    raise NeedExact("timestamps are decoding times")
                count = self._fast(container, stream, interval, sampling == "keyframes")
            else:
                count = self._exact(container, stream, interval, wanted)
        fps = result.fps if result.fps > 0 else 30.0
        if count == 0:
            result.error = result.error or "no frame could be decoded"
        elif result.error is None and result.duration - _END_TOLERANCE_S > count / fps:
            result.error = (
                f"truncated: {count} frames ({count / fps:.2f} s) of {result.duration:.2f} s"
            )
        return result

    def _describe(self, container: Any, stream: Any) -> None:
        result = self.result
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        result.fps = float(rate) if rate else 0.0
        result.width, result.height = stream.width, stream.height
        if container.duration is not None and container.duration > 0:
            result.duration = container.duration / 1_000_000
        elif stream.duration is not None and stream.time_base is not None:
            result.duration = float(stream.duration * stream.time_base)

    def _exact(
        self, container: Any, stream: Any, interval: float, wanted: frozenset[int] | None
    ) -> int:
        """Decode every frame; hash every k-th (or the wanted ones). Returns frames decoded."""
        fps = self.result.fps if self.result.fps > 0 else 30.0  # vPDQ needs a rate; 30 if none
        step = max(1, int(interval * fps))
        count = 0
        try:
            for packet in container.demux(stream):  # (what container.decode does, budgeted)
                if packet.size and not self._spend(1):
                    break
                for frame in packet.decode():
                    n, count = count, count + 1
                    if (wanted is None and n % step == 0) or (wanted is not None and n in wanted):
                        self._add(n, *hash_av_frame(frame, self.policy))
        except _read_errors() as exc:
            self.result.error = f"decoding stopped after {count} frames: {exc}"
        return count

    def _spend(self, frames: int) -> bool:
        """Take ``frames`` frames' pixels from the budget; False (and ``error``) when short."""
        pixels = frames * max(1, self.result.width * self.result.height)
        if self.budget is None:
            return True
        if pixels <= self.budget:
            self.budget -= pixels
            return True
        self.result.error = self._over_budget()
        return False

    def _over_budget(self) -> str:
        result = self.result
        result.over_budget = True
        allowed = self.budget_limit // max(1, result.width * result.height)
        return (
            f"decode budget: frames of {result.width}x{result.height} after the first {allowed} "
            f"not decoded (the budget left for them: {self.budget_limit:,} pixels; "
            f"max_decode_pixels)"
        )

    def _fast(self, container: Any, stream: Any, interval: float, keyframes_only: bool) -> int:
        """Keyframe-first sampling (raises NeedExact). Returns the stream's frame count."""
        if not stream.time_base:
            raise NeedExact("the stream has no time base")
        fps = self.result.fps if self.result.fps > 0 else 30.0
        frame_pixels = max(1, self.result.width * self.result.height)
        sampler = KeyframeSampler(
            stream.codec_context,
            float(stream.time_base),
            interval,
            max(1, int(interval * fps)),
            lambda f: hash_av_frame(f, self.policy),
            keyframes_only=keyframes_only,
            max_decodes=None if self.budget is None else self.budget // frame_pixels,
        )
        try:
            for packet in container.demux(stream):
                sampler.feed(packet)
        except _read_errors() as exc:
            self.result.error = f"reading stopped after {sampler.packets} frames: {exc}"
        sampler.finish()
        if self.budget is not None:
            self.budget -= sampler.decodes * frame_pixels
        for n, pdq, quality in sampler.frames():
            self._add(n, pdq, quality)
        if sampler.exhausted:
            self.result.error = self.result.error or self._over_budget()
        self.result.error = self.result.error or sampler.error
        return sampler.packets

    def _add(self, n: int, pdq: str, quality: int) -> None:
        fps = self.result.fps if self.result.fps > 0 else 30.0
        self.result.frames.append(
            FrameHash(frame=n, timestamp=round(n / fps, 3), pdq=pdq, quality=quality)
        )

    def _pillow(
        self, interval: float, sampling: str, wanted: frozenset[int] | None
    ) -> VideoSignals:
        """An animated (or still) WebP, frame by frame with Pillow (see its module)."""
        result = self.result
        result.sampling = sampling
        try:
            data = self.source.read_all()
        except _read_errors() as exc:
            result.error = f"cannot read as animated image: {exc}"
            return result
        found = hash_webp_frames(
            data,
            self._hash_pillow_frame,
            interval=interval,
            sampling=sampling,
            wanted=wanted,
            max_decode_pixels=self.budget,
        )
        result.width, result.height = found.width, found.height
        result.duration, result.fps, result.error = found.duration, found.fps, found.error
        result.over_budget = found.over_budget
        for n, pdq, quality in found.frames:
            self._add(n, pdq, quality)
        return result

    def _hash_pillow_frame(self, im: Image.Image) -> tuple[str, int]:
        """One decoded RGB(A) frame: luma reduced at once (fast), or full RGB (reference)."""
        full = self.policy.kind == "reference" or self.policy.decode_min_side is None
        hashed = hash_decoded(
            _prepared(im.convert("RGB") if full else im, self.policy), self.policy
        )
        return hashed.hash, hashed.quality


def _peek(stream: Any) -> tuple[Any, int, bytes, bool]:
    """``(file for PyAV, start, first bytes, re-openable)`` of a binary file object, left unread.

    An unreadable object gives no bytes: opening it then reports the error.
    """
    try:
        if stream.seekable():
            start = int(stream.tell())
            head = bytes(stream.read(256))
            stream.seek(start)
            return stream, start, head, True
        head = bytes(stream.read(256))
    except (AttributeError, OSError, ValueError, TypeError):
        return stream, 0, b"", False
    return _Replay(head, stream), 0, head, False


class _Window:
    """A seekable binary file seen from ``start`` on (offsets and ``tell`` shifted)."""

    def __init__(self, stream: Any, start: int) -> None:
        self._stream = stream
        self._start = start

    def read(self, size: int = -1) -> bytes:
        return bytes(self._stream.read(size))

    def seek(self, offset: int, whence: int = 0) -> int:
        where = self._start + offset if whence == 0 else offset
        return int(self._stream.seek(where, whence)) - self._start

    def tell(self) -> int:
        return int(self._stream.tell()) - self._start

    def seekable(self) -> bool:
        return True


class _Replay:
    """A forward-only reader: ``head`` (already read from ``stream``), then the rest of it."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + bytes(self._stream.read()), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return bytes(self._stream.read(size))


def _read_head(path: str) -> bytes:
    """The first bytes of ``path`` for sniffing (empty when unreadable: av.open will report)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(256)
    except OSError:
        return b""


def _decoded(frame: Any, policy: PdqPolicy) -> DecodedImage:
    """The frame as a :class:`DecodedImage`: reduced luma (fast) or full-size RGB (reference)."""
    if policy.kind == "reference" or policy.decode_min_side is None:
        return _prepared(Image.fromarray(frame.to_ndarray(format="rgb24"), "RGB"), policy)
    luma = _luma_plane(frame)
    if luma is None:
        return _prepared(frame.to_image(), policy)
    return _prepared(Image.fromarray(luma, "L"), policy, full_range=_is_full_range(frame))


def _prepared(image: Image.Image, policy: PdqPolicy, *, full_range: bool = True) -> DecodedImage:
    """A full-size picture ready for ``policy``: as is (reference) or reduced luma (fast)."""
    width, height = image.size
    if policy.kind == "reference" or policy.decode_min_side is None:
        return DecodedImage(image, width, height, "video", 1, AxisMap(height), AxisMap(width))
    image = luma_image(image, policy.sixteen_bit)
    min_side = policy.decode_min_side
    gx, gy = max(1, width // min_side), max(1, height // min_side)
    if gx > 1 or gy > 1:
        image = image.reduce((gx, gy))
    if not full_range:
        image = Image.fromarray(_EXPAND_LUT[np.asarray(image)], "L")
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
