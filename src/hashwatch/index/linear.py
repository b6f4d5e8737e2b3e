"""The reference PDQ index: brute force in plain numpy, obviously correct.

It is what the contract tests compare every other index against, so it favours being easy
to check over speed: no numba, no tables, each query compared with every stored hash. The
comparison runs in blocks of queries × stored hashes so that the temporary arrays stay
under ``block_bytes`` whatever the sizes. It is fine for up to ~10⁵ hashes.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt

from hashwatch.errors import IndexFormatError
from hashwatch.index.base import (
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
)

__all__ = ["LinearPdqIndex"]


class LinearPdqIndex(PdqIndex):
    """Brute-force exact search: XOR, ``np.bitwise_count``, compare, for every pair."""

    KIND = "linear"

    def __init__(self, *, block_bytes: int = 32 << 20) -> None:
        self.metadata: dict[str, Any] = {}
        self.block_bytes = int(block_bytes)
        self._ids: IdArray = np.zeros(0, dtype=np.int64)
        self._words: WordArray = np.zeros((0, 4), dtype=np.uint64)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self._ids.nbytes + self._words.nbytes)

    def add(self, ids: IdArray, hashes: HashArray) -> None:
        rows = check_rows(hashes)
        new_ids = check_ids(ids, rows.shape[0])
        # Last occurrence wins inside a batch; an id already stored is replaced.
        uniq, first_in_reversed = np.unique(new_ids[::-1], return_index=True)
        words = rows_to_words(rows)[::-1][first_in_reversed]
        keep = ~np.isin(self._ids, uniq)
        ids_all = np.concatenate([self._ids[keep], uniq])
        words_all = np.concatenate([self._words[keep], words])
        order = np.argsort(ids_all, kind="stable")
        self._ids = ids_all[order]
        self._words = np.ascontiguousarray(words_all[order])

    def remove(self, ids: IdArray) -> None:
        keep = ~np.isin(self._ids, check_ids(ids))
        self._ids = self._ids[keep]
        self._words = self._words[keep]

    def query(self, hashes: HashArray, radius: int) -> QueryResult:
        q = rows_to_words(check_rows(hashes))
        r = check_radius(radius)
        n, nq = self._ids.shape[0], q.shape[0]
        if n == 0 or nq == 0:
            return QueryResult.empty()
        # One pair costs 32 bytes of XOR plus 4 of counts; size blocks to the budget.
        pairs = max(1, self.block_bytes // 40)
        stored_block = min(n, max(1, pairs))
        query_block = max(1, pairs // stored_block)
        out_q: list[npt.NDArray[np.int64]] = []
        out_i: list[npt.NDArray[np.int64]] = []
        out_d: list[npt.NDArray[np.int32]] = []
        for q0 in range(0, nq, query_block):
            qb = q[q0 : q0 + query_block]
            for s0 in range(0, n, stored_block):
                sb = self._words[s0 : s0 + stored_block]
                counts = np.bitwise_count(qb[:, None, :] ^ sb[None, :, :])
                dist = counts.sum(axis=2, dtype=np.int32)
                qi, si = np.nonzero(dist <= r)
                out_q.append(qi.astype(np.int64) + q0)
                out_i.append(self._ids[si + s0])
                out_d.append(dist[qi, si])
        return QueryResult.sorted_from(
            np.concatenate(out_q), np.concatenate(out_i), np.concatenate(out_d)
        )

    def to_state(self) -> IndexState:
        return IndexState(
            {"count": len(self), "block_bytes": self.block_bytes},
            {"ids": self._ids, "words": self._words},
        )

    @classmethod
    def from_state(cls, state: IndexState) -> Self:
        try:
            n = int(state.params["count"])
            index = cls(block_bytes=int(state.params["block_bytes"]))
            ids, words = state.arrays["ids"], state.arrays["words"]
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFormatError(f"bad linear index state: {exc}") from exc
        if ids.shape != (n,) or words.shape != (n, 4):
            raise IndexFormatError(f"linear index arrays {ids.shape}, {words.shape} for {n}")
        if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise IndexFormatError("stored ids are not strictly increasing")
        index._ids = ids.astype(np.int64, copy=False)
        index._words = words.astype(np.uint64, copy=False)
        return index
