"""What a match reveals to the key that asked, how much a key may ask, and probing noticed.

A list's PDQ hashes are sensitive, and an exact distance gives one away: query a near copy and
its 256 one-bit variants in one request, and each distance going up or down by one tells one
bit of the list's hash. Three defences, per key (docs/serve.md, "What a match reveals"):

* :func:`disclose` shapes each match by the key's :class:`Disclosure`: ``exact`` (the distance),
  ``banded`` (``distance_band``: 0-8, 9-16, 17-24 or 25 up to the list's threshold) or
  ``hidden`` (no distance: the match, the list's and the entry's facts);
* :class:`SignalBudget` caps the signals a key may match per window (429 + Retry-After);
* :class:`ProbeDetector` notices many near-identical PDQ queries from one key — distinct
  hashes within a few bits of each other, as bit-flipping produces and re-encoded copies of a
  picture rarely do — and flags the key once per window (audit record, metric), optionally
  refusing it for the rest of the window.

A peer key (another organisation, query grant) sees less still: :func:`within_lists` keeps
only the matches of its granted lists, as if no other list existed, and :func:`peer_view`
keeps only what a peer is told of a match — the list, the hash type, the category, the
distance as its disclosure allows, whether it is a rotated or mirrored copy, and for a video
its facts; never an entry id or a list's version (docs/exchange.md, "Query-only sharing").

Budgets and probe windows are kept per process; with ``--workers N`` each process holds
``1/N`` of a key's budget, as with the rate limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashwatch.lists.model import ListKind
from hashwatch.matching.matcher import MatchResult
from hashwatch.store.service import Disclosure

__all__ = [
    "PEER_FIELDS",
    "Bands",
    "ProbeDetector",
    "ProbeReport",
    "SignalBudget",
    "disclose",
    "peer_view",
    "within_lists",
]


@dataclass(frozen=True)
class Bands:
    """Upper edges of the distance bands; the list's threshold closes the last band."""

    edges: tuple[int, ...] = (8, 16, 24)

    @classmethod
    def parse(cls, text: str) -> Bands:
        edges = sorted({int(t) for t in text.replace(" ", "").split(",") if t})
        if any(e < 0 for e in edges):
            raise ValueError("distance band edges are non-negative integers")
        return cls(tuple(edges))

    def band(self, distance: int, threshold: int) -> str:
        low = 0
        for edge in self.edges:
            if edge >= threshold:
                break
            if distance <= edge:
                return f"{low}-{edge}"
            low = edge + 1
        return f"{low}-{max(threshold, low)}"


def disclose(
    match: dict[str, Any],
    mode: Disclosure,
    bands: Bands,
    threshold_of: Callable[[str], int],
) -> dict[str, Any]:
    """``match`` (a :class:`~hashwatch.matching.matcher.Match` as a dict) as ``mode`` shows it.
    Exact-hash matches (MD5, SHA-…) have distance 0 by definition and are shown as they are
    in ``exact`` and ``banded``."""
    if mode == Disclosure.EXACT:
        return match
    out = dict(match)
    distance = out.pop("distance", None)
    if mode == Disclosure.BANDED and distance is not None:
        if out.get("hash_type") == "pdq":
            out["distance_band"] = bands.band(int(distance), threshold_of(str(out["list"])))
        else:
            out["distance"] = distance
    return out


def within_lists(result: MatchResult, lists: Collection[str]) -> MatchResult:
    """``result`` as if only ``lists`` existed: matches of other lists dropped, and a
    negative list's match suppresses the others only when that negative list is among
    ``lists`` (a list outside them is neither searched nor named, not even by its effect)."""
    found = [m for m in (*result.matches, *result.suppressed) if m.list in lists]
    found.sort(key=lambda m: (m.distance, m.list, m.entry_id))
    negatives = [m for m in found if m.kind == ListKind.NEGATIVE]
    if negatives:
        kept = [m for m in found if m.kind != ListKind.NEGATIVE]
        return MatchResult(negatives, kept, list(result.notes))
    return MatchResult(found, [], list(result.notes))


# What a peer is told of a match (after :func:`disclose`); everything else stays home.
PEER_FIELDS = frozenset(
    {
        "list",
        "kind",
        "hash_type",
        "distance",
        "distance_band",
        "category",
        "category_label",
        "scheme",
        "entry_status",
        "variant",
        "partial",
        "video",
    }
)


def peer_view(match: dict[str, Any]) -> dict[str, Any]:
    """A disclosed match as a peer sees it: :data:`PEER_FIELDS` only."""
    return {k: v for k, v in match.items() if k in PEER_FIELDS}


class SignalBudget:
    """Signals per key per fixed window: ``take`` answers 0 (allowed) or seconds to wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._windows: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int, signals: int, cap: float, window_s: float) -> float:
        if cap <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            start, used = self._windows.get(key_id, (now, 0.0))
            if now - start >= window_s:
                start, used = now, 0.0
            if used + signals > cap:
                self._windows[key_id] = (start, used)
                return max(start + window_s - now, 0.001)
            self._windows[key_id] = (start, used + signals)
            return 0.0

    def block(self, key_id: int, cap: float, window_s: float) -> None:
        """Use up the key's window (a throttled prober waits for the next one)."""
        now = self.clock()
        with self._lock:
            start, _used = self._windows.get(key_id, (now, 0.0))
            if now - start >= window_s:
                start = now
            self._windows[key_id] = (start, math.inf)


def _words(pdq_hexes: Sequence[str]) -> np.ndarray:
    """PDQ hashes as rows of four 64-bit words."""
    raw = bytes.fromhex("".join(pdq_hexes))
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 4).astype(np.uint64)


def _distances(a: np.ndarray, b: np.ndarray, rows: int = 256) -> np.ndarray:
    """Hamming distances between every row of ``a`` and every row of ``b``."""
    out = np.zeros((len(a), len(b)), dtype=np.uint16)
    for start in range(0, len(a), rows):
        part = out[start : start + rows]
        for word in range(4):
            x = a[start : start + rows, word, None] ^ b[None, :, word]
            part += np.bitwise_count(x)
    return out


class _KeyWindow:
    """A key's recent PDQ hashes in a ring buffer, oldest at ``start``: each slot's hash (four
    words), query time and whether it has a neighbour; ``dead`` marks the unused slots (1), so
    that the distance check runs over the whole buffer without copying the live part out.
    The buffer doubles up to :attr:`ProbeDetector.MAX_KEPT` slots, then the oldest go first."""

    __slots__ = ("dead", "flagged_at", "hashes", "near", "size", "start", "times")

    def __init__(self, capacity: int) -> None:
        self._allocate(capacity)
        self.start = 0
        self.size = 0
        self.flagged_at: float | None = None

    def _allocate(self, capacity: int) -> None:
        """Empty slots: every one dead."""
        self.hashes = np.zeros((capacity, 4), dtype=np.uint64)
        self.times = np.zeros(capacity, dtype=np.float64)
        self.near = np.zeros(capacity, dtype=bool)
        self.dead = np.ones(capacity, dtype=np.uint8)

    @property
    def capacity(self) -> int:
        return len(self.times)

    def slots(self, first: int, count: int) -> slice | np.ndarray:
        """The slots of the ``count`` entries from the ``first`` oldest on: a slice unless
        they wrap around the buffer's end (a slice costs less to index with)."""
        cap = len(self.times)
        pos = self.start + first
        if pos >= cap:
            pos -= cap
        if pos + count <= cap:
            return slice(pos, pos + count)
        return (pos + np.arange(count)) % cap

    def drop_oldest(self, count: int) -> None:
        if count <= 0:
            return
        gone = self.slots(0, count)
        self.dead[gone] = 1
        self.near[gone] = False
        self.start = (self.start + count) % self.capacity
        self.size -= count

    def grow(self, capacity: int) -> None:
        """Move the live entries, oldest first, into a buffer of ``capacity`` slots."""
        order = self.slots(0, self.size)
        old = (self.hashes[order], self.times[order], self.near[order])
        self._allocate(capacity)
        self.hashes[: self.size], self.times[: self.size], self.near[: self.size] = old
        self.dead[: self.size] = 0
        self.start = 0

    def keep_only(self, keep: np.ndarray) -> None:
        """Keep the entries (oldest first) where ``keep`` is true, in their order."""
        order = self.slots(0, self.size)
        kept = (self.hashes[order][keep], self.times[order][keep], self.near[order][keep])
        self.near[:] = False
        self.dead[:] = 1
        self.size = len(kept[1])
        self.start = 0
        self.hashes[: self.size], self.times[: self.size], self.near[: self.size] = kept
        self.dead[: self.size] = 0


@dataclass(frozen=True)
class ProbeReport:
    """A key flagged as probing: how many of its recent queries were near-identical."""

    key_id: int
    neighbours: int
    queries: int
    window_s: float


class ProbeDetector:
    """Per key, the PDQ hashes it queried within ``window_s``; ``observe`` returns a report
    the first time (per window) at least ``neighbours`` distinct hashes each lie within
    ``distance`` bits of another (identical re-queries do not count)."""

    MAX_KEPT = 4096  # hashes kept per key (the oldest go first)
    FIRST_KEPT = 64  # a key's first buffer; it doubles up to MAX_KEPT

    def __init__(
        self,
        *,
        window_s: float,
        distance: int,
        neighbours: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.distance = distance
        self.neighbours = neighbours
        self.clock = clock
        self._keys: dict[int, _KeyWindow] = {}
        self._lock = threading.Lock()

    def observe(self, key_id: int, pdq_hashes: Sequence[str]) -> ProbeReport | None:
        if not pdq_hashes or self.neighbours <= 0:
            return None
        now = self.clock()
        new = _words(list(dict.fromkeys(h.lower() for h in pdq_hashes)))
        with self._lock:
            win = self._keys.get(key_id)
            if win is None:
                win = self._keys[key_id] = _KeyWindow(min(self.FIRST_KEPT, self.MAX_KEPT))
            self._expire(win, now)
            self._add(win, now, new)
            count = int(np.count_nonzero(win.near))
            if count < self.neighbours or win.flagged_at is not None:
                return None
            win.flagged_at = now
            return ProbeReport(key_id, count, win.size, self.window_s)

    def warm_up(self) -> None:
        """Load the distance check's machine code (numba's cache) now rather than at a key's
        second query (the server calls this in the background once it is up)."""
        from hashwatch.index import _kernels as k

        win = _KeyWindow(1)
        k.scan(np.zeros((1, 4), dtype=np.uint64), win.hashes, win.dead, self.distance)

    def is_flagged(self, key_id: int) -> bool:
        with self._lock:
            win = self._keys.get(key_id)
            if win is None:
                return False
            self._expire(win, self.clock())
            return win.flagged_at is not None

    def _expire(self, win: _KeyWindow, now: float) -> None:
        if win.size and now - win.times[win.start] > self.window_s:
            keep = now - win.times[win.slots(0, win.size)] <= self.window_s
            first = int(np.argmax(keep)) if keep.any() else win.size
            if keep[first:].all():  # as the clock goes forward: the oldest few expire
                win.drop_oldest(first)
            else:
                win.keep_only(keep)
        if win.flagged_at is not None and now - win.flagged_at > self.window_s:
            win.flagged_at = None

    def _add(self, win: _KeyWindow, now: float, new: np.ndarray) -> None:
        """Add distinct new hashes; mark every hash with a neighbour 1..distance bits away."""
        near_new = np.zeros(len(new), dtype=bool)
        if win.size:
            from hashwatch.index import _kernels as k  # numba on first use, not at load

            # Every (new, kept) pair within ``distance``: a compiled scan of the whole ring
            # (a few µs for 4,096 slots), unused slots skipped by ``dead``.
            qi, slot, dist = k.scan(new, win.hashes, win.dead, self.distance)
            if len(qi):
                again = np.zeros(len(new), dtype=bool)
                again[qi[dist == 0]] = True  # a hash queried again is not a probe
                fresh_hit = ~again[qi]
                near_new[qi[fresh_hit]] = True
                win.near[slot[fresh_hit]] = True
                if again.any():
                    new, near_new = new[~again], near_new[~again]
        if len(new) > 1:
            among = _distances(new, new)
            near_new |= ((among <= self.distance) & (among > 0)).any(axis=1)
        if len(new) > self.MAX_KEPT:  # only the newest fit
            new, near_new = new[-self.MAX_KEPT :], near_new[-self.MAX_KEPT :]
        if win.size + len(new) > win.capacity and win.capacity < self.MAX_KEPT:
            need = win.size + len(new)
            win.grow(min(self.MAX_KEPT, max(2 * win.capacity, 1 << (need - 1).bit_length())))
        win.drop_oldest(win.size + len(new) - len(win.times))
        slots = win.slots(win.size, len(new))
        win.hashes[slots] = new
        win.times[slots] = now
        win.near[slots] = near_new
        win.dead[slots] = 0
        win.size += len(new)
