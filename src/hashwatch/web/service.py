"""The matching service behind the routes: hashing in memory, matching, recording, freshness.

One :class:`MatchService` per server process. It holds the process's matcher (dihedral
matching on: a rotated or mirrored copy is found; an upload hashed without the 8 variants is
matched as it is) and keeps it fresh: :meth:`refresh_if_changed` reads the
database's change sequence (one cheap ``SELECT``) and, when it moved, applies only the rows
changed since (``SyncedPdqIndex.refresh``) — no rebuild, and queries keep being answered
between the short exclusive sections in which the index is updated.

Uploaded bytes are hashed from memory and dropped; what is kept of a match is a match record
(time, key, list, entry, distance, the caller's ``content_id``), an audit event and, for
webhooks, one queued event per content listing its matches. What the caller is shown of a
match, how many signals a key may match and probing are handled by :mod:`.disclosure`.
"""

from __future__ import annotations

import io
import math
import threading
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from prometheus_client import Counter

from hashwatch.app import Hashwatch, signals_of
from hashwatch.audit import AuditLog
from hashwatch.config import DEFAULT_PDQ_THRESHOLD
from hashwatch.matching.matcher import Match, MatchResult, Signal
from hashwatch.signals.hasher import FileSignals, hash_stream
from hashwatch.signals.types import HashType
from hashwatch.store.audit import record_audit
from hashwatch.store.group_commit import GroupCommit
from hashwatch.store.service import Disclosure, KeyInfo, KeyStore
from hashwatch.store.webhook_http import TargetPolicy
from hashwatch.store.webhooks import WebhookStore
from hashwatch.web.auth import ApiError, Principal
from hashwatch.web.disclosure import (
    Bands,
    ProbeDetector,
    ProbeReport,
    SignalBudget,
    disclose,
    within_lists,
)
from hashwatch.web.metrics import Metrics
from hashwatch.web.peer_access import PeerAccess
from hashwatch.web.settings import ServeSettings

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
    def __init__(
        self,
        hw: Hashwatch,
        metrics: Metrics,
        audit: AuditLog,
        settings: ServeSettings | None = None,
    ) -> None:
        self.hw = hw
        self.metrics = metrics
        self.audit = audit
        self.settings = settings = settings or ServeSettings()
        self.webhooks = WebhookStore(hw.db, policy=TargetPolicy.parse(settings.webhook_allow_hosts))
        self.keys = KeyStore(hw.db)
        self.default_disclosure = Disclosure(settings.default_disclosure)
        self.bands = Bands.parse(settings.disclosure_bands)
        self.budget = SignalBudget()
        self.probes = ProbeDetector(
            window_s=settings.probe_window_s,
            distance=settings.probe_distance,
            neighbours=settings.probe_neighbours,
        )
        self.probe_flags = Counter(
            "hashwatch_probe_flags",
            "Keys flagged for probing (many near-identical PDQ queries), by key.",
            ["key"],
            registry=metrics.registry,
        )
        self._key_cache: dict[int, tuple[float, KeyInfo | None]] = {}
        self.peers = PeerAccess(hw.db, settings, audit, metrics, self.key_info)
        self.lock = RWLock()
        # One queued item is one request's recording (all its match records): the queue
        # holds at most 20,000 waiting requests, however many rows each records.
        # The recorder's flushes (one at a time) commit on a connection of their own,
        # closed with the recorder.
        self._records_writer = hw.db.durable_writer()
        self.recorder: GroupCommit[_Recording] = GroupCommit(
            self._flush_records,
            max_queue=20_000,
            name="hashwatch-match-records",
            retry_alone=_one_requests_fault,
            on_close=self._records_writer.close,
        )
        self._refresh_lock = threading.Lock()
        self.matcher = hw.matcher()
        self.applied_seq = hw.pdq_index.watermark
        self._observe()

    def warm_up(self) -> None:
        """One query of an all-zero hash at the PDQ distance, answered by nobody: it loads
        the matching kernels' machine code (numba's cache, ~0.7 s the first time in a
        process) in the background after the server is up, so neither ``/healthz`` nor
        the first request waits for it; probe detection's too. Nothing is recorded or
        audited."""
        with self.lock.read():
            self.hw.pdq_index.index.query(np.zeros((1, 32), np.uint8), DEFAULT_PDQ_THRESHOLD)
        self.probes.warm_up()  # and probe detection's distance check

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
            self.applied_seq = seq
            self._observe()
            return True

    # -- what a key may ask and see ------------------------------------------------------

    def key_info(self, key_id: int) -> KeyInfo | None:
        """The key's settings, cached for a second (a change reaches every process soon)."""
        now = time.monotonic()
        hit = self._key_cache.get(key_id)
        if hit is not None and now - hit[0] < 1.0:
            return hit[1]
        info = self.keys.get(key_id)
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[key_id] = (now, info)
        return info

    def disclosure_of(self, key_id: int) -> Disclosure:
        info = self.key_info(key_id)
        return (info.disclosure if info else None) or self.default_disclosure

    def _share(self) -> float:
        return 1 / max(1, self.settings.workers)

    def _cap(self, key_id: int) -> float:
        info = self.key_info(key_id)
        cap = info.signals_per_window if info and info.signals_per_window is not None else None
        cap = self.settings.signals_per_window if cap is None else cap
        return cap * self._share() if cap > 0 else 0

    def admit(self, caller: Principal, signals: int) -> None:
        """Take ``signals`` from the key's budget, or refuse with 429 and Retry-After."""
        window = self.settings.signal_window_s
        if self.settings.probe_throttle and self.probes.is_flagged(caller.key_id):
            self.budget.block(caller.key_id, self._cap(caller.key_id), window)
        wait = self.budget.take(caller.key_id, signals, self._cap(caller.key_id), window)
        if wait > 0:
            raise ApiError(
                429,
                f"key {caller.name!r} has used its budget of signals for this window",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def _watch_probing(self, caller: Principal, pdq_hashes: list[str]) -> None:
        report = self.probes.observe(caller.key_id, pdq_hashes)
        if report is not None:
            self._flag(caller, report)
        if self.settings.probe_throttle and self.probes.is_flagged(caller.key_id):
            self.budget.block(
                caller.key_id, self._cap(caller.key_id), self.settings.signal_window_s
            )
            raise ApiError(
                429,
                f"key {caller.name!r} is held back: its queries look like probing",
                {"Retry-After": str(max(1, math.ceil(self.settings.signal_window_s)))},
            )

    def _flag(self, caller: Principal, report: ProbeReport) -> None:
        details = {
            "near_identical_queries": report.neighbours,
            "queries_in_window": report.queries,
            "window_s": report.window_s,
            "throttled": self.settings.probe_throttle,
        }
        with self.hw.db.begin() as conn:
            record_audit(
                conn,
                actor=caller.name,
                action="key.probe_flagged",
                target=f"key:{caller.name}",
                details=details,
            )
        self.audit.append("probe.flagged", key=caller.name, **details)
        self.probe_flags.labels(caller.name).inc()

    def present(self, result: MatchResult, key_id: int) -> dict[str, Any]:
        """The result as the key may see it (its disclosure)."""
        mode = self.disclosure_of(key_id)
        out = result.as_dict()
        if mode == Disclosure.EXACT:
            return out

        def threshold_of(name: str) -> int:
            try:
                return int(self.matcher.list_facts(name).threshold)
            except Exception:
                return max(self.bands.edges, default=31)

        for field in ("matches", "suppressed"):
            if field in out:
                out[field] = [disclose(m, mode, self.bands, threshold_of) for m in out[field]]
        return out

    # -- hashing and matching ------------------------------------------------------------

    def hash_bytes(self, data: bytes, name: str, *, dihedral: bool = False) -> FileSignals:
        """Signals of an upload, computed from memory; ``name`` is only echoed back."""
        # Lists with local features on: a picture is described from the decode its hashes
        # come from (one decode, inside whatever bounds this call), as scan describes files.
        options = replace(
            self.hw.hash_options(dihedral=dihedral), local_features=self.matcher.wants_local
        )
        return hash_stream(io.BytesIO(data), name, len(data), options)

    def match_file(
        self,
        data: bytes,
        name: str,
        caller: Principal,
        *,
        dihedral: bool = True,
        content_id: str | None = None,
        within: Collection[str] | None = None,
    ) -> tuple[FileSignals, MatchResult]:
        """Hash and match an upload; ``within``: only these lists (a peer key's grants)."""
        self.admit(caller, 1)
        fs = self.hash_bytes(data, name, dihedral=dihedral)
        pdq = fs.as_dict().get("pdq")
        self._watch_probing(caller, [pdq] if isinstance(pdq, str) and pdq else [])
        with self.lock.read():
            # A video (with frames) is matched by vPDQ's rules, anything else by its signals.
            result = self.matcher.match_files([fs])[0]
            if fs.features is not None and fs.video is None:
                self.matcher.match_local(result, fs.features)
        if within is not None:
            result = within_lists(result, within)
        frames = len(fs.video.frames) if fs.video is not None else 0
        self.metrics.lookups.inc(len(signals_of(fs)) + frames)
        self._record([(content_id, result)], caller.name)
        return fs, result

    def match_items(
        self,
        items: Sequence[Sequence[Signal]],
        caller: Principal,
        *,
        dihedral: bool = False,
        content_ids: Sequence[str | None] | None = None,
        within: Collection[str] | None = None,
    ) -> list[MatchResult]:
        """Match items (each the signals of one content); ``content_ids[i]`` names item i's
        content, and items of one content id make one webhook event. ``within``: only these
        lists (a peer key's grants)."""
        self.admit(caller, sum(len(i) for i in items))
        self._watch_probing(
            caller, [s.value for i in items for s in i if s.hash_type == HashType.PDQ]
        )
        with self.lock.read():
            results = self.matcher.match_many(items)  # hashes given as text: matched as given
        if within is not None:
            results = [within_lists(r, within) for r in results]
        self.metrics.lookups.inc(sum(len(i) for i in items))
        ids = list(content_ids) if content_ids is not None else [None] * len(items)
        self._record(list(zip(ids, results, strict=True)), caller.name)
        return results

    def _record(self, results: list[tuple[str | None, MatchResult]], key_name: str) -> None:
        """Match records, and one webhook event per content: results of one ``content_id``
        together, each result without one on its own."""
        records: list[dict[str, Any]] = []
        groups: dict[object, tuple[str | None, list[Match]]] = {}
        for n, (content_id, result) in enumerate(results):
            # A partial video match is shown to whoever asked, but it alerts nobody.
            found = [m for m in result.matches if not m.partial]
            if not found:
                continue
            groups.setdefault(content_id if content_id else n, (content_id, []))[1].extend(found)
            records.extend(
                {
                    "key_name": key_name,
                    "list_name": m.list,
                    "entry_id": m.entry_id,
                    "hash_type": m.hash_type,
                    "distance": m.distance,
                    "content_id": content_id,
                }
                for m in found
            )
        if not records:
            return
        now = datetime.now(UTC).isoformat()
        events = [
            {
                "id": str(uuid.uuid4()),
                "type": "match",
                "time": now,
                "key": key_name,
                "content_id": content_id,
                "matches": [_event_match(m) for m in matches],
            }
            for content_id, matches in groups.values()
        ]
        # Returns once the records and their audit lines are durable, flushed together with
        # those of other requests (group commit); a database error is raised here.
        self.recorder.submit([_Recording(records, events)])

    def _flush_records(self, batch: list[_Recording]) -> None:
        """One group commit: every queued request's match records and webhook events in one
        transaction (one ``executemany``), their audit lines written and fsynced before it
        commits durably (SQLite syncs its log at this commit). The audit log is written
        ahead: a power cut at any point leaves no recorded match without its audit line
        (at worst audit lines of matches whose commit did not happen, as the line says
        what was attempted). A failure before the commit (the audit write or its fsync
        included) leaves no record or event to duplicate when the batch's requests are
        retried one by one."""
        records = [r for item in batch for r in item.records]
        events = [e for item in batch for e in item.events]
        lines = [("match", _audit_details(r)) for r in records]
        self.webhooks.record_matches(
            records,
            events,
            before_commit=lambda: self.audit.append_many(lines),  # one write and fsync
            writer=self._records_writer,
        )
        for r in records:
            self.metrics.matches.labels(r["list_name"]).inc()


def _one_requests_fault(exc: BaseException) -> bool:
    """Whether a failed flush may be one request's fault, so worth retrying per request: a
    database that does not answer would fail every retry, each after its own timeout."""
    from hashwatch.web.failures import database_failure, is_database_error

    return not (is_database_error(exc) and database_failure(exc).outage)


@dataclass(frozen=True)
class _Recording:
    """What one request's matches leave behind: match records and webhook events."""

    records: list[dict[str, Any]]
    events: list[dict[str, Any]]


def _audit_details(r: dict[str, Any]) -> dict[str, Any]:
    """A match record's audit line: key, list, entry, type, distance (never a hash)."""
    details = {
        "key": r["key_name"],
        "list": r["list_name"],
        "entry_id": r["entry_id"],
        "hash_type": r["hash_type"],
        "distance": r["distance"],
    }
    if r["content_id"]:
        details["content_id"] = r["content_id"]
    return details


def _event_match(m: Match) -> dict[str, Any]:
    """A match as a webhook event lists it (the admin's receiver: exact distance)."""
    return {
        "list": m.list,
        "kind": m.kind,
        "entry_id": m.entry_id,
        "hash_type": m.hash_type,
        "distance": m.distance,
        "category": m.category,
        "scheme": m.scheme,
        "series": m.series,
        "entry_status": m.entry_status,
        **({"video": m.video.as_dict()} if m.video is not None else {}),
    }
