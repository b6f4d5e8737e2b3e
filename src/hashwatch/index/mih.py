"""Exact multi-index hashing (MIH) over PDQ hashes: sub-linear radius search, recall 1.0.

Why this design (numbers from ``bench/bench_index.py`` on the 2-core machine):

* Multi-index hashing (Norouzi, Punjani & Fleet, CVPR 2012) splits the 256 bits into ``m``
  substrings and keeps one table per substring. If two hashes are within ``r`` bits, then by
  pigeonhole some substring is within ``r // m`` bits; with ``r = m·r' + a`` it is enough to
  probe ``a + 1`` tables at radius ``r'`` and the other ``m − a − 1`` at ``r' − 1`` (otherwise
  the distance would be at least ``(a+1)(r'+1) + (m−a−1)r' = r + 1``). So the search is exact,
  for any radius: when the probes would touch more buckets than a scan costs, it scans.
* ``m ≈ 256 / log2 N`` puts about one hash in each bucket; the width is capped at 24 bits so a
  table's offsets array stays ≤ 64 MiB whatever N is (10 M hashes: 11 tables, 1.3 GB in all).
* Tables are compact arrays, not hash maps: per table the row positions sorted by substring
  (a counting sort, O(N)) and an offsets array. Rows themselves are stored in the order of the
  first substring, so table 0 needs no positions and near-duplicates, which often share that
  substring, sit together in memory (1.3x faster on clustered data). FAISS
  ``IndexBinaryMultiHash`` takes ~280 bytes a hash; this takes ~130 at 10 M.
* Bits are permuted (a fixed, seeded, stored permutation) before they are cut into
  substrings: PDQ bits next to each other are correlated, and a substring of correlated bits
  has fewer distinct values, hence fuller buckets (on clustered data: 7x faster at 1 M).
  Hamming distance does not change.
* Clustered data (families of near-duplicates) can still swell buckets. Per query the bucket
  sizes are summed first, and past ``fallback_fraction · N`` candidates (N/20) the query is
  answered by a scan instead: checking a random candidate costs ~35-50 ns, scanning a row
  ~1.5 ns for a lone query (0.2 ns a query in a batch), so N/20 candidates cost about what
  one scan does. Lower thresholds gained ≤ 10 % on large batches and lost on small ones.
* Below ``linear_below`` (32 k) hashes there are no tables at all: there, a scan answers a
  lone query as fast as probing does (crossover ~20 k) and a batch faster, with no memory.
* Changes: additions go to a small delta buffer that every query scans; removals set a
  tombstone. When either passes ``max(merge_min, merge_fraction · N)`` the index is rebuilt
  (10 M hashes: ~4 s), which amortises to a few µs per change. Bulk loads should use one
  ``build`` / ``add`` on an empty index, which builds the tables directly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from hashwatch.errors import IndexFormatError
from hashwatch.index.base import (
    HASH_BITS,
    HashArray,
    IdArray,
    IndexState,
    PdqIndex,
    QueryResult,
    WordArray,
    check_ids,
    check_radius,
    check_rows,
    rows_to_words,
    zeros_unhinted,
)

__all__ = ["DEFAULT_SEED", "MihPdqIndex", "MihStats", "plan_substrings"]

DEFAULT_SEED = 0x5EED_0DD5
_U32_MAX = 2**32 - 1
U8Array = npt.NDArray[np.uint8]
I64Array = npt.NDArray[np.int64]
U32Array = npt.NDArray[np.uint32]


@dataclass
class MihStats:
    """Counters since construction: how queries were answered (for tests and tuning)."""

    queries: int = 0
    scanned: int = 0  # answered by a full scan (small index, or radius too large to probe)
    fallbacks: int = 0  # probed, but too many candidates: answered by a scan
    candidates: int = 0  # candidates summed over probed queries


def plan_substrings(
    n: int, *, max_width: int = 24, substrings: int | None = None, linear_below: int = 0
) -> list[int]:
    """Substring widths (wider first) for ``n`` hashes; ``[]`` means no tables, scan only."""
    if n == 0 or n < linear_below:
        return []
    if substrings is None:
        m = round(HASH_BITS / math.log2(max(n, 2)))
        m = min(max(m, math.ceil(HASH_BITS / max_width), 2), HASH_BITS // 4)
    else:
        m = substrings
    if not 2 <= m <= HASH_BITS // 4 or math.ceil(HASH_BITS / m) > max_width:
        raise ValueError(f"cannot cut 256 bits into {m} substrings of 4..{max_width} bits")
    base, extra = divmod(HASH_BITS, m)
    return [base + 1] * extra + [base] * (m - extra)


def table_radii(widths: list[int], radius: int) -> list[int]:
    """Probe radius per table (``-1``: skip), by the refined pigeonhole ``r = m·r' + a``."""
    m = len(widths)
    rp, a = divmod(radius, m)
    return [rp if t <= a else rp - 1 for t in range(m)]


def _ball(width: int, radius: int) -> int:
    return sum(math.comb(width, j) for j in range(min(radius, width) + 1))


@functools.lru_cache(maxsize=16)
def _ball_masks(width: int, radius: int) -> npt.NDArray[np.int64]:
    """Probe masks of one table (empty for radius -1), cached: the same few are reused."""
    from hashwatch.index import _kernels as k  # numba on first use, not at load

    if radius < 0:
        return np.zeros(0, dtype=np.int64)
    masks: npt.NDArray[np.int64] = k.ball_masks(width, radius)
    masks.flags.writeable = False
    return masks


@dataclass(frozen=True)
class _ProbePlan:
    """What a query at one radius probes in tables of these widths: per-table radius and
    the buckets probed in all; :attr:`masks` every table's probe masks in one array
    (``mask_lo``: where each table's start), built only for a plan that is probed."""

    widths: tuple[int, ...]
    radii: I64Array
    buckets: int

    @functools.cached_property
    def masks(self) -> tuple[I64Array, I64Array]:
        parts = [_ball_masks(w, int(t)) for w, t in zip(self.widths, self.radii, strict=True)]
        masks = np.concatenate(parts)
        mask_lo = np.cumsum([0] + [len(m) for m in parts], dtype=np.int64)
        return masks, mask_lo  # writable, as the kernel's compiled signature has them


@functools.lru_cache(maxsize=64)
def _probe_plan(widths: tuple[int, ...], radius: int) -> _ProbePlan:
    """The probe plan of ``radius`` in tables of ``widths``, cached: a server asks the same
    one or two radii of one layout for every request (building it took ~40 µs a query)."""
    radii = table_radii(list(widths), radius)
    buckets = sum(_ball(w, t) for w, t in zip(widths, radii, strict=True) if t >= 0)
    return _ProbePlan(widths, np.array(radii, dtype=np.int64), buckets)


def permutation_table(perm: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """Per-byte look-up tables (32, 256, 4) that move input bit ``perm[j]`` to output bit j."""
    inv = np.argsort(perm)
    values = np.arange(256)
    table = np.zeros((32, 256, 4), dtype=np.uint64)
    for b in range(32):
        for bit in range(8):
            j = int(inv[8 * b + bit])
            has = ((values >> bit) & 1).astype(bool)
            table[b, has, j >> 6] |= np.uint64(1) << np.uint64(j & 63)
    return table


class MihPdqIndex(PdqIndex):
    """Exact PDQ radius search by multi-index hashing, with a delta buffer and tombstones.

    ``build(ids, hashes)`` or ``add`` on an empty index builds the tables in one pass;
    later ``add``/``remove`` calls are cheap and merged by a rebuild now and then.
    """

    KIND = "mih"

    def __init__(
        self,
        *,
        linear_below: int = 32_768,
        max_width: int = 24,
        substrings: int | None = None,
        fallback_fraction: float = 0.05,
        merge_min: int = 50_000,
        merge_fraction: float = 0.05,
        permute_bits: bool = True,
        seed: int = DEFAULT_SEED,
    ) -> None:
        if not 4 <= max_width <= 28:
            raise ValueError("max_width must be in 4..28 (offsets take 4·2**width bytes)")
        if not 0.0 < fallback_fraction <= 1.0 or not 0.0 <= merge_fraction <= 1.0:
            raise ValueError("fallback_fraction must be in (0, 1], merge_fraction in [0, 1]")
        self.metadata: dict[str, Any] = {}
        self.stats = MihStats()
        self.linear_below = int(linear_below)
        self.max_width = int(max_width)
        self.substrings = substrings
        self.fallback_fraction = float(fallback_fraction)
        self.merge_min = int(merge_min)
        self.merge_fraction = float(merge_fraction)
        self.permute_bits = bool(permute_bits)
        self.seed = int(seed)
        perm = np.arange(HASH_BITS, dtype=np.int64)
        if permute_bits:
            perm = np.random.default_rng(seed).permutation(HASH_BITS).astype(np.int64)
        self._set_permutation(perm)
        self._set_main(np.zeros(0, np.int64), np.zeros((0, 4), np.uint64), [])
        self._delta_ids: IdArray = np.zeros(0, dtype=np.int64)
        self._delta_words: WordArray = np.zeros((0, 4), dtype=np.uint64)

    # -- layout -------------------------------------------------------------------------

    def _set_permutation(self, perm: npt.NDArray[np.int64]) -> None:
        self._perm = perm
        self._identity = bool(np.array_equal(perm, np.arange(HASH_BITS)))
        self._perm_table = permutation_table(perm)

    def _permute(self, rows: HashArray) -> WordArray:
        from hashwatch.index import _kernels as k  # numba on first use, not at load

        if self._identity:
            return rows_to_words(rows)
        result: WordArray = k.permute_words(rows, self._perm_table)
        return result

    def _set_main(self, ids: IdArray, words: WordArray, widths: list[int]) -> None:
        """Install ``ids`` and their ``words`` as the main part, with empty tables."""
        n = ids.shape[0]
        self._ids = ids
        self._words = words
        self._id_order: U32Array = np.arange(n, dtype=np.uint32)
        self._dead: U8Array = np.zeros(n, dtype=np.uint8)
        self._ndead = 0
        size = self._set_layout(widths)
        self._offsets: U32Array = zeros_unhinted((size,), np.uint32)
        self._table_ids: U32Array = zeros_unhinted((max(len(widths) - 1, 0), n), np.uint32)

    def _set_layout(self, widths: list[int]) -> int:
        """Substring starts and offset-array bases for ``widths``; returns the offsets' size."""
        self._widths = np.array(widths, dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._widths)[:-1]]).astype(np.int64)
        sizes = (np.int64(1) << self._widths) + 1
        self._off_base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return int(sizes.sum())

    def _build_main(self, ids: IdArray, words: WordArray) -> None:
        """Replace the main part by (ids, words), which must hold unique ids.

        Rows are stored in the order of their first substring (ties by id), so table 0 needs
        no position array — its buckets are row ranges — and near-duplicates, which often
        share that substring, sit next to each other in memory: on clustered data that made
        queries ~1.3x faster. ``_id_order`` (ids' sort order) serves id look-ups.
        """
        from hashwatch.index import _kernels as k  # numba on first use, not at load

        n = ids.shape[0]
        if n > _U32_MAX:
            raise ValueError("at most 2**32 - 1 hashes per index (positions are uint32)")
        if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids, words = ids[order], words[order]
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        words = np.ascontiguousarray(words, dtype=np.uint64)
        widths = plan_substrings(
            n, max_width=self.max_width, substrings=self.substrings, linear_below=self.linear_below
        )
        if not widths:
            self._set_main(ids, words, widths)
            return
        self._set_main(np.zeros(0, np.int64), np.zeros((0, 4), np.uint64), [])
        offsets0 = zeros_unhinted(((1 << widths[0]) + 1,), np.uint32)
        row_order = zeros_unhinted((n,), np.uint32)
        k.build_table(words, 0, widths[0], offsets0, row_order)
        words = words[row_order]  # rows by first substring; ties keep id order
        ids = ids[row_order]
        self._set_main(ids, words, widths)
        self._offsets[: offsets0.shape[0]] = offsets0
        del offsets0
        self._id_order[row_order] = np.arange(n, dtype=np.uint32)  # inverse permutation
        del row_order
        for t in range(1, len(widths)):
            base = int(self._off_base[t])
            k.build_table(
                words,
                int(self._starts[t]),
                widths[t],
                self._offsets[base : base + (1 << widths[t]) + 1],
                self._table_ids[t - 1],
            )

    @property
    def table_count(self) -> int:
        """Number of substring tables; 0 while the index is small enough to scan."""
        return int(self._widths.shape[0])

    @property
    def widths(self) -> list[int]:
        """Substring widths in bits, in table order; substrings are cut in that order."""
        return [int(w) for w in self._widths]

    @property
    def permutation(self) -> npt.NDArray[np.int64]:
        """Bit ``j`` of the permuted hash is bit ``permutation[j]`` of the hash (LE words)."""
        return self._perm.copy()

    @property
    def pending(self) -> tuple[int, int]:
        """(hashes in the delta buffer, tombstoned rows): work the next merge absorbs."""
        return int(self._delta_ids.shape[0]), self._ndead

    def __len__(self) -> int:
        return int(self._ids.shape[0]) - self._ndead + int(self._delta_ids.shape[0])

    @property
    def nbytes(self) -> int:
        arrays = (
            self._ids,
            self._words,
            self._id_order,
            self._dead,
            self._offsets,
            self._table_ids,
            self._delta_ids,
            self._delta_words,
        )
        return int(sum(a.nbytes for a in arrays))

    # -- changes ------------------------------------------------------------------------

    def add(self, ids: IdArray, hashes: HashArray) -> None:
        rows = check_rows(hashes)
        new_ids = check_ids(ids, rows.shape[0])
        if new_ids.shape[0] == 0:
            return
        # Last occurrence wins inside one batch, as it would across batches.
        uniq, first_in_reversed = np.unique(new_ids[::-1], return_index=True)
        rows = np.ascontiguousarray(rows[::-1][first_in_reversed])
        if self._ids.shape[0] == 0 and self._delta_ids.shape[0] == 0:
            # No local reference to the permuted words: the build may drop them early.
            self._build_main(uniq, self._permute(rows))
            return
        words = self._permute(rows)
        self._kill_main(uniq)
        keep = ~np.isin(self._delta_ids, uniq)
        self._delta_ids = np.concatenate([self._delta_ids[keep], uniq])
        self._delta_words = np.concatenate([self._delta_words[keep], words])
        self._maybe_merge()

    def remove(self, ids: IdArray) -> None:
        gone = np.unique(check_ids(ids))
        if gone.shape[0] == 0:
            return
        self._kill_main(gone)
        if self._delta_ids.shape[0]:
            keep = ~np.isin(self._delta_ids, gone)
            self._delta_ids = self._delta_ids[keep]
            self._delta_words = self._delta_words[keep]
        self._maybe_merge()

    def _kill_main(self, ids: IdArray) -> None:
        """Tombstone the main rows holding these (unique) ids, if any."""
        from hashwatch.index import _kernels as k  # numba on first use, not at load

        if self._ids.shape[0] == 0:
            return
        pos = k.find_ids(self._ids, self._id_order, ids)
        pos = pos[pos >= 0]
        pos = pos[self._dead[pos] == 0]
        self._dead[pos] = 1
        self._ndead += int(pos.shape[0])

    def _maybe_merge(self) -> None:
        live = int(self._ids.shape[0]) - self._ndead
        threshold = max(self.merge_min, int(self.merge_fraction * live))
        if self._delta_ids.shape[0] > threshold or self._ndead > threshold:
            self.compact()

    def compact(self) -> None:
        """Merge the delta buffer and drop tombstoned rows by rebuilding the tables now."""
        live = self._dead == 0
        ids = np.concatenate([self._ids[live], self._delta_ids])
        words = np.concatenate([self._words[live], self._delta_words])
        self._delta_ids = np.zeros(0, dtype=np.int64)
        self._delta_words = np.zeros((0, 4), dtype=np.uint64)
        self._set_main(np.zeros(0, np.int64), np.zeros((0, 4), np.uint64), [])
        self._build_main(ids, words)

    # -- queries ------------------------------------------------------------------------

    def query(self, hashes: HashArray, radius: int) -> QueryResult:
        from hashwatch.index import _kernels as k  # numba on first use, not at load

        rows = check_rows(hashes)
        r = check_radius(radius)
        nq = rows.shape[0]
        self.stats.queries += nq
        if nq == 0 or len(self) == 0:
            return QueryResult.empty()
        q = self._permute(rows)
        parts: list[tuple[I64Array, I64Array, npt.NDArray[np.int32]]] = []
        if self._ids.shape[0]:
            qi, pos, dist = self._query_main(q, r)
            parts.append((qi, self._ids[pos], dist))
        if self._delta_ids.shape[0]:
            no_dead = np.zeros(self._delta_ids.shape[0], dtype=np.uint8)
            qi, pos, dist = k.scan(q, self._delta_words, no_dead, r)
            parts.append((qi, self._delta_ids[pos], dist))
        return QueryResult.sorted_from(
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def _query_main(self, q: WordArray, r: int) -> tuple[I64Array, I64Array, npt.NDArray[np.int32]]:
        from hashwatch.index import _kernels as k  # numba on first use, not at load

        n = int(self._ids.shape[0])
        widths = self.widths
        cand_limit = max(1024, int(self.fallback_fraction * n))
        plan = _probe_plan(tuple(widths), r) if widths else None
        if plan is None or plan.buckets > cand_limit:
            self.stats.scanned += q.shape[0]
            result: tuple[I64Array, I64Array, npt.NDArray[np.int32]]
            result = k.scan(q, self._words, self._dead, r)
            return result
        qi, pos, dist, fallback, ncand = k.mih_query(
            q,
            r,
            self._words,
            self._dead,
            self._table_ids,
            self._offsets,
            self._off_base,
            self._starts,
            self._widths,
            plan.radii,
            *plan.masks,
            cand_limit,
        )
        self.stats.candidates += int(ncand[fallback == 0].sum())
        slow = np.flatnonzero(fallback)
        if slow.shape[0] == 0:
            return qi, pos, dist
        self.stats.fallbacks += int(slow.shape[0])
        sq, spos, sdist = k.scan(np.ascontiguousarray(q[slow]), self._words, self._dead, r)
        return (
            np.concatenate([qi, slow[sq]]),
            np.concatenate([pos, spos]),
            np.concatenate([dist, sdist]),
        )

    # -- persistence --------------------------------------------------------------------

    def to_state(self) -> IndexState:
        params: dict[str, Any] = {
            "linear_below": self.linear_below,
            "max_width": self.max_width,
            "substrings": self.substrings,
            "fallback_fraction": self.fallback_fraction,
            "merge_min": self.merge_min,
            "merge_fraction": self.merge_fraction,
            "permute_bits": self.permute_bits,
            "seed": self.seed,
            "widths": self.widths,
            "main_count": int(self._ids.shape[0]),
            "delta_count": int(self._delta_ids.shape[0]),
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "perm": self._perm.astype(np.int16),
            "ids": self._ids,
            "id_order": self._id_order,
            "words": self._words,
            "dead": self._dead,
            "offsets": self._offsets,
            "table_ids": self._table_ids,
            "delta_ids": self._delta_ids,
            "delta_words": self._delta_words,
        }
        return IndexState(params, arrays)

    @classmethod
    def from_state(cls, state: IndexState) -> Self:
        p, a = state.params, state.arrays
        try:
            index = cls(
                linear_below=int(p["linear_below"]),
                max_width=int(p["max_width"]),
                substrings=None if p["substrings"] is None else int(p["substrings"]),
                fallback_fraction=float(p["fallback_fraction"]),
                merge_min=int(p["merge_min"]),
                merge_fraction=float(p["merge_fraction"]),
                permute_bits=False,
                seed=int(p["seed"]),
            )
            index.permute_bits = bool(p["permute_bits"])
            widths = [int(w) for w in p["widths"]]
            n, nd = int(p["main_count"]), int(p["delta_count"])
            perm = a["perm"].astype(np.int64)
            expect = {
                "perm": (HASH_BITS,),
                "ids": (n,),
                "id_order": (n,),
                "words": (n, 4),
                "dead": (n,),
                "offsets": (sum((1 << w) + 1 for w in widths),),
                "table_ids": (max(len(widths) - 1, 0), n),
                "delta_ids": (nd,),
                "delta_words": (nd, 4),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFormatError(f"bad MIH index parameters: {exc}") from exc
        for name, shape in expect.items():
            if name not in a or tuple(a[name].shape) != shape:
                got = a[name].shape if name in a else "missing"
                raise IndexFormatError(f"array {name!r}: expected shape {shape}, got {got}")
        if not np.array_equal(np.sort(perm), np.arange(HASH_BITS)):
            raise IndexFormatError("bit permutation is not a permutation of 0..255")
        if any(not 4 <= w <= 32 for w in widths) or (widths and sum(widths) != HASH_BITS):
            raise IndexFormatError(f"substring widths {widths} do not cover 256 bits")
        index._set_permutation(perm)
        index._set_layout(widths)
        index._ids = a["ids"].astype(np.int64, copy=False)
        index._id_order = a["id_order"].astype(np.uint32, copy=False)
        index._words = a["words"].astype(np.uint64, copy=False)
        index._dead = a["dead"].astype(np.uint8, copy=False)
        index._ndead = int(np.count_nonzero(index._dead))
        index._offsets = a["offsets"].astype(np.uint32, copy=False)
        index._table_ids = a["table_ids"].astype(np.uint32, copy=False)
        index._delta_ids = a["delta_ids"].astype(np.int64, copy=False)
        index._delta_words = a["delta_words"].astype(np.uint64, copy=False)
        # The kernels index without bounds checks: a file that passed its checksums must
        # still not make them read out of bounds, so the structure is checked too. In NumPy,
        # not in the kernels: loading an index (a server's start) then needs no JIT dispatch.
        if not _ids_consistent(index._ids, index._id_order):
            raise IndexFormatError("stored ids are not unique or their sort order is wrong")
        if not _tables_consistent(index._offsets, index._off_base, widths, index._table_ids, n):
            raise IndexFormatError("table offsets or positions do not match the stored hashes")
        return index


def _ids_consistent(ids: npt.NDArray[np.int64], order: npt.NDArray[np.uint32]) -> bool:
    """True if ``order`` lists positions below n and ``ids[order]`` strictly increases."""
    n = ids.shape[0]
    if n == 0:
        return True
    if int(order.max()) >= n:
        return False
    ordered = ids[order]
    return bool(np.all(ordered[1:] > ordered[:-1]))


def _tables_consistent(
    offsets: npt.NDArray[np.uint32],
    off_base: npt.NDArray[np.int64],
    widths: list[int],
    table_ids: npt.NDArray[np.uint32],
    n: int,
) -> bool:
    """True if every table's offsets rise from 0 to n and every position is below n.

    Table 0 has no positions (rows are stored in its order); table ``t`` uses
    ``table_ids[t - 1]``.
    """
    for t, width in enumerate(widths):
        base = int(off_base[t])
        table = offsets[base : base + (1 << width) + 1]
        if int(table[0]) != 0 or int(table[-1]) != n or not np.all(table[1:] >= table[:-1]):
            return False
    return table_ids.size == 0 or int(table_ids.max()) < n
