"""The matching service behind the routes: hashing in memory, matching, recording, freshness.

One :class:`MatchService` per server process. It holds the process's matchers (plain and
dihedral, sharing one PDQ index) and keeps them fresh: :meth:`refresh_if_changed` reads the
database's change sequence (one cheap ``SELECT``) and, when it moved, applies only the rows
changed since (``SyncedPdqIndex.refresh``) — no rebuild, and queries keep being answered
between the short exclusive sections in which the index is updated.

Uploaded bytes are hashed from memory and dropped; what is kept of a match is a match record
(time, key, list, entry, distance), an audit event and, for webhooks, a queued event.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from hashwatch.app import Hashwatch, signals_of
from hashwatch.audit import AuditLog
from hashwatch.matching.matcher import MatchResult, Signal
from hashwatch.signals.hasher import FileSignals, hash_stream
from hashwatch.store.webhooks import WebhookStore
from hashwatch.web.metrics import Metrics

__all__ = ["MatchService", "RWLock"]


class RWLock:
    """Many readers (queries) or one writer (an index update) at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class MatchService:
    def __init__(self, hw: Hashwatch, metrics: Metrics, audit: AuditLog) -> None:
        self.hw = hw
        self.metrics = metrics
        self.audit = audit
        self.webhooks = WebhookStore(hw.db)
        self.lock = RWLock()
        self._refresh_lock = threading.Lock()
        self.matcher = hw.matcher()
        self.dihedral_matcher = hw.matcher(dihedral=True)
        self.applied_seq = hw.pdq_index.watermark
        self._observe()

    def _observe(self) -> None:
        self.metrics.index_size.set(len(self.hw.pdq_index))
        self.metrics.change_seq.set(self.applied_seq)

    # -- freshness -----------------------------------------------------------------------

    def refresh_if_changed(self) -> bool:
        """Catch up with the database if its change sequence moved; True if it did."""
        with self._refresh_lock:
            seq = self.hw.db.change_seq()
            if seq == self.applied_seq:
                return False
            with self.lock.write():
                self.matcher.refresh()  # index catch-up by change sequence, then list facts
                self.dihedral_matcher.reload_lists()
            self.applied_seq = seq
            self._observe()
            return True

    # -- hashing and matching ------------------------------------------------------------

    def hash_bytes(self, data: bytes, name: str, *, dihedral: bool = False) -> FileSignals:
        """Signals of an upload, computed from memory; ``name`` is only echoed back."""
        options = self.hw.hash_options(dihedral=dihedral)
        return hash_stream(io.BytesIO(data), name, len(data), options)

    def match_file(
        self, data: bytes, name: str, key_name: str, *, dihedral: bool = False
    ) -> tuple[FileSignals, MatchResult]:
        fs = self.hash_bytes(data, name, dihedral=dihedral)
        matcher = self.dihedral_matcher if dihedral else self.matcher
        with self.lock.read():
            # A video (with frames) is matched by vPDQ's rules, anything else by its signals.
            result = matcher.match_fields([fs.as_dict()])[0]
        frames = len(fs.video.frames) if fs.video is not None else 0
        self.metrics.lookups.inc(len(signals_of(fs)) + frames)
        self._record([result], key_name)
        return fs, result

    def match_items(
        self, items: Sequence[Sequence[Signal]], key_name: str, *, dihedral: bool = False
    ) -> list[MatchResult]:
        matcher = self.dihedral_matcher if dihedral else self.matcher
        with self.lock.read():
            results = matcher.match_many(items)
        self.metrics.lookups.inc(sum(len(i) for i in items))
        self._record(results, key_name)
        return results

    def _record(self, results: list[MatchResult], key_name: str) -> None:
        records: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        now = datetime.now(UTC).isoformat()
        for result in results:
            # A partial video match is shown to whoever asked, but it alerts nobody.
            for m in (m for m in result.matches if not m.partial):
                records.append(
                    {
                        "key_name": key_name,
                        "list_name": m.list,
                        "entry_id": m.entry_id,
                        "hash_type": m.hash_type,
                        "distance": m.distance,
                    }
                )
                events.append(
                    {
                        "id": str(uuid.uuid4()),
                        "type": "match",
                        "time": now,
                        "key": key_name,
                        "list": m.list,
                        "kind": m.kind,
                        "entry_id": m.entry_id,
                        "hash_type": m.hash_type,
                        "distance": m.distance,
                        "category": m.category,
                        "scheme": m.scheme,
                        "series": m.series,
                        "entry_status": m.entry_status,
                        **({"video": m.video} if m.video is not None else {}),
                    }
                )
        if not records:
            return
        self.webhooks.record_matches(records, events)
        for r in records:
            self.metrics.matches.labels(r["list_name"]).inc()
            self.audit.append(
                "match",
                key=key_name,
                list=r["list_name"],
                entry_id=r["entry_id"],
                hash_type=r["hash_type"],
                distance=r["distance"],
            )
