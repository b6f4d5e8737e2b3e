"""Watch many streams at once: a reader thread per stream, one matching thread for all.

Why this shape: decoding is the cost, and PyAV releases the GIL while FFmpeg reads and decodes,
so one thread per stream spreads streams over the cores. Matching is cheap and wants batches
(one index query for every sample that is waiting) and one owner, so a single thread takes the
readers' events from one queue, matches the samples in a batch, feeds each stream's
:class:`~hashwatch.stream.alerts.AlertWindow`, and writes every event in the order it
happened per stream (a stream's ``stream.end`` comes after its last alert). That thread alone
uses the :class:`~hashwatch.matching.matcher.Matcher`, and calls its ``refresh()`` every
``refresh_s`` so that list imports, revocations and new lists apply while the watcher runs.

Nothing a stream does stops the others: a reader reports its failures as events and retries
(see :mod:`hashwatch.stream.sampler`); a failure to match or to deliver is a ``watch.error``
event, and the samples of that batch count as not matching.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hashwatch.matching.matcher import Matcher, Signal
from hashwatch.signals.types import HashType
from hashwatch.stream.alerts import AlertWindow, SampleMatches
from hashwatch.stream.delivery import AlertSink
from hashwatch.stream.sampler import (
    FrameSample,
    ReaderEvent,
    ReaderSettings,
    StreamEnded,
    StreamFailed,
    StreamOpened,
    StreamReader,
)
from hashwatch.stream.sources import StreamSource, check_sources

__all__ = ["StreamWatcher", "WatchConfig"]

_BATCH = 256  # samples matched in one call at most


@dataclass(frozen=True)
class WatchConfig:
    """What a watcher needs besides its streams: reading, the k-of-n rule, housekeeping."""

    reader: ReaderSettings
    k: int = 3
    n: int = 5
    refresh_s: float = 5.0
    stats_s: float | None = None  # emit stream.stats this often (None: never)


class _Stop:
    """Queued by :meth:`StreamWatcher.stop` to wake the matching thread."""


class StreamWatcher:
    """Watches ``sources`` against ``matcher``; every event goes to ``on_event`` (one thread
    calls it), every alert also to each sink. ``start``, then ``wait``; ``stop`` to end."""

    def __init__(
        self,
        sources: Sequence[StreamSource],
        matcher: Matcher,
        config: WatchConfig,
        on_event: Callable[[dict[str, Any]], None],
        sinks: Sequence[AlertSink] = (),
    ) -> None:
        check_sources(list(sources))
        self.matcher = matcher
        self.config = config
        self.on_event = on_event
        self.sinks = list(sinks)
        self.stop_event = threading.Event()
        self.alerts = 0
        self._queue: queue.Queue[ReaderEvent | _Stop] = queue.Queue()
        self.readers = [
            StreamReader(source, config.reader, self.stop_event, self._queue.put)
            for source in sources
        ]
        self.windows = {
            r.source.url: AlertWindow(r.source.label, config.k, config.n) for r in self.readers
        }
        self.ended: dict[str, str] = {}  # url -> reason
        self._threads: list[threading.Thread] = []
        self._matching = threading.Thread(
            target=self._match_loop, name="hashwatch-match", daemon=True
        )
        self._done = threading.Event()
        self._abandon = threading.Event()  # stop waiting for readers that do not end

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._matching.start()
        for n, reader in enumerate(self.readers):
            thread = threading.Thread(target=reader.run, name=f"hashwatch-stream-{n}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Ask every reader to end (each ends within its read timeout, usually at once)."""
        self.stop_event.set()
        self._queue.put(_Stop())

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once every stream has ended and its events are written."""
        return self._done.wait(timeout_s)

    def close(self, grace_s: float = 2.0, flush_s: float = 5.0) -> None:
        """Stop; give the readers ``grace_s`` to end, then flush the sinks for ``flush_s``.

        A reader blocked in a read that has no data (a silent UDP port, a stalled server)
        notices the stop only when its read timeout fires; it is not waited for: its stream
        gets its ``stream.end`` from here, and its thread (a daemon) ends with the process.
        """
        self.stop()
        if not self._done.wait(grace_s):
            self._abandon.set()
            self._queue.put(_Stop())
            self._done.wait(2.0)
        deadline = time.monotonic() + flush_s
        for sink in self.sinks:
            sink.close(max(0.5, deadline - time.monotonic()))

    @property
    def failed(self) -> list[str]:
        """Labels of the streams that ended in failure (the CLI's exit code)."""
        return [r.source.label for r in self.readers if self.ended.get(r.source.url) == "failed"]

    def run(self, *, poll_s: float = 0.5) -> None:
        """Start and block until every stream ended or :meth:`stop` (a signal handler, another
        thread, Ctrl-C) was called; then close."""
        self.start()
        try:
            while not self.wait(poll_s) and not self.stop_event.is_set():
                pass
        except KeyboardInterrupt:
            pass
        self.close()

    # -- the matching thread -------------------------------------------------------------

    def _match_loop(self) -> None:
        next_refresh = time.monotonic() + self.config.refresh_s
        stats_s = self.config.stats_s
        next_stats = time.monotonic() + stats_s if stats_s else None
        while len(self.ended) < len(self.readers) and not self._abandon.is_set():
            now = time.monotonic()
            timers = [t for t in (next_refresh, next_stats) if t is not None]
            try:
                first = self._queue.get(timeout=max(0.01, min(timers) - now))
            except queue.Empty:
                first = None
            batch = [first] if first is not None else []
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._handle(batch)
            now = time.monotonic()
            if now >= next_refresh:
                self._refresh()
                next_refresh = now + self.config.refresh_s
            if next_stats is not None and stats_s and now >= next_stats:
                self._emit_stats()
                next_stats = now + stats_s
        self._drain()
        for reader in self.readers:
            if reader.source.url not in self.ended:
                stats = reader.stats
                ended = StreamEnded(
                    reader.source, "stopped", stats.frames, stats.samples, stats.stream_time
                )
                self._handle([ended])
        self._done.set()

    def _drain(self) -> None:
        """What readers queued before the loop ended."""
        batch: list[ReaderEvent | _Stop] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self._handle(batch)

    def _handle(self, batch: Sequence[ReaderEvent | _Stop]) -> None:
        samples = [e for e in batch if isinstance(e, FrameSample)]
        matched = self._match(samples)
        for event in batch:
            if isinstance(event, FrameSample):
                self._on_sample(event, matched.get(id(event), []))
            elif isinstance(event, StreamOpened):
                self._on_opened(event)
            elif isinstance(event, StreamFailed):
                self._emit(
                    "stream.error",
                    stream=event.source.label,
                    stage=event.stage,
                    error=event.error,
                    attempt=event.attempt,
                    retry_in=_rounded(event.retry_in),
                    stream_time=_rounded(event.stream_time),
                )
            elif isinstance(event, StreamEnded):
                self.ended[event.source.url] = event.reason
                self._emit(
                    "stream.end",
                    stream=event.source.label,
                    reason=event.reason,
                    frames=event.frames,
                    samples=event.samples,
                    stream_time=_rounded(event.stream_time),
                )

    def _match(self, samples: list[FrameSample]) -> dict[int, list[Any]]:
        if not samples:
            return {}
        items = [[Signal(HashType.PDQ, s.pdq, s.quality)] for s in samples]
        try:
            results = self.matcher.match_many(items)
            for sample, result in zip(samples, results, strict=True):
                if sample.features is not None:  # a list with local features is watched
                    self.matcher.match_local(result, sample.features)
        except Exception as exc:  # a database hiccup must not end the watch
            self._emit("watch.error", error=f"matching failed: {type(exc).__name__}: {exc}")
            return {}
        return {id(s): r.matches for s, r in zip(samples, results, strict=True)}

    def _on_sample(self, sample: FrameSample, matches: list[Any]) -> None:
        window = self.windows[sample.source.url]
        found = SampleMatches.of(sample.stream_time, sample.pts, matches, sample.lag_s)
        for alert in window.add(found):
            event = alert.as_event()
            self.alerts += 1
            self.on_event(event)
            for sink in self.sinks:
                try:
                    sink.send(event)
                except Exception as exc:  # one sink failing must not stop others
                    self._emit(
                        "watch.error", error=f"alert {alert.id} not delivered to a sink: {exc}"
                    )

    def _on_opened(self, event: StreamOpened) -> None:
        source = event.source
        if not event.reconnect:
            self._emit("stream.open", stream=source.label, **event.info)
            return
        # A short outage keeps the window (no second alert for the same episode); after one
        # longer than the window spans, what was matched before is not "recent" any more.
        span = self.config.n * self.config.reader.frame_interval
        if event.outage_s is not None and event.outage_s > span:
            self.windows[source.url].reset()
        self._emit(
            "stream.reconnect",
            stream=source.label,
            outage_s=_rounded(event.outage_s),
            attempts=event.attempts,
            **event.info,
        )

    def _refresh(self) -> None:
        try:
            self.matcher.refresh()
        except Exception as exc:  # keep matching with what was loaded
            self._emit("watch.error", error=f"list refresh failed: {type(exc).__name__}: {exc}")

    def _emit_stats(self) -> None:
        for reader in self.readers:
            if reader.source.url in self.ended:
                continue
            s = reader.stats
            self._emit(
                "stream.stats",
                stream=reader.source.label,
                connected=s.connected,
                frames=s.frames,
                samples=s.samples,
                stream_time=_rounded(s.stream_time),
                lag_s=round(s.lag_s, 3),
                max_lag_s=round(s.max_lag_s, 3),
                bad_packets=s.bad_packets,
            )

    def _emit(self, event: str, **fields: Any) -> None:
        self.on_event({"event": event, "at": datetime.now(UTC).isoformat(), **fields})


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
