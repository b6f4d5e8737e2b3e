"""Clustering with the exact multi-index gives the very clusters a brute-force comparison does."""

from __future__ import annotations

import numpy as np

from hashwatch.scan.cluster import cluster_new_media, near_pairs
from hashwatch.scan.model import ItemRecord, ItemStatus


def _flip(rng: np.random.Generator, base: np.ndarray, bits: int) -> np.ndarray:
    out = base.copy()
    for b in rng.choice(256, size=bits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def _items(seed: int) -> list[ItemRecord]:
    """Generated hashes: lone pictures, near-duplicate families (some across the threshold of
    31 bits, so chains and near misses both occur) and rotated copies found only through a
    dihedral variant."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[np.ndarray, list[np.ndarray]]] = []
    for _ in range(120):  # lone pictures
        h = rng.integers(0, 256, 32, dtype=np.uint8)
        rows.append((h, [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(7)]))
    for _ in range(25):  # families: members 0..40 bits from the base
        base = rng.integers(0, 256, 32, dtype=np.uint8)
        for _ in range(int(rng.integers(2, 7))):
            h = _flip(rng, base, int(rng.integers(0, 41)))
            rows.append((h, [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(7)]))
    for _ in range(15):  # a rotated copy: its rot90 variant is near the original's hash
        orig = rows[int(rng.integers(0, 120))][0]
        h = rng.integers(0, 256, 32, dtype=np.uint8)
        variants = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(7)]
        variants[0] = _flip(rng, orig, int(rng.integers(0, 35)))
        rows.append((h, variants))
    items = []
    for n, (h, variants) in enumerate(rows):
        dihedral = [h.tobytes().hex(), *(v.tobytes().hex() for v in variants)]
        items.append(
            ItemRecord(
                path=f"/e/p{n:04d}.jpg",
                root="/e",
                md5=f"{n:032x}",
                media_type="image",
                pdq=dihedral[0],
                pdq_quality=90,
                pdq_dihedral=dihedral,
                status=ItemStatus.NEW,
            )
        )
    return items


def _brute_force(items: list[ItemRecord], threshold: int) -> set[frozenset[str]]:
    def bits(hexes: list[str]) -> np.ndarray:
        raw = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8)
        return np.unpackbits(raw.reshape(len(hexes), 32), axis=1)

    originals = bits([it.pdq or "" for it in items])
    parent = list(range(len(items)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, it in enumerate(items):
        variants = bits(it.pdq_dihedral or [])
        dist = (variants[:, None, :] != originals[None, :, :]).sum(axis=2).min(axis=0)
        for j in np.flatnonzero(dist <= threshold):
            parent[find(i)] = find(int(j))
    groups: dict[int, set[str]] = {}
    for i, it in enumerate(items):
        groups.setdefault(find(i), set()).add(it.path)
    return {frozenset(g) for g in groups.values()}


def test_multi_index_clusters_equal_brute_force_clusters() -> None:
    for seed in (1, 2):
        items = _items(seed)
        expected = _brute_force(items, 31)
        clusters = cluster_new_media(items, threshold=31)
        got = {frozenset(c.members) for c in clusters}
        assert got == expected
        assert any(len(g) > 2 for g in expected)  # the set does hold clusters
        assert sum(len(c.members) for c in clusters) == len(items)


def test_near_pairs_at_tiny_sizes() -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 256, (2, 32), dtype=np.uint8)
    queries = np.stack([_flip(rng, rows[1], 31), _flip(rng, rows[0], 32)])
    assert sorted(near_pairs(rows, queries, 31)) == [(0, 1)]
    assert list(near_pairs(rows[:1], rows[:1], 0)) == [(0, 0)]


def test_the_batch_join_finds_every_pair_a_linear_scan_finds_once() -> None:
    from hashwatch.index import LinearPdqIndex

    rng = np.random.default_rng(4)
    rows = rng.integers(0, 256, (2000, 32), dtype=np.uint8)
    rows[1000:1010] = rows[0]  # identical hashes: many pairs in one bucket
    queries = np.stack([_flip(rng, rows[i % 2000], int(rng.integers(0, 40))) for i in range(3000)])
    linear = LinearPdqIndex()
    linear.add(np.arange(len(rows), dtype=np.int64), rows)
    truth = linear.query(queries, 31)
    want = sorted(zip(truth.query.tolist(), truth.ids.tolist(), strict=True))
    assert list(near_pairs(rows, queries, 31)) == want
    assert len(want) > 2000  # most queries are within the radius, some with 11 rows
