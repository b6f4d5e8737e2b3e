"""Probe detection keeps a key's window in a ring buffer and checks distances with a compiled
scan: a story of keys querying near copies, re-queries, bit-flip probes, expiring windows and a
full buffer, answered exactly as the straightforward version (kept here as the reference:
whole arrays concatenated and compared every request) answers it."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hashwatch.web.disclosure import ProbeDetector, ProbeReport


def _words(pdq_hexes: Sequence[str]) -> np.ndarray:
    raw = bytes.fromhex("".join(pdq_hexes))
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 4).astype(np.uint64)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((len(a), len(b)), dtype=np.uint16)
    for word in range(4):
        out += np.bitwise_count(a[:, word, None] ^ b[None, :, word])
    return out


@dataclass
class _Window:
    times: np.ndarray = field(default_factory=lambda: np.empty(0))
    hashes: np.ndarray = field(default_factory=lambda: np.empty((0, 4), dtype=np.uint64))
    near: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    flagged_at: float | None = None

    def keep(self, mask: np.ndarray | slice) -> None:
        self.times, self.hashes, self.near = self.times[mask], self.hashes[mask], self.near[mask]


class ReferenceDetector:
    """The detector before the ring buffer (brief 18C), reduced to its behaviour."""

    def __init__(
        self, *, window_s: float, distance: int, neighbours: int, clock: Callable[[], float]
    ) -> None:
        self.window_s, self.distance, self.neighbours, self.clock = (
            window_s,
            distance,
            neighbours,
            clock,
        )
        self.max_kept = ProbeDetector.MAX_KEPT
        self._keys: dict[int, _Window] = {}

    def observe(self, key_id: int, pdq_hashes: Sequence[str]) -> ProbeReport | None:
        now = self.clock()
        win = self._keys.setdefault(key_id, _Window())
        self._expire(win, now)
        new = _words(list(dict.fromkeys(h.lower() for h in pdq_hashes)))
        near_new = np.zeros(len(new), dtype=bool)
        if len(win.hashes):
            to_old = _distances(new, win.hashes)
            fresh = ~(to_old == 0).any(axis=1)
            new, to_old, near_new = new[fresh], to_old[fresh], near_new[fresh]
            close = to_old <= self.distance
            near_new |= close.any(axis=1)
            win.near = win.near | close.any(axis=0)
        if len(new) > 1:
            among = _distances(new, new)
            near_new |= ((among <= self.distance) & (among > 0)).any(axis=1)
        win.times = np.concatenate([win.times, np.full(len(new), now)])
        win.hashes = np.concatenate([win.hashes, new])
        win.near = np.concatenate([win.near, near_new])
        if len(win.hashes) > self.max_kept:
            win.keep(slice(len(win.hashes) - self.max_kept, None))
        count = int(win.near.sum())
        if count < self.neighbours or win.flagged_at is not None:
            return None
        win.flagged_at = now
        return ProbeReport(key_id, count, len(win.hashes), self.window_s)

    def is_flagged(self, key_id: int) -> bool:
        win = self._keys.get(key_id)
        if win is None:
            return False
        self._expire(win, self.clock())
        return win.flagged_at is not None

    def _expire(self, win: _Window, now: float) -> None:
        if len(win.times) and now - win.times[0] > self.window_s:
            win.keep(now - win.times <= self.window_s)
        if win.flagged_at is not None and now - win.flagged_at > self.window_s:
            win.flagged_at = None


Answer = tuple[ProbeReport | None, bool]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _hex(words: Sequence[int]) -> str:
    return "".join(f"{w:016x}" for w in words)


def _flip(words: list[int], bit: int) -> list[int]:
    out = list(words)
    out[bit // 64] ^= 1 << (bit % 64)
    return out


def _story(rng: random.Random, steps: int, pictures: int) -> list[tuple[float, int, list[str]]]:
    """(seconds later, key, hashes) requests: near copies of a few pictures (a few bits
    changed), bit-flip probes (one bit each, many in one request), re-queries of old hashes,
    unrelated hashes, upper-case hex."""
    base = [[rng.getrandbits(64) for _ in range(4)] for _ in range(pictures)]
    asked: list[str] = []
    out = []
    for _ in range(steps):
        kind = rng.random()
        pic = rng.choice(base)
        if kind < 0.3:  # a near copy: a handful of bits away
            words = pic
            for _ in range(rng.randrange(1, 40)):
                words = _flip(words, rng.randrange(256))
            hashes = [_hex(words)]
        elif kind < 0.45:  # a bit-flip probe
            hashes = [_hex(_flip(pic, rng.randrange(256))) for _ in range(rng.randrange(1, 30))]
        elif kind < 0.6 and asked:  # asked again, perhaps with new ones, perhaps upper case
            hashes = [rng.choice(asked) for _ in range(rng.randrange(1, 4))]
            hashes += [_hex([rng.getrandbits(64) for _ in range(4)])]
            hashes = [h.upper() if rng.random() < 0.3 else h for h in hashes]
        else:  # unrelated pictures
            n = rng.randrange(1, 6)
            hashes = [_hex([rng.getrandbits(64) for _ in range(4)]) for _ in range(n)]
        asked += [h.lower() for h in hashes]
        later = rng.choice([0.0, 0.0, 0.5, 3.0, 20.0, 61.0])
        out.append((later, rng.randrange(3), hashes))
    return out


def _run_both(
    steps: list[tuple[float, int, list[str]]], *, max_kept: int | None = None
) -> tuple[list[Answer], list[Answer]]:
    clock = Clock()
    fast = ProbeDetector(window_s=60.0, distance=12, neighbours=25, clock=clock)
    ref = ReferenceDetector(window_s=60.0, distance=12, neighbours=25, clock=clock)
    if max_kept is not None:
        fast.MAX_KEPT = ref.max_kept = max_kept
    got: list[Answer] = []
    want: list[Answer] = []
    for later, key, hashes in steps:
        clock.now += later
        got.append((fast.observe(key, hashes), fast.is_flagged(key)))
        want.append((ref.observe(key, hashes), ref.is_flagged(key)))
    return got, want


def test_a_day_of_mixed_queries_is_flagged_exactly_as_before() -> None:
    got, want = _run_both(_story(random.Random(18), 1500, pictures=6))
    assert got == want
    assert any(r is not None for r, _ in want)  # the story does flag probers
    assert any(r is None for r, _ in want)


def test_a_full_buffer_forgets_the_oldest_as_before() -> None:
    # A small buffer wraps many times: eviction, growth and the ring's order all matter.
    got, want = _run_both(_story(random.Random(7), 1200, pictures=3), max_kept=100)
    assert got == want
    assert sum(r is not None for r, _ in want) >= 2


def test_one_request_larger_than_the_buffer_keeps_its_newest() -> None:
    rng = random.Random(3)
    pic = [rng.getrandbits(64) for _ in range(4)]
    flips = [_hex(_flip(pic, b)) for b in range(256)]
    steps = [(0.0, 1, flips[:10]), (1.0, 1, flips), (1.0, 1, flips[100:140]), (1.0, 1, [_hex(pic)])]
    got, want = _run_both(steps, max_kept=64)
    assert got == want


def test_an_expired_window_clears_its_flag_and_hashes() -> None:
    rng = random.Random(5)
    pic = [rng.getrandbits(64) for _ in range(4)]
    probe = [_hex(_flip(pic, b)) for b in range(40)]
    steps = [(0.0, 0, probe), (30.0, 0, probe[:5]), (61.0, 0, probe[5:10]), (0.0, 0, probe)]
    got, want = _run_both(steps)
    assert got == want
    first = want[0][0]
    assert first is not None and first.neighbours == 40 and not math.isnan(first.window_s)
