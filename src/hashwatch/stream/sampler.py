"""Read one stream until told to stop: open, decode, sample by presentation time, reconnect.

Why sample by presentation time and not by frame count: a live stream's frame rate is what the
sender says it is, frames go missing on a lossy link, and a reconnect starts the count again.
Each decoded frame gets a *stream time* (:class:`StreamClock`): seconds since the first frame
this watcher saw of the stream, advanced by the frames' own timestamps and, across a reconnect,
by the wall time the stream was away. A frame is hashed when its stream time reaches the next
point of a grid one ``frame_interval`` apart (:class:`SampleSchedule`), so 1 frame per second
stays 1 per second whatever the frame rate, and a timestamp jump (a new HLS discontinuity, a
publisher restarting at 0) neither floods nor starves the sampler.

Why (almost) every frame is still decoded: inter-coded video needs its reference frames, so a
live stream cannot skip to the sampled frames. The decoder does skip *non-reference* frames
(``skip_frame = "NONREF"``, usually B-frames; :attr:`ReaderSettings.skip_nonref`, on by
default): nothing depends on them, so every other picture decodes exactly as before, and a
sample that would have fallen on one falls on the next decoded frame, a few hundredths of a
second later. On x264 footage it took a quarter off decoding: 18 instead of 13 720p30 streams
on one core (docs/benchmarks.md). Each stream decodes on one thread of its own: frame threading
would add a frame of latency per thread, and streams already run in parallel.

Reconnects: a network stream that fails to open, stops sending, or ends is opened again after
an exponential backoff with jitter (:class:`Backoff`; in server mode it listens again at once);
a file is read once, paced at real time when ``realtime`` is set (like ``ffmpeg -re``), and
its end is the stream's end. Every failure is an event, never an exception out of
:meth:`StreamReader.run`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import av
import httpx

from hashwatch.errors import DecodeError
from hashwatch.signals.pdq import FAST, PdqPolicy
from hashwatch.signals.video import hash_av_frame
from hashwatch.stream.sources import StreamSource

if TYPE_CHECKING:
    from hashwatch.signals.local_features import QueryFeatures

__all__ = [
    "Backoff",
    "FrameSample",
    "ReaderEvent",
    "ReaderSettings",
    "ReaderStats",
    "SampleSchedule",
    "StreamClock",
    "StreamEnded",
    "StreamFailed",
    "StreamOpened",
    "StreamReader",
    "describe_frame",
    "hls_has_ended",
]

# What opening or reading a stream may raise for reasons outside this program.
STREAM_ERRORS = (av.FFmpegError, OSError, EOFError, ValueError, MemoryError, DecodeError)
# Corrupt packets are skipped (decoders conceal damage); this many in a row end the connection.
MAX_BAD_PACKETS = 100


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnect attempts: ``initial_s`` doubling up to ``max_s``, each varied by
    ``±jitter`` so that many watchers of one failed server do not return in lockstep."""

    initial_s: float = 1.0
    max_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts failures, from 1)."""
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.max_s, base * (1.0 + spread)))


class StreamClock:
    """Stream time of each decoded frame (see the module docstring).

    A step between two frames' timestamps is taken as it is when it is between 0 and
    ``max_step_s``; anything else (a jump back, a jump far ahead, a missing timestamp) counts as
    one frame. After a reconnect the first frame comes ``outage_s`` after the last one.
    """

    def __init__(self, max_step_s: float = 10.0) -> None:
        self.max_step_s = max_step_s
        self.now: float | None = None
        self._last_pts: float | None = None
        self._gap_s = 0.0

    def reconnected(self, outage_s: float) -> None:
        self._last_pts = None
        self._gap_s = max(0.0, outage_s)

    def advance(self, pts: float | None, frame_step: float) -> float:
        """The stream time of the next frame, whose timestamp (seconds) is ``pts``."""
        if self.now is None:
            self.now = 0.0
        elif self._last_pts is None:
            self.now += max(self._gap_s, frame_step)
        elif pts is None:
            self.now += frame_step
        else:
            delta = pts - self._last_pts
            self.now += delta if 0.0 <= delta <= self.max_step_s else frame_step
        if pts is not None:
            self._last_pts = pts
        elif self._last_pts is not None:
            self._last_pts += frame_step
        self._gap_s = 0.0
        return self.now


class SampleSchedule:
    """Which frames to hash: the first frame at or after each point of a grid ``interval``
    apart, starting with the first frame. After a gap the grid resumes after it (no burst)."""

    # Timestamps are rationals turned into floats: 0.9999999 means 1.0.
    _TOLERANCE_S = 1e-3

    def __init__(self, interval: float) -> None:
        if not interval > 0:
            raise ValueError("the frame interval must be above 0")
        self.interval = interval
        self.next_due = 0.0

    def take(self, stream_time: float) -> bool:
        """True when the frame at ``stream_time`` is to be hashed (and advances the grid)."""
        if stream_time + self._TOLERANCE_S < self.next_due:
            return False
        passed = math.floor((stream_time - self.next_due) / self.interval + 1e-9) + 1
        self.next_due += self.interval * max(1, passed)
        return True


@dataclass(frozen=True)
class ReaderSettings:
    """How streams are read (one object shared by all readers of a watcher)."""

    frame_interval: float = 1.0
    policy: PdqPolicy = FAST
    timeout_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    max_retries: int | None = None  # None: a network stream is retried for ever
    reconnect: bool = True  # network streams; files never reconnect
    realtime: bool = True  # pace files at real time (network streams pace themselves)
    skip_nonref: bool = True  # see the module docstring and docs/benchmarks.md
    decoder_threads: int = 1
    # Describe a sampled frame's local features at most once per this many seconds of stream
    # (None: never; the watcher sets it when a watched list uses local features). ORB costs
    # more than PDQ a frame, so it runs at a lower rate than the hashes (docs/streams.md).
    feature_interval: float | None = None


@dataclass(frozen=True)
class StreamOpened:
    """A connection was made (``reconnect``: after a drop, ``outage_s`` later)."""

    source: StreamSource
    info: dict[str, Any]
    reconnect: bool = False
    outage_s: float | None = None
    attempts: int = 0


@dataclass(frozen=True)
class StreamFailed:
    """Opening or reading failed; ``retry_in`` seconds until the next try (None: no more)."""

    source: StreamSource
    stage: str  # "open", "read" or "internal"
    error: str
    attempt: int
    retry_in: float | None
    stream_time: float | None = None  # where the stream was when it failed


@dataclass(frozen=True)
class FrameSample:
    """One sampled frame's hash. ``pts``: the frame's own timestamp in seconds (None when it
    had none); ``lag_s``: how far behind real time the reader was when it decoded the frame."""

    source: StreamSource
    stream_time: float
    pts: float | None
    pdq: str
    quality: int
    lag_s: float
    decoded_at: float  # time.monotonic() when the frame came out of the decoder
    # The frame's local features, on the samples ReaderSettings.feature_interval picks.
    features: QueryFeatures | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StreamEnded:
    """The reader is done: ``reason`` is "eof" (a file ended), "stopped" or "failed"."""

    source: StreamSource
    reason: str
    frames: int
    samples: int
    stream_time: float | None


ReaderEvent = StreamOpened | StreamFailed | FrameSample | StreamEnded


@dataclass
class ReaderStats:
    """Counters of one reader, read by the watcher for ``stream.stats`` (written by one thread
    only; a reader of these sees a recent value, which is all a statistic needs)."""

    frames: int = 0
    samples: int = 0
    bad_packets: int = 0
    unhashable: int = 0
    connected: bool = False
    lag_s: float = 0.0
    max_lag_s: float = 0.0
    stream_time: float | None = None
    started_at: float | None = None  # time.monotonic() at stream time 0 (see _on_frame)


class _Dropped(Exception):
    """A connection ended without an error from FFmpeg (the sender closed it)."""


class StreamReader:
    """Reads one :class:`StreamSource` and hands every event to ``emit`` until ``stop`` is set
    or the stream ends for good. Run :meth:`run` on a thread of its own."""

    def __init__(
        self,
        source: StreamSource,
        settings: ReaderSettings,
        stop: threading.Event,
        emit: Callable[[ReaderEvent], None],
    ) -> None:
        self.source = source
        self.settings = settings
        self.stop = stop
        self.emit = emit
        self.stats = ReaderStats()
        self.clock = StreamClock()
        self.schedule = SampleSchedule(settings.frame_interval)
        interval = settings.feature_interval
        self.feature_schedule = SampleSchedule(interval) if interval is not None else None
        self._announced = False  # a stream.open was sent: later connections are reconnects

    def run(self) -> None:
        """Read until stopped or done; always ends with one :class:`StreamEnded`."""
        try:
            reason = self._run()
        except Exception as exc:  # a bug must end this stream, not the watcher
            self.emit(self._failed("internal", exc, 0, None))
            reason = "failed"
        self.stats.connected = False
        self.emit(
            StreamEnded(self.source, reason, self.stats.frames, self.stats.samples, self.clock.now)
        )

    def _run(self) -> str:
        failures = 0  # in a row, since the last connection that gave frames
        dropped_at: float | None = None
        while not self.stop.is_set():
            try:
                container = self._open()
            except STREAM_ERRORS as exc:
                if self.stop.is_set():
                    break
                if self.source.listen and isinstance(exc, TimeoutError):
                    continue  # nobody published during this wait: listen again
                failures += 1
                if not self._wait_to_retry("open", exc, failures):
                    break
                continue
            frames_before = self.stats.frames
            outage = None if dropped_at is None else time.monotonic() - dropped_at
            with container:
                error = self._connection(container, outage, failures)
            if self.stop.is_set():
                break
            if error is None:
                return "eof"
            if self.source.is_file:
                self.emit(self._failed("read", error, 1, None))
                return "failed"
            dropped_at = time.monotonic()
            if self.stats.frames > frames_before:
                failures = 0
            failures += 1
            if not self._wait_to_retry("read", error, failures):
                break
        return "stopped" if self.stop.is_set() else "failed"

    def _connection(
        self, container: Any, outage: float | None, failures: int
    ) -> BaseException | None:
        """Decode one connection to its end: None when the stream ended for good (a file's
        end, an HLS playlist that says it ended, or any end with reconnecting off), else why
        it stopped."""
        try:
            stream = self._video_stream(container)
            info = _info(container, stream)
            reconnect = self._announced
            self.emit(StreamOpened(self.source, info, reconnect, outage, failures))
            self._announced = True
            if reconnect:
                self.clock.reconnected(outage or 0.0)
            self.stats.connected = True
            self._decode(container, stream)
        except STREAM_ERRORS as exc:
            return exc
        finally:
            self.stats.connected = False
        if self.source.is_file or not self.settings.reconnect or self.stop.is_set():
            return None
        if container.format.name == "hls" and hls_has_ended(self.source.path, self.settings):
            return None
        return _Dropped("the stream ended")

    # -- connections ---------------------------------------------------------------------

    def _open(self) -> Any:
        source, settings = self.source, self.settings
        return av.open(
            source.path,
            mode="r",
            options=source.open_options(settings.timeout_s),
            timeout=source.pyav_timeout(settings.timeout_s),
        )

    def _video_stream(self, container: Any) -> Any:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.thread_count = self.settings.decoder_threads
        if self.settings.skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        return stream

    def _wait_to_retry(self, stage: str, error: BaseException | None, failures: int) -> bool:
        """Report a failure; wait the backoff (False when no retry is due: the stream failed)."""
        settings = self.settings
        give_up = (self.source.is_file or not settings.reconnect) or (
            settings.max_retries is not None and failures > settings.max_retries
        )
        if give_up:
            retry_in = None
        elif self.source.listen:
            retry_in = 0.0 if stage == "read" else settings.backoff.delay(failures)
        else:
            retry_in = settings.backoff.delay(failures)
        self.emit(self._failed(stage, error, failures, retry_in))
        if retry_in is None:
            return False
        if retry_in > 0:
            self.stop.wait(retry_in)
        return not self.stop.is_set()

    def _failed(
        self, stage: str, error: BaseException | None, attempt: int, retry_in: float | None
    ) -> StreamFailed:
        text = self._describe(error) if error is not None else "the stream ended"
        return StreamFailed(self.source, stage, text, attempt, retry_in, self.clock.now)

    def _describe(self, exc: BaseException) -> str:
        """A one-line reason, URL redacted; FFmpeg's "immediate exit requested" is PyAV's
        timeout firing, so it is named as such."""
        if isinstance(exc, av.ExitError):
            return f"no data for {self.settings.timeout_s:g} s (timed out)"
        if isinstance(exc, _Dropped):
            return str(exc)
        text = str(exc) or type(exc).__name__
        return self.source.redact(f"{type(exc).__name__}: {text}")

    # -- frames --------------------------------------------------------------------------

    def _decode(self, container: Any, stream: Any) -> None:
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        frame_step = 1.0 / float(rate) if rate else 1.0 / 30.0
        for frame in self._frames(container, stream):
            self._on_frame(frame, frame_step)
            if self.stop.is_set():
                return

    def _frames(self, container: Any, stream: Any) -> Iterator[Any]:
        """Decoded frames; a corrupt packet is skipped, a run of them ends the connection."""
        bad = 0
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            try:
                frames = packet.decode()
            except (av.InvalidDataError, av.PatchWelcomeError) as exc:
                bad += 1
                self.stats.bad_packets += 1
                if bad >= MAX_BAD_PACKETS:
                    raise ValueError(f"{bad} packets in a row could not be decoded") from exc
                continue
            bad = 0
            yield from frames

    def _on_frame(self, frame: Any, frame_step: float) -> None:
        stats = self.stats
        stats.frames += 1
        pts = float(frame.time) if frame.time is not None else None
        stream_time = self.clock.advance(pts, frame_step)
        stats.stream_time = stream_time
        now = time.monotonic()
        paced = self.source.is_file and self.settings.realtime
        # A paced file starts its clock at its first frame. A network stream's clock is
        # anchored at the earliest wall time any frame allows: frames that waited in a buffer
        # arrive "early" for their stream time and move the anchor back, so lag is measured
        # against the stream's own pace, not against the first frame's arrival.
        if stats.started_at is None or (not paced and now - stream_time < stats.started_at):
            stats.started_at = now - stream_time
        due = stats.started_at + stream_time
        if paced and due > now:
            if self.stop.wait(due - now):
                return
            now = time.monotonic()
        stats.lag_s = max(0.0, now - due)
        stats.max_lag_s = max(stats.max_lag_s, stats.lag_s)
        if not self.schedule.take(stream_time):
            return
        try:
            pdq, quality = hash_av_frame(frame, self.settings.policy)
        except DecodeError:
            stats.unhashable += 1  # one odd frame: the next sample decides
            return
        stats.samples += 1
        features = None
        if self.feature_schedule is not None and self.feature_schedule.take(stream_time):
            try:
                features = describe_frame(frame)
            except (av.FFmpegError, ValueError, MemoryError):
                features = None  # one odd frame keeps its hash; the next feature sample decides
        self.emit(
            FrameSample(
                self.source,
                stream_time,
                pts,
                pdq,
                quality,
                stats.lag_s,
                time.monotonic(),
                features,
            )
        )


def describe_frame(frame: Any) -> QueryFeatures:
    """A decoded frame's local features: the decoder's scaler makes the grey picture ORB
    describes (``MAX_SIDE`` pixels on the longer side) straight from the frame's planes."""
    from hashwatch.signals.local_features import MAX_SIDE, describe_query

    w, h = int(frame.width), int(frame.height)
    scale = min(1.0, MAX_SIDE / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grey = frame.reformat(width=size[0], height=size[1], format="gray").to_image()
    return describe_query(grey)


def hls_has_ended(url: str, settings: ReaderSettings) -> bool:
    """True when the HLS playlist at ``url`` says the stream is over (``#EXT-X-ENDLIST``).

    FFmpeg's HLS demuxer reports the same end of data for a finished playlist and for a server
    that stopped answering, so the playlist is asked: an ended stream is not reopened (that
    would replay it), anything else is a drop. A master playlist is followed to its first
    variant. Any failure to ask counts as "not ended".
    """
    try:
        with httpx.Client(timeout=settings.timeout_s, follow_redirects=True) as client:
            for _ in range(2):
                text = client.get(url).text
                if "#EXT-X-ENDLIST" in text:
                    return True
                variants = [
                    line.strip()
                    for previous, line in pairwise(text.splitlines())
                    if previous.startswith("#EXT-X-STREAM-INF") and line.strip()
                ]
                if not variants:
                    return False
                url = urljoin(url, variants[0])
    except httpx.HTTPError:
        return False
    return False


def _info(container: Any, stream: Any) -> dict[str, Any]:
    """What a ``stream.open`` event says about the stream."""
    rate = stream.average_rate or stream.guessed_rate
    return {
        "format": container.format.name,
        "codec": stream.codec_context.name,
        "width": stream.width,
        "height": stream.height,
        "fps": round(float(rate), 3) if rate else None,
    }
