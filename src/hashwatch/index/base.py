"""The PDQ index seam: one interface, a linear reference implementation, and the contract.

Every implementation is *exact*: ``query`` returns every stored hash within ``radius``
(Hamming distance, inclusive) of a query, never an approximation. Hashes are 32-byte rows
(``uint8``) in the byte order of their 64-character hex spelling; ids are ``int64``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["HashArray", "IdArray", "PdqIndex", "QueryResult", "hex_to_rows", "rows_to_hex"]

HashArray = npt.NDArray[np.uint8]  # shape (n, 32)
IdArray = npt.NDArray[np.int64]  # shape (n,)


@dataclass(frozen=True)
class QueryResult:
    """Flat result of a batch query: row k says query ``query[k]`` matched ``ids[k]``."""

    query: npt.NDArray[np.int64]
    ids: IdArray
    distances: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def hex_to_rows(hexes: list[str]) -> HashArray:
    """64-hex PDQ strings to an (n, 32) uint8 array."""
    if not hexes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32).copy()


def rows_to_hex(rows: HashArray) -> list[str]:
    return [bytes(r).hex() for r in np.ascontiguousarray(rows, dtype=np.uint8)]


class PdqIndex(ABC):
    """Exact radius search over 256-bit hashes, with additions and removals in place."""

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

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically, in a versioned format with a header."""
