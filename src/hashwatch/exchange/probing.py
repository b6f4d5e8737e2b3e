"""Enumeration defence for query-only peers: noticing a peer that probes a list's hash space.

A peer with a query grant never receives a list's hashes, but every answer tells it whether a
hash it chose is near one of them. Two ways to turn that into knowledge of a list leave a
recognisable trace in a peer's recent PDQ queries:

* **scanning** (``scan``): many hashes that match nothing, lie far from each other and are not
  the hash of any picture — the PDQ of a picture sets exactly half its bits (each bit says
  whether a DCT coefficient lies above their median, so 128 of 256 are set; every picture
  hashed by hashwatch has this weight, and so do the other PDQ implementations), while a
  random 256-bit string has 128 ± 8 bits set. A platform scanning distinct pictures sends
  far-apart, unmatched hashes too, but each of weight 128, so it is not counted.
* **sweeping** (``sweep``): a walk around a query that matched — one query after another
  within a small radius of the hit, each a bit or two from the one before, each closer to the
  hit than the last (or each farther): the walk that steps toward a listed hash, or away from
  it to find a distance band's edge. Repeated queries of one file are identical and do not
  count; re-encoded copies of one picture lie within a few bits of it, but in no order — one
  copy is not a step from the copy before it toward the hit.

:class:`ProbeWatch` keeps, per peer, a bounded window of its recent PDQ queries (at most
``max_queries``, none older than ``window_s``) and a few of its recent hits (``max_anchors``),
and reports a :class:`Probe` the first time one of the two signatures crosses its threshold.
Pure logic: what happens then (the flag, its audit record, the throttle) is the caller's.
:class:`PeerFlags` is the store part: flags held in the database, so every server process and
``hashwatch keys list`` see them, until an admin clears them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import insert, select, update

from hashwatch.errors import KeyNotFoundError
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.models import utcnow
from hashwatch.store.query_models import KEY_FLAGS
from hashwatch.store.service import KEYS

__all__ = ["PeerFlag", "PeerFlags", "Probe", "ProbeSettings", "ProbeWatch", "pdq_weight"]

PDQ_BITS = 256


def pdq_weight(value: str) -> int:
    """Bits set in a PDQ hash (128 for the hash of any picture)."""
    return int(value, 16).bit_count()


@dataclass(frozen=True)
class ProbeSettings:
    """What flags a peer (``ServeSettings``: ``peer_probe_*``; docs/exchange.md)."""

    window_s: float = 3600.0  # queries older than this are forgotten
    max_queries: int = 2048  # PDQ queries kept per peer (the oldest go first)
    max_anchors: int = 32  # recent hits kept per peer
    max_peers: int = 10_000  # peers watched per process (the longest idle go first)
    scan_queries: int = 64  # scan-like queries in the window that flag a peer
    scan_far: int = 64  # ... each more than this many bits from the peer's other queries
    weight_slack: int = 2  # ... and with a weight outside 128 ± this
    sweep_queries: int = 12  # a walk of this many queries around one hit flags a peer
    sweep_radius: int = 32  # ... each within this many bits of the hit
    sweep_step: int = 2  # ... and of the query before it, coming closer (or going farther)


@dataclass(frozen=True)
class Probe:
    """A peer's queries look like probing: which signature, and the counts behind it (never
    a hash)."""

    reason: str  # "scan" or "sweep"
    queries: int  # queries of that signature in the window
    window: int  # PDQ queries held in the window

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "queries": self.queries, "window": self.window}


def _words(values: Sequence[str]) -> np.ndarray:
    raw = bytes.fromhex("".join(values))
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 4).astype(np.uint64)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between every row of ``a`` and every row of ``b``."""
    out = np.zeros((len(a), len(b)), dtype=np.int32)
    for word in range(4):
        out += np.bitwise_count(a[:, word, None] ^ b[None, :, word])
    return out


_EMPTY = np.empty((0, 4), dtype=np.uint64)


@dataclass
class _Window:
    """One peer's recent PDQ queries (distinct hashes) and hits."""

    times: np.ndarray = field(default_factory=lambda: np.empty(0))
    hashes: np.ndarray = field(default_factory=lambda: _EMPTY)
    matched: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    scan: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))  # scan-like
    last: float = 0.0
    flagged: bool = False

    def keep(self, mask: np.ndarray | slice) -> None:
        self.times, self.hashes = self.times[mask], self.hashes[mask]
        self.matched, self.scan = self.matched[mask], self.scan[mask]


class ProbeWatch:
    """Per peer, a sliding window over its PDQ queries; :meth:`observe` returns a
    :class:`Probe` the first time the peer's window shows scanning or sweeping, then None
    until :meth:`reset` (an admin cleared the flag). State is bounded: ``max_queries``
    hashes and ``max_anchors`` hits per peer, ``max_peers`` peers."""

    def __init__(
        self, settings: ProbeSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or ProbeSettings()
        self.clock = clock
        self._peers: dict[int, _Window] = {}
        self._lock = threading.Lock()

    def observe(self, key_id: int, queries: Sequence[tuple[str, bool]]) -> Probe | None:
        """Add a peer's PDQ queries (hex value, whether it matched) and look at its window."""
        if not queries:
            return None
        now = self.clock()
        with self._lock:
            win = self._peers.pop(key_id, None) or _Window()
            self._peers[key_id] = win  # most recently used last
            win.last = now
            self._expire(win, now)
            new = self._add(win, now, queries)
            self._bound()
            if win.flagged:
                return None
            probe = self._scan(win) or self._sweep(win, new)
            win.flagged = probe is not None
            return probe

    def reset(self, key_id: int) -> None:
        """Forget a peer's window (its flag was cleared: it starts afresh)."""
        with self._lock:
            self._peers.pop(key_id, None)

    def held(self, key_id: int) -> int:
        """PDQ queries held for a peer (for tests and the bound)."""
        with self._lock:
            win = self._peers.get(key_id)
            return 0 if win is None else len(win.hashes)

    def _expire(self, win: _Window, now: float) -> None:
        if len(win.times) and now - win.times[0] > self.settings.window_s:
            win.keep(now - win.times <= self.settings.window_s)

    def _bound(self) -> None:
        while len(self._peers) > self.settings.max_peers:
            self._peers.pop(next(iter(self._peers)))

    def _add(self, win: _Window, now: float, queries: Sequence[tuple[str, bool]]) -> np.ndarray:
        """Add the distinct new hashes; returns them. A hash asked again is not a new query
        (it may have matched this time)."""
        s = self.settings
        seen: dict[str, bool] = {}
        for value, matched in queries:
            key = value.lower()
            seen[key] = seen.get(key, False) or matched
        values = list(seen)
        new = _words(values)
        hit = np.array([seen[v] for v in values], dtype=bool)
        off_weight = np.array([abs(pdq_weight(v) - PDQ_BITS // 2) > s.weight_slack for v in values])
        nearest = np.full(len(new), PDQ_BITS + 1, dtype=np.int32)
        if len(win.hashes):
            to_old = _distances(new, win.hashes)
            same = to_old == 0
            win.matched |= (same & hit[:, None]).any(axis=0)
            fresh = ~same.any(axis=1)
            new, hit, off_weight, to_old = new[fresh], hit[fresh], off_weight[fresh], to_old[fresh]
            nearest = to_old.min(axis=1, initial=PDQ_BITS + 1)
        if len(new) > 1:
            among = _distances(new, new)
            np.fill_diagonal(among, PDQ_BITS + 1)
            nearest = np.minimum(nearest, among.min(axis=1))
        scan = ~hit & off_weight & (nearest > s.scan_far)
        win.times = np.concatenate([win.times, np.full(len(new), now)])
        win.hashes = np.concatenate([win.hashes, new])
        win.matched = np.concatenate([win.matched, hit])
        win.scan = np.concatenate([win.scan, scan])
        if len(win.hashes) > s.max_queries:
            win.keep(slice(len(win.hashes) - s.max_queries, None))
        return new

    def _scan(self, win: _Window) -> Probe | None:
        count = int(win.scan.sum())
        if count >= self.settings.scan_queries:
            return Probe("scan", count, len(win.hashes))
        return None

    def _sweep(self, win: _Window, new: np.ndarray) -> Probe | None:
        """The longest walk around a recent hit: time-ordered queries within ``sweep_radius``
        of the hit, each ``1..sweep_step`` bits from the one before, their distance to the hit
        moving one way (closer each step, or farther). Only hits near a new query are looked
        at: a walk that grew must have grown by one."""
        s = self.settings
        anchors = win.hashes[win.matched][-s.max_anchors :]
        if not len(anchors) or not len(new):
            return None
        anchors = anchors[(_distances(anchors, new) <= s.sweep_radius).any(axis=1)]
        best = 0
        for to_hit in _distances(anchors, win.hashes):
            members = np.flatnonzero(to_hit <= s.sweep_radius)
            if len(members) < s.sweep_queries:
                continue
            h = win.hashes[members]
            step = np.bitwise_count(h[1:] ^ h[:-1]).sum(axis=1)
            way = np.sign(np.diff(to_hit[members]))
            key = np.where((step >= 1) & (step <= s.sweep_step), way, 0)
            best = max(best, _longest_run(key) + 1)
        if best >= s.sweep_queries:
            return Probe("sweep", best, len(win.hashes))
        return None


def _longest_run(key: np.ndarray) -> int:
    """Length of the longest run of one non-zero value in ``key``."""
    if not len(key):
        return 0
    edges = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], edges])
    lengths = np.diff(np.concatenate([starts, [len(key)]]))
    live = key[starts] != 0
    return int(lengths[live].max()) if live.any() else 0


# -- the store part: flags held in the database ----------------------------------------------


@dataclass(frozen=True)
class PeerFlag:
    """A peer key flagged for probing, until an admin clears it."""

    id: int
    key: str
    reason: str
    details: dict[str, Any]
    flagged_at: datetime
    cleared_at: datetime | None = None
    cleared_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "reason": self.reason,
            "details": dict(self.details),
            "flagged_at": self.flagged_at.isoformat(),
            "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None,
            "cleared_by": self.cleared_by,
        }


F = KEY_FLAGS
K = KEYS


def _flag(row: Any) -> PeerFlag:
    return PeerFlag(
        int(row.id),
        row.name,
        row.reason,
        dict(row.details or {}),
        row.flagged_at,
        row.cleared_at,
        row.cleared_by,
    )


class PeerFlags:
    """Probing flags of one database: raised by a server, cleared by an admin; each change
    audited in its own transaction (counts only, never a hash)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _query(self) -> Any:
        return select(F, K.c.name).join(K, K.c.id == F.c.key_id).order_by(F.c.id)

    def raise_flag(self, key_id: int, probe: Probe, *, actor: str | None) -> PeerFlag:
        """Flag the key (a second flag while one is open is recorded in the audit trail
        only)."""
        with self.db.begin() as conn:
            name = conn.execute(select(K.c.name).where(K.c.id == key_id)).scalar_one()
            open_ = conn.execute(
                self._query().where(F.c.key_id == key_id, F.c.cleared_at.is_(None))
            ).first()
            if open_ is None:
                conn.execute(
                    insert(F).values(
                        key_id=key_id,
                        reason=probe.reason,
                        details=probe.as_dict(),
                        flagged_at=utcnow(),
                    )
                )
            record_audit(
                conn,
                actor=actor,
                action="peer.probe_flagged",
                target=f"key:{name}",
                details=probe.as_dict(),
            )
            row = conn.execute(
                self._query().where(F.c.key_id == key_id, F.c.cleared_at.is_(None))
            ).one()
            return _flag(row)

    def open(self) -> list[PeerFlag]:
        """Flags not yet cleared."""
        with self.db.read() as conn:
            return [_flag(r) for r in conn.execute(self._query().where(F.c.cleared_at.is_(None)))]

    def all(self, limit: int = 1000) -> list[PeerFlag]:
        """Every flag, cleared ones included, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(self._query().order_by(None).order_by(F.c.id.desc()).limit(limit))
            return [_flag(r) for r in rows]

    def flagged_ids(self) -> set[int]:
        with self.db.read() as conn:
            rows = conn.execute(select(F.c.key_id).where(F.c.cleared_at.is_(None)))
            return {int(r.key_id) for r in rows}

    def clear(self, name: str, *, actor: str | None = None) -> list[PeerFlag]:
        """Clear the key's open flags (its rate is restored); returns what was cleared."""
        with self.db.begin() as conn:
            key_id = conn.execute(select(K.c.id).where(K.c.name == name)).scalar_one_or_none()
            if key_id is None:
                raise KeyNotFoundError(f"no API key named {name!r}")
            rows = conn.execute(
                self._query().where(F.c.key_id == key_id, F.c.cleared_at.is_(None))
            ).all()
            if rows:
                conn.execute(
                    update(F)
                    .where(F.c.key_id == key_id, F.c.cleared_at.is_(None))
                    .values(cleared_at=utcnow(), cleared_by=actor)
                )
                record_audit(
                    conn,
                    actor=actor,
                    action="peer.unflagged",
                    target=f"key:{name}",
                    details={"flags": len(rows), "reasons": sorted({r.reason for r in rows})},
                )
            return [_flag(r) for r in rows]
