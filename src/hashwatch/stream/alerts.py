"""When a stream's sampled frames add up to an alert: k of the last n, once per episode.

Why k of n: one frame within PDQ's threshold of a list entry can be a chance collision or a
brief cut; known material that is really being shown matches frame after frame. An alert is
raised when ``k`` of the last ``n`` sampled frames (default 3 of 5) match, and it is a lead for a
person to look at, not a verdict.

What is counted, and why two ways. Hash lists hold known videos in two shapes: one entry per
video whose frames are all its hashes (vPDQ), or one entry per frame hash (a plain list of PDQ
hashes cut from a video). Counting matches per *entry* suits the first shape and never fires on
the second, where each sampled second of a playing video matches a different entry. So:

* **per list** — when ``k`` of the last ``n`` samples match entries of one list, an alert names
  the entry matched in most of those samples (ties: the closest, then the first seen), and
  lists every entry of that list in the window;
* **per entry** — while a list's episode is open, an entry that on its own reaches ``k`` of
  ``n`` (another known video following the first) gets an alert of its own.

An episode ends, and the alert re-arms, when the window holds no match of that list (or of that
entry). Only ``known`` lists count: a match in a negative list suppresses the others (the
matcher does that) and ``ignorable`` lists are not alerts. Each alert's facts are built from
the best match's :meth:`~hashwatch.matching.matcher.Match.as_dict`, so what the matcher learns
to say about a match (a reference frame's time in a known video, ...) reaches the alert.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hashwatch.lists.model import ListKind
from hashwatch.matching.matcher import Match

__all__ = ["AlertWindow", "SampleMatches", "StreamAlert"]


@dataclass(frozen=True)
class SampleMatches:
    """One sampled frame and its matches in ``known`` lists."""

    stream_time: float
    pts: float | None
    matches: tuple[Match, ...]
    lag_s: float = 0.0

    @classmethod
    def of(
        cls, stream_time: float, pts: float | None, matches: Sequence[Match], lag_s: float = 0.0
    ) -> SampleMatches:
        """Keep the decisive ``known`` matches (partial video matches are not alerts)."""
        known = tuple(m for m in matches if m.kind == ListKind.KNOWN and not m.partial)
        return cls(stream_time, pts, known, lag_s)


@dataclass(frozen=True)
class EntryInWindow:
    """One entry's matches among the window's samples."""

    list: str
    entry_id: int
    samples: int
    best: Match
    first_time: float
    last_time: float

    def as_dict(self) -> dict[str, Any]:
        return {"entry_id": self.entry_id, "samples": self.samples, "distance": self.best.distance}


@dataclass(frozen=True)
class StreamAlert:
    """An alert: ``counted_by`` "list" or "entry" (see the module docstring), ``matched`` of
    the last ``window`` samples matched, ``segment`` spans those samples in stream time."""

    stream: str
    stream_time: float
    pts: float | None
    best: Match
    matched: int
    window: int
    required: int
    counted_by: str
    segment: tuple[float, float]
    entries: tuple[EntryInWindow, ...]
    lag_s: float
    detected_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def as_event(self) -> dict[str, Any]:
        """The JSON object written to stdout and sent to webhooks."""
        return {
            "event": "stream.alert",
            "id": self.id,
            "stream": self.stream,
            **self.best.as_dict(),
            "stream_time": round(self.stream_time, 3),
            "pts": None if self.pts is None else round(self.pts, 3),
            "detected_at": self.detected_at.isoformat(),
            "segment": {"start": round(self.segment[0], 3), "end": round(self.segment[1], 3)},
            "matched": self.matched,
            "window": self.window,
            "required": self.required,
            "counted_by": self.counted_by,
            "entries": [e.as_dict() for e in self.entries],
            "lag_s": round(self.lag_s, 3),
        }


class AlertWindow:
    """The last ``n`` samples of one stream and the episodes open on them."""

    def __init__(self, stream: str, k: int = 3, n: int = 5) -> None:
        if not 1 <= k <= n:
            raise ValueError("k of n needs 1 <= k <= n")
        self.stream = stream
        self.k = k
        self.n = n
        self.samples: deque[SampleMatches] = deque(maxlen=n)
        self.open_lists: set[str] = set()
        self.alerted: set[tuple[str, int]] = set()

    def reset(self) -> None:
        """Forget the samples and re-arm every alert (after a long outage)."""
        self.samples.clear()
        self.open_lists.clear()
        self.alerted.clear()

    def add(self, sample: SampleMatches) -> list[StreamAlert]:
        """Add the newest sample; the alerts it completes (usually none)."""
        self.samples.append(sample)
        entries = self._entries()
        lists_now = {e.list for e in entries}
        self.open_lists &= lists_now
        self.alerted &= {(e.list, e.entry_id) for e in entries}
        alerts: list[StreamAlert] = []
        for list_name in sorted(lists_now):
            of_list = [e for e in entries if e.list == list_name]
            times = [s.stream_time for s in self.samples if _has_list(s, list_name)]
            if list_name not in self.open_lists and len(times) >= self.k:
                top = max(of_list, key=lambda e: (e.samples, -e.best.distance, -e.first_time))
                self.open_lists.add(list_name)
                self.alerted.add((list_name, top.entry_id))
                alerts.append(self._alert(top, len(times), "list", (times[0], times[-1]), of_list))
            for entry in of_list:
                key = (entry.list, entry.entry_id)
                if key not in self.alerted and entry.samples >= self.k:
                    self.alerted.add(key)
                    span = (entry.first_time, entry.last_time)
                    alerts.append(self._alert(entry, entry.samples, "entry", span, of_list))
        return alerts

    def _entries(self) -> list[EntryInWindow]:
        """Every (list, entry) matched in the window, in order of first appearance."""
        found: dict[tuple[str, int], EntryInWindow] = {}
        for sample in self.samples:
            seen_here: set[tuple[str, int]] = set()
            for m in sample.matches:
                key = (m.list, m.entry_id)
                old = found.get(key)
                if old is None:
                    found[key] = EntryInWindow(
                        m.list, m.entry_id, 1, m, sample.stream_time, sample.stream_time
                    )
                else:
                    counted = old.samples + (0 if key in seen_here else 1)
                    best = m if m.distance < old.best.distance else old.best
                    found[key] = EntryInWindow(
                        m.list, m.entry_id, counted, best, old.first_time, sample.stream_time
                    )
                seen_here.add(key)
        return list(found.values())

    def _alert(
        self,
        entry: EntryInWindow,
        matched: int,
        counted_by: str,
        segment: tuple[float, float],
        of_list: list[EntryInWindow],
    ) -> StreamAlert:
        newest = self.samples[-1]
        return StreamAlert(
            stream=self.stream,
            stream_time=newest.stream_time,
            pts=newest.pts,
            best=entry.best,
            matched=matched,
            window=self.n,
            required=self.k,
            counted_by=counted_by,
            segment=segment,
            entries=tuple(of_list),
            lag_s=newest.lag_s,
        )


def _has_list(sample: SampleMatches, list_name: str) -> bool:
    return any(m.list == list_name for m in sample.matches)
