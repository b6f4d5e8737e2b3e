"""Every (query, row) pair within a radius, for a whole batch at once: the multi-index as a join.

Clustering a scan's new media asks for all near pairs among N hashes and their 8N dihedral
variants. Asked of :class:`~hashwatch.index.mih.MihPdqIndex` one query at a time, each query
probes ~1,400 buckets in 13 tables (N = 1 M) and every candidate is a random memory access
(measured: ~2,000 queries/s under load, 8 M queries ≈ an hour). The same pigeonhole, done a
table at a time over the whole batch, streams instead:

* the substring plan, bit permutation and probe radii are the multi-index's own
  (:func:`~hashwatch.index.mih.plan_substrings`, :func:`~hashwatch.index.mih.table_radii`,
  the seeded permutation), so the search is exact for any radius; a table's key is gathered
  from the stored bytes by look-up tables (no permuted copy of the rows or queries);
* per table, rows and queries are put in key order by counting sorts; the queries sharing a
  key (a group: ~8 at 1 M rows and 8 M queries) probe the buckets around that key once, and
  each row found is compared with the whole group in one vectorised loop. Groups are taken in
  key order, so each probe mask's buckets are visited in increasing order (streaming);
* a pair is emitted only by the first table whose probe covers it (checked on the few pairs
  found, not on candidates), so no pair comes twice and no deduplication pass is needed.

Key ranges of a table run on every core (the kernels release the GIL), and the next table is
sorted while one is joined.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from hashwatch.index import _join_kernels as jk
from hashwatch.index import _kernels as k
from hashwatch.index.base import HashArray, check_radius, check_rows
from hashwatch.index.mih import DEFAULT_SEED, plan_substrings, table_radii

__all__ = ["radius_join"]

I64Array = npt.NDArray[np.int64]
_SLICES = 64  # key ranges per table, spread over the threads
_TILE_QUERIES = 8192  # queries held in cache while a tile's probes run (256 KiB of words)


def _table_bits(perm: I64Array, start: int, width: int) -> tuple[Any, Any, Any, int]:
    """Table of permuted bits ``start .. start+width``: its key look-up (32, 256), the bytes
    that hold its bits, and its 256-bit mask as four words."""
    lut = np.zeros((32, 256), dtype=np.int32)
    mask = np.zeros(4, dtype=np.uint64)
    values = np.arange(256)
    held: list[int] = []
    for j in range(width):
        bit = int(perm[start + j])  # input bit 8 * byte + bit-in-byte, word bit // 64
        byte, within = divmod(bit, 8)
        lut[byte, ((values >> within) & 1).astype(bool)] |= np.int32(1 << j)
        mask[bit >> 6] |= np.uint64(1) << np.uint64(bit & 63)
        if byte not in held:
            held.append(byte)
    return lut, np.asarray(sorted(held), dtype=np.int64), mask, len(held)


def _tile_keys(width: int, queries: int) -> int:
    """Keys a tile of the join spans: a power of two holding about ``_TILE_QUERIES`` queries."""
    want = _TILE_QUERIES * (1 << width) // max(queries, 1)
    return 1 << min(width, max(4, want.bit_length() - 1))


def radius_join(
    rows: HashArray,
    queries: HashArray,
    radius: int,
    *,
    threads: int | None = None,
    select: npt.NDArray[np.integer[Any]] | None = None,
) -> tuple[I64Array, I64Array]:
    """Every pair (query position, row position) within ``radius`` bits, each exactly once,
    sorted by query then row. Exact: the multi-index's pigeonhole over its own plan.

    ``select``: the positions of ``queries`` to ask (all when None), so that a caller asking
    some rows of a large array needs no copy of them; positions returned are those of
    ``queries``."""
    rows, queries = check_rows(rows), check_rows(queries)
    r = check_radius(radius)
    n, nq = rows.shape[0], queries.shape[0]
    index = np.int32 if max(n, nq) < 2**31 else np.int64  # positions: half the memory
    if select is None:
        asked = np.arange(nq, dtype=index)
    else:
        given = np.asarray(select)  # checked in its own type: a cast could wrap a bad position
        if given.ndim != 1 or not np.issubdtype(given.dtype, np.integer):
            raise ValueError("select must be a 1-D array of integer positions")
        if given.size and not 0 <= int(given.min()) <= int(given.max()) < nq:
            raise ValueError(f"select holds positions outside the {nq} queries")
        ascending = given.size < 2 or bool(np.all(given[1:] > given[:-1]))  # flatnonzero's
        if not ascending and np.unique(given).size != given.size:
            raise ValueError("select holds a position twice (each pair is returned once)")
        asked = given.astype(index, copy=False)
    if n == 0 or asked.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    perm = np.random.default_rng(DEFAULT_SEED).permutation(256).astype(np.int64)
    widths = plan_substrings(max(n, 2))
    radii = table_radii(widths, r)
    starts = np.cumsum([0, *widths[:-1]]).astype(np.int64).tolist()
    bits = [_table_bits(perm, s, w) for s, w in zip(starts, widths, strict=True)]
    all_rows = np.arange(n, dtype=index)
    rwords, qwords = rows.view(np.uint64), queries.view(np.uint64)

    def prepare(t: int) -> tuple[Any, ...]:
        """Table ``t``'s rows and queries in key order (counting sorts)."""
        lut, held, _, nbytes = bits[t]
        buckets = 1 << widths[t]
        rkeys = jk.table_keys(rows, all_rows, lut, nbytes, held)
        rorder, roff = jk.counting_sort(rkeys, all_rows, buckets)
        del rkeys
        qkeys = jk.table_keys(queries, asked, lut, nbytes, held)
        qorder, qoff = jk.counting_sort(qkeys, asked, buckets)
        return jk.gather_words(rwords, rorder), roff, rorder, qoff, qorder

    probed = [t for t in range(len(widths)) if radii[t] >= 0]
    workers = max(1, threads or os.cpu_count() or 1)
    found_q: list[I64Array] = []
    found_r: list[I64Array] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hashwatch-join") as pool:
        ahead = pool.submit(prepare, probed[0])
        for at, t in enumerate(probed):
            rsorted, roff, rorder, qoff, qorder = ahead.result()
            if at + 1 < len(probed):  # the next table is sorted while this one is joined
                ahead = pool.submit(prepare, probed[at + 1])
            width, buckets = widths[t], 1 << widths[t]
            before = [u for u in range(t) if radii[u] >= 0]
            tile = _tile_keys(width, asked.shape[0])
            masks = k.ball_masks(width, radii[t])
            masks = masks[np.argsort(masks >> (tile.bit_length() - 1), kind="stable")]
            task = functools.partial(
                jk.join_groups,
                tile=tile,
                qwords=qwords,
                qoff=qoff,
                qorder=qorder,
                rsorted=rsorted,
                roff=roff,
                rorder=rorder,
                masks=masks,
                radius=r,
                earlier=np.array([bits[u][2] for u in before], dtype=np.uint64).reshape(-1, 4),
                earlier_radii=np.array([radii[u] for u in before], dtype=np.int64),
            )
            step = max(tile, -(-buckets // _SLICES // tile) * tile)
            lows = range(0, buckets, step)
            for pq, pr in pool.map(task, lows, [min(lo + step, buckets) for lo in lows]):
                if pq.shape[0]:
                    found_q.append(pq)
                    found_r.append(pr)
            del rsorted, roff, rorder, qoff, qorder, task
    if not found_q:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    q_all = np.concatenate(found_q)
    r_all = np.concatenate(found_r)
    order = np.lexsort((r_all, q_all))
    return q_all[order], r_all[order]
