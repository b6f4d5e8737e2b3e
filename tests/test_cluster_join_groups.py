"""The batch join asked the way clustering asks it: variants in place, crowded buckets, threads."""

from __future__ import annotations

import numpy as np
import pytest

from hashwatch.index import LinearPdqIndex
from hashwatch.index.join import radius_join
from hashwatch.scan.cluster import dihedral_pairs


def _flip(rng: np.random.Generator, base: np.ndarray, bits: int) -> np.ndarray:
    out = base.copy()
    for b in rng.choice(256, size=bits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def _linear_pairs(rows: np.ndarray, queries: np.ndarray, radius: int) -> list[tuple[int, int]]:
    linear = LinearPdqIndex()
    linear.add(np.arange(len(rows), dtype=np.int64), rows)
    truth = linear.query(queries, radius)
    return sorted(zip(truth.query.tolist(), truth.ids.tolist(), strict=True))


def test_a_crowded_bucket_of_copies_gives_every_pair_once_on_one_thread_or_two() -> None:
    """A picture shared a thousand times: its copies and near copies fill one bucket of every
    table (more queries than a tile's first buffer holds, more pairs than a slice's first
    output), and still every pair within the radius comes back once, the same on one thread
    or two."""
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    rows[:200] = rows[0]  # 200 identical hashes
    queries = np.concatenate(
        [
            np.repeat(rows[:1], 1100, axis=0),  # 1,100 more copies asked
            np.stack([_flip(rng, rows[0], int(rng.integers(0, 40))) for _ in range(200)]),
            np.stack([_flip(rng, rows[i], int(rng.integers(0, 40))) for i in range(1500, 2500)]),
        ]
    )
    want = np.array(_linear_pairs(rows, queries, 31))
    assert len(want) > 220_000  # 1,100 x 200 from the copies alone
    for threads in (1, 2):
        q, r = radius_join(rows, queries, 31, threads=threads)
        assert np.array_equal(np.stack([q, r], axis=1), want)


def test_variants_asked_in_place_give_the_pairs_a_copy_of_them_gives() -> None:
    """Clustering asks some rows of its variant array (the items of matchable quality) without
    copying them: the positions returned are those of the whole array, and the pairs are the
    ones a copy of the asked rows gives."""
    rng = np.random.default_rng(8)
    rows = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    queries = np.stack([_flip(rng, rows[i % 500], int(rng.integers(0, 45))) for i in range(4000)])
    select = np.flatnonzero(rng.random(4000) < 0.3)
    q, r = radius_join(rows, queries, 31, select=select)
    copy_q, copy_r = radius_join(rows, queries[select], 31)
    assert q.tolist() == select[copy_q].tolist()
    assert r.tolist() == copy_r.tolist()
    assert len(q) > 500 and set(q.tolist()) <= set(select.tolist())
    with pytest.raises(ValueError, match="outside the 4000 queries"):
        radius_join(rows, queries, 31, select=np.array([3, 4000]))
    with pytest.raises(ValueError, match="outside"):  # not wrapped into range by a cast
        radius_join(rows, queries, 31, select=np.array([3, 2**32 + 5], dtype=np.int64))
    with pytest.raises(ValueError, match="twice"):
        radius_join(rows, queries, 31, select=np.array([5, 3, 5]))


def test_dihedral_pairs_join_only_items_of_matchable_quality() -> None:
    """An item left out (a flat picture's unreliable hash) is neither asked nor found, even
    when its hash is identical to another's; the others' pairs are the brute-force ones."""
    rng = np.random.default_rng(9)
    n = 300
    pdq = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    dihedral = rng.integers(0, 256, (n, 8, 32), dtype=np.uint8)
    for i in range(0, n, 3):  # every third item has a rotated copy in the next one
        dihedral[i + 1, 3] = _flip(rng, pdq[i], int(rng.integers(0, 31)))
    dihedral[:, 0] = pdq
    pdq[7] = pdq[8]  # identical hashes, one of them left out
    dihedral[7, 0] = pdq[7]
    ok = np.ones(n, dtype=bool)
    ok[[8, 50, 51]] = False
    flat = dihedral.reshape(n * 8, 32)
    owners = np.repeat(np.arange(n), 8)
    left, right = dihedral_pairs(pdq, flat, owners, ok, 31)
    got = set(zip(left.tolist(), right.tolist(), strict=True))
    keep = np.flatnonzero(ok)
    asked = np.flatnonzero(ok[owners])
    want = {
        (int(owners[asked[q]]), int(keep[i])) for q, i in _linear_pairs(pdq[keep], flat[asked], 31)
    }
    assert got == want
    assert (1, 0) in got and (7, 7) in got
    assert not {8, 50, 51} & {a for pair in got for a in pair}
