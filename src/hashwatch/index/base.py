"""The PDQ index seam: one interface, a linear reference implementation, and the contract.

Every implementation is *exact*: ``query`` returns every stored hash within ``radius``
(Hamming distance, inclusive) of a query, never an approximation. Hashes are 32-byte rows
(``uint8``) in the byte order of their 64-character hex spelling; ids are ``int64``.

Implementations work on the rows viewed as four ``uint64`` words: Hamming distance does not
depend on how bits are grouped, and four ``popcount``\\ s of an XOR beat 32 byte look-ups.
"""

from __future__ import annotations

import mmap
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

__all__ = [
    "HASH_BITS",
    "HashArray",
    "IdArray",
    "IndexState",
    "PdqIndex",
    "QueryResult",
    "WordArray",
    "check_ids",
    "check_radius",
    "check_rows",
    "hex_to_rows",
    "rows_to_hex",
    "rows_to_words",
    "zeros_unhinted",
]

HASH_BITS = 256

HashArray = npt.NDArray[np.uint8]  # shape (n, 32)
IdArray = npt.NDArray[np.int64]  # shape (n,)
WordArray = npt.NDArray[np.uint64]  # shape (n, 4): a row as four little-endian words


@dataclass(frozen=True)
class QueryResult:
    """Flat result of a batch query: row k says query ``query[k]`` matched ``ids[k]``.

    Rows come sorted by query, then distance, then id, so that results are reproducible.
    """

    query: npt.NDArray[np.int64]
    ids: IdArray
    distances: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> QueryResult:
        return cls(
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        )

    @classmethod
    def sorted_from(
        cls, query: npt.NDArray[np.int64], ids: IdArray, distances: npt.NDArray[np.int32]
    ) -> QueryResult:
        """Build a result in the canonical order (query, distance, id)."""
        order = np.lexsort((ids, distances, query))
        return cls(
            np.ascontiguousarray(query[order], dtype=np.int64),
            np.ascontiguousarray(ids[order], dtype=np.int64),
            np.ascontiguousarray(distances[order], dtype=np.int32),
        )


@dataclass
class IndexState:
    """What an index persists: JSON-safe parameters plus named raw arrays (no pickle)."""

    params: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


def hex_to_rows(hexes: list[str]) -> HashArray:
    """64-hex PDQ strings to an (n, 32) uint8 array."""
    if not hexes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32).copy()


def rows_to_hex(rows: HashArray) -> list[str]:
    return [bytes(r).hex() for r in np.ascontiguousarray(rows, dtype=np.uint8)]


def check_rows(hashes: npt.ArrayLike) -> HashArray:
    """Hash rows as a C-contiguous (n, 32) uint8 array; a wrong shape is a caller's bug."""
    rows = np.ascontiguousarray(hashes)
    if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 32:
        raise ValueError(f"hashes must be an (n, 32) uint8 array, got {rows.dtype} {rows.shape}")
    return rows


def check_ids(ids: npt.ArrayLike, count: int | None = None) -> IdArray:
    """Ids as a 1-D int64 array, optionally of a given length (one id per hash row)."""
    out = np.ascontiguousarray(ids)
    if out.ndim != 1 or (out.size and not np.issubdtype(out.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D integer array, got {out.dtype} {out.shape}")
    out = out.astype(np.int64, copy=False)
    if count is not None and out.shape[0] != count:
        raise ValueError(f"{out.shape[0]} ids for {count} hashes")
    return out


def check_radius(radius: int) -> int:
    """Radius as an int in 0..256: beyond 256 every hash matches, below 0 none can."""
    r = int(radius)
    if r != radius or not 0 <= r <= HASH_BITS:
        raise ValueError(f"radius must be an integer in 0..{HASH_BITS}, got {radius!r}")
    return r


def zeros_unhinted(shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """A zeroed array in anonymous memory that numpy does not mark for huge pages.

    numpy asks the kernel for transparent huge pages on large arrays. Measured here (2-core
    VM, THP in ``madvise`` mode), faulting such pages in cost ~0.7 s per 330 MB, so loading a
    10 M index took 2-3 s instead of 0.4 s, and the random access of the index queries ran no
    faster with them. Small arrays take the ordinary path.
    """
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if nbytes < 1 << 24:
        return np.zeros(shape, dtype=dt)
    # MAP_POPULATE faults every page in one system call (Linux); elsewhere pages come lazily.
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    buf = mmap.mmap(-1, nbytes, flags=flags)
    return np.frombuffer(buf, dtype=dt).reshape(shape)


def rows_to_words(rows: HashArray) -> WordArray:
    """View (n, 32) bytes as (n, 4) little-endian uint64 words (a copy only if needed)."""
    return np.ascontiguousarray(rows).view("<u8").astype(np.uint64, copy=False).reshape(-1, 4)


class PdqIndex(ABC):
    """Exact radius search over 256-bit hashes, with additions and removals in place.

    ``metadata`` is a JSON-safe dict the caller owns (a change watermark, the list names the
    index was built from); it is written by ``save`` and handed back by ``load_index``, so a
    loaded index can be brought up to date from the store instead of rebuilt.
    """

    #: Name written into persisted files; ``persist.load_index`` dispatches on it.
    KIND: ClassVar[str]
    metadata: dict[str, Any]

    @classmethod
    def build(cls, ids: IdArray, hashes: HashArray, **params: Any) -> Self:
        """A new index over ``hashes``; ``params`` go to the constructor."""
        index = cls(**params)
        index.add(ids, hashes)
        return index

    @abstractmethod
    def add(self, ids: IdArray, hashes: HashArray) -> None:
        """Add hashes under the given ids. An id may appear once; re-adding replaces it."""

    @abstractmethod
    def remove(self, ids: IdArray) -> None:
        """Stop returning these ids. Unknown ids are ignored."""

    @abstractmethod
    def query(self, hashes: HashArray, radius: int) -> QueryResult:
        """Every stored (id, distance) within ``radius`` of each query row."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of live (not removed) hashes."""

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes held by the index's arrays (what it costs in memory, roughly)."""

    @abstractmethod
    def to_state(self) -> IndexState:
        """Parameters and arrays that ``from_state`` turns back into an equal index."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: IndexState) -> Self:
        """Rebuild from ``to_state`` output; inconsistent input raises ``IndexFormatError``."""

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically, in a versioned format with a header."""
        # Imported here: persist imports the implementations, which import this module.
        from hashwatch.index.persist import save_index

        save_index(self, path, self.metadata)
