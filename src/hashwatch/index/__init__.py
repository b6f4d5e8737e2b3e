"""Exact PDQ near-duplicate search: the ``PdqIndex`` seam and its implementations.

``LinearPdqIndex`` is the brute-force reference; ``MihPdqIndex`` the fast one (multi-index
hashing, still exact). Both save to and load from one versioned file format
(:func:`save_index` / :func:`load_index`). This package depends on numpy, numba and
``hashwatch.errors`` only, so the store, the scanner and the web layer can all use it.
"""

from hashwatch.index.base import (
    HashArray,
    IdArray,
    IndexState,
    PdqIndex,
    QueryResult,
    hex_to_rows,
    rows_to_hex,
)
from hashwatch.index.linear import LinearPdqIndex
from hashwatch.index.mih import MihPdqIndex, MihStats
from hashwatch.index.persist import FORMAT_VERSION, load_index, read_header, save_index

__all__ = [
    "FORMAT_VERSION",
    "HashArray",
    "IdArray",
    "IndexState",
    "LinearPdqIndex",
    "MihPdqIndex",
    "MihStats",
    "PdqIndex",
    "QueryResult",
    "hex_to_rows",
    "load_index",
    "read_header",
    "rows_to_hex",
    "save_index",
]
