"""Numba kernels of the batch join (:mod:`hashwatch.index.join`): substring keys, counting
sorts and the bucket-pair join itself.

Hashes are compared as they are stored (four ``uint64`` words a row, no permuted copy): a
table's substring is a set of bit positions, so its key is gathered by per-byte look-up tables
(``lut[b, v]``: where the bits of value ``v`` at byte ``b`` land in the key) over only the
bytes that hold the table's bits, and "is this pair covered by an earlier table's probe" is a
popcount of the pair's XOR under that table's 256-bit mask. Hamming distance does not depend
on the order of bits, so the plan is the multi-index's, bit for bit, without permuting rows.

Like :mod:`hashwatch.index._kernels`, every kernel is compiled with ``cache=True`` and
releases the GIL; the caller runs slices of a table on several threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hashwatch.index._kernels import _grow, _jit, popcount

__all__ = ["counting_sort", "join_groups", "table_keys"]


@_jit
def table_keys(rows: Any, select: Any, lut: Any, nbytes: int, bytes_at: Any) -> Any:
    """The substring key of rows ``select`` of ``rows`` ((n, 32) uint8), gathered by the
    table's look-up ``lut`` ((32, 256) int32) over its ``nbytes`` bytes ``bytes_at``."""
    n = select.shape[0]
    out = np.empty(n, dtype=np.int32)
    for i in range(n):
        row = select[i]
        key = np.int32(0)
        for b in range(nbytes):
            at = bytes_at[b]
            key |= lut[at, rows[row, at]]
        out[i] = key
    return out


@_jit
def counting_sort(keys: Any, select: Any, buckets: int) -> Any:
    """Positions ``select`` ordered by key (stable, in ``select``'s type), and the offsets
    (``buckets + 1``) of each key's run in that order."""
    offsets = np.zeros(buckets + 1, dtype=np.int64)
    n = keys.shape[0]
    for i in range(n):
        offsets[keys[i] + 1] += 1
    for b in range(buckets):
        offsets[b + 1] += offsets[b]
    fill = offsets[:-1].copy()
    order = np.empty(n, dtype=select.dtype)
    for i in range(n):
        key = keys[i]
        order[fill[key]] = select[i]
        fill[key] += 1
    return order, offsets


@_jit
def gather_words(words: Any, order: Any) -> Any:
    """Rows ``order`` of ``words`` ((n, 4) uint64), contiguous."""
    n = order.shape[0]
    out = np.empty((n, 4), dtype=np.uint64)
    for i in range(n):
        j = order[i]
        out[i, 0] = words[j, 0]
        out[i, 1] = words[j, 1]
        out[i, 2] = words[j, 2]
        out[i, 3] = words[j, 3]
    return out


@_jit
def join_groups(
    k0: int,
    k1: int,
    tile: int,
    qwords: Any,
    qoff: Any,
    qorder: Any,
    rsorted: Any,
    roff: Any,
    rorder: Any,
    masks: Any,
    radius: int,
    earlier: Any,
    earlier_radii: Any,
) -> Any:
    """Pairs (query position, row position) within ``radius`` whose query's key is in
    ``k0 .. k1``: each key's queries (its group) against the rows of every bucket its probe
    ``masks`` reach, skipping pairs that a table in ``earlier`` ((u, 4) uint64 bit masks, with
    their probe radii) covers, so each pair comes from one table only.

    Keys are taken a tile at a time (``tile`` keys, a power of two; ``k0`` a multiple): the
    tile's queries are copied together, contiguous (they stay in cache while every mask is
    probed), and with masks ordered by their bits above the tile's, consecutive masks probe
    the same aligned tile of row buckets, read in order. A row is compared with its group on
    two words first (random hashes differ there by ~64 bits, so a group within the radius on
    those is rare) and only such a group is compared in full and its pairs appended, outside
    the hot loop: appending inside it makes numba's loop several times slower."""
    cap = 1024
    out_q = np.empty(cap, dtype=np.int64)
    out_r = np.empty(cap, dtype=np.int64)
    n = 0
    size = 1024
    qt = np.empty((size, 4), dtype=np.uint64)
    nm = masks.shape[0]
    ne = earlier.shape[0]
    for t0 in range(k0, k1, tile):
        t1 = min(t0 + tile, k1)
        base = qoff[t0]
        g_all = qoff[t1] - base
        if g_all == 0:
            continue
        if g_all > size:
            size = 2 * g_all
            qt = np.empty((size, 4), dtype=np.uint64)
        for i in range(g_all):
            q = qorder[base + i]
            qt[i, 0] = qwords[q, 0]
            qt[i, 1] = qwords[q, 1]
            qt[i, 2] = qwords[q, 2]
            qt[i, 3] = qwords[q, 3]
        for m in range(nm):
            mask = masks[m]
            for kq in range(t0, t1):
                s = qoff[kq] - base
                e = qoff[kq + 1] - base
                if s == e:
                    continue
                b = kq ^ mask
                for j in range(roff[b], roff[b + 1]):
                    r0 = rsorted[j, 0]
                    r1 = rsorted[j, 1]
                    r2 = rsorted[j, 2]
                    r3 = rsorted[j, 3]
                    low = np.int64(256)
                    for i in range(s, e):  # two words first: random pairs differ by ~64 bits
                        d = np.int64(popcount(qt[i, 0] ^ r0) + popcount(qt[i, 1] ^ r1))
                        low = min(low, d)
                    if low > radius:
                        continue
                    for i in range(s, e):
                        d = np.int64(
                            popcount(qt[i, 0] ^ r0)
                            + popcount(qt[i, 1] ^ r1)
                            + popcount(qt[i, 2] ^ r2)
                            + popcount(qt[i, 3] ^ r3)
                        )
                        if d > radius:
                            continue
                        x0, x1, x2, x3 = qt[i, 0] ^ r0, qt[i, 1] ^ r1, qt[i, 2] ^ r2, qt[i, 3] ^ r3
                        first = True
                        for u in range(ne):  # covered by an earlier table's probe: emitted there
                            du = (
                                popcount(x0 & earlier[u, 0])
                                + popcount(x1 & earlier[u, 1])
                                + popcount(x2 & earlier[u, 2])
                                + popcount(x3 & earlier[u, 3])
                            )
                            if du <= earlier_radii[u]:
                                first = False
                                break
                        if not first:
                            continue
                        if n == cap:
                            out_q = _grow(out_q, n + 1)
                            out_r = _grow(out_r, n + 1)
                            cap = out_q.shape[0]
                        out_q[n] = qorder[base + i]
                        out_r[n] = rorder[j]
                        n += 1
    return out_q[:n].copy(), out_r[:n].copy()
