"""Clustering new media at scale: N PDQ hashes with their 8 dihedral variants, exact.

    .venv/bin/python bench/bench_cluster.py [--n 1000000] [--sample 2000] [--baseline OLD_JOIN.py]

Generates N benign 256-bit hashes (random, as distinct pictures are) with planted families of
near-duplicates (2-20 members, 0-31 bits from their base; a tenth of the families also hold a
rotated copy, found only through one of its dihedral variants), so clusters exist. Then times
what the scan's clustering does with them: ``hashwatch.scan.cluster.dihedral_pairs`` (every
dihedral variant of every item against every item with the exact multi-index join) and
``components`` (the clusters), and prints wall and CPU time (all threads), pairs and clusters.

Exactness: for a random sample of items, brute force (the index's linear scan kernel: every
hash against each of the item's 8 variants) gives the items each must be paired with; the
benchmark fails if any pair is missing or invented. ``--baseline`` also runs an earlier
``hashwatch/index/join.py`` (``git show COMMIT:src/hashwatch/index/join.py > /tmp/old.py``)
the way the scan used it then (blocks of 2^20 variants), in the same run, and checks that both
give the same clusters.
Goal (issue 15): 1,000,000 hashes in under a minute.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable

import numpy as np

from hashwatch.index._kernels import scan
from hashwatch.index.base import rows_to_words
from hashwatch.scan.cluster import components, dihedral_pairs

THRESHOLD = 31


def _flip(rng: np.random.Generator, rows: np.ndarray, max_bits: int) -> np.ndarray:
    """Each row with 0..max_bits random bits flipped."""
    bits = np.unpackbits(rows, axis=1)
    for i in range(rows.shape[0]):
        k = int(rng.integers(0, max_bits + 1))
        if k:
            cols = rng.choice(256, size=k, replace=False)
            bits[i, cols] ^= 1
    return np.packbits(bits, axis=1)


def generate(n: int, seed: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """(hashes N x 32, variants 8N x 32: item i's variants at rows 8i..8i+7, 8i its own hash)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    variants = rng.integers(0, 256, (n, 8, 32), dtype=np.uint8)
    # Families: about a fifth of the items are members of one.
    members = rng.permutation(n)[: n // 5]
    at = 0
    families = 0
    while at < len(members) - 2:
        size = int(rng.integers(2, 21))
        group = members[at : at + size]
        at += size
        families += 1
        rows[group[1:]] = _flip(rng, np.repeat(rows[group[:1]], len(group) - 1, axis=0), 31)
        if families % 10 == 0:  # the last member is a rotated copy of the first
            rows[group[-1]] = rng.integers(0, 256, 32, dtype=np.uint8)
            variants[group[-1], 1] = _flip(rng, rows[group[:1]], 31)[0]
    variants[:, 0] = rows
    return rows, variants.reshape(n * 8, 32)


def _timed(label: str, fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    t, c = time.perf_counter(), time.process_time()
    labels = fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    digest = hashlib.sha256(labels.tobytes()).hexdigest()[:16]
    clusters = len(np.unique(labels))
    print(
        f"{label}: {wall:.1f} s wall, {cpu:.1f} s CPU, {clusters:,} clusters "
        f"({len(labels) - clusters:,} items joined another), labels {digest}",
        flush=True,
    )
    return labels, wall


def _baseline(path: str) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """An earlier join module's ``radius_join``, compiled."""
    spec = importlib.util.spec_from_file_location("baseline_join", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # numba's cache finds the module by name
    spec.loader.exec_module(module)
    join: Callable[..., tuple[np.ndarray, np.ndarray]] = module.radius_join
    rng = np.random.default_rng(0)
    join(
        rng.integers(0, 256, (100, 32), dtype=np.uint8), rng.integers(0, 256, (8, 32), np.uint8), 31
    )
    return join


def _baseline_labels(
    join: Callable[..., tuple[np.ndarray, np.ndarray]],
    rows: np.ndarray,
    queries: np.ndarray,
    owners: np.ndarray,
) -> np.ndarray:
    """Clusters as the scan found them with an earlier join: blocks of 2^20 variants, copied."""
    left, right = [], []
    for start in range(0, len(queries), 1 << 20):
        found_q, found_r = join(rows, queries[start : start + (1 << 20)], THRESHOLD)
        left.append(owners[start + found_q])
        right.append(found_r)
    return components(len(rows), left, right)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=2_000, help="items checked by brute force")
    ap.add_argument("--baseline", help="an earlier hashwatch/index/join.py to compare with")
    args = ap.parse_args()
    t = time.perf_counter()
    rows, queries = generate(args.n)
    owners = np.repeat(np.arange(args.n, dtype=np.int64), 8)
    ok = np.ones(args.n, dtype=bool)
    print(
        f"{args.n:,} hashes, {len(queries):,} queries generated in {time.perf_counter() - t:.0f} s"
    )
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}: compare CPU time")
    dihedral_pairs(rows[:100], queries[:800], owners[:800], ok[:100], THRESHOLD)  # compile
    found: list[tuple[np.ndarray, np.ndarray]] = []

    def current() -> np.ndarray:
        left, right = dihedral_pairs(rows, queries, owners, ok, THRESHOLD)
        found.append((left, right))
        return components(args.n, [left], [right])

    if args.baseline:
        old = _baseline(args.baseline)
        before, _ = _timed("baseline", lambda: _baseline_labels(old, rows, queries, owners))
    labels, wall = _timed("dihedral_pairs + components", current)
    left, right = found[0]
    print(f"{len(left):,} variant pairs (an item's own hash with itself included)")
    if args.baseline and not np.array_equal(before, labels):
        raise SystemExit("the baseline and this join give different clusters")
    # Exactness: brute force for a sample of items, each with its 8 variants.
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(args.n, size=min(args.sample, args.n), replace=False))
    asked = (sample[:, None] * 8 + np.arange(8)).ravel()
    c = time.process_time()
    truth_q, truth_i, _ = scan(
        rows_to_words(queries[asked]), rows_to_words(rows), np.zeros(args.n, np.uint8), THRESHOLD
    )
    want = {(int(owners[asked[q]]), int(i)) for q, i in zip(truth_q, truth_i, strict=True)}
    print(f"brute force: {time.process_time() - c:.1f} s CPU", flush=True)
    chosen = np.isin(left, sample)
    got = set(zip(left[chosen].tolist(), right[chosen].tolist(), strict=True))
    recall = len(want & got) / len(want) if want else 1.0
    print(
        f"recall against brute force for {len(sample):,} items ({len(asked):,} variants): "
        f"{recall:.4f} ({len(want):,} item pairs)"
    )
    if want - got or got - want:
        raise SystemExit("the clustering missed or invented pairs")
    goal = "met" if wall < 60 else "not met"
    print(f"goal (1,000,000 hashes under 60 s): {goal} at N = {args.n:,}")


if __name__ == "__main__":
    main()
