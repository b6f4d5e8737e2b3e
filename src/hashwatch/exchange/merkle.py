"""The Merkle tree of an append-only feed (RFC 6962 / RFC 9162, section 2.1).

A feed is a log of records; leaf ``i`` is ``SHA-256(0x00 || record i)`` and an inner node is
``SHA-256(0x01 || left || right)``, the left subtree always the largest power of two below the
size. A publisher signs the root of each size it reaches (a checkpoint); a subscriber that holds
the first ``m`` records checks that a signed tree of size ``n`` extends them with a consistency
proof of ``log2(n)`` hashes, so a publisher cannot rewrite or drop history, and a page cannot be
reordered, truncated or altered, without the check failing.

The publisher keeps every *perfect* subtree hash (a node whose range is an aligned power of
two): any root or proof is then a few dozen of them. The functions here take a ``perfect``
callable ``(level, index) -> hash`` for those nodes; :func:`needed_nodes` says in advance which
ones a computation reads, so a database-backed caller loads them in one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "PerfectNode",
    "PerfectNodes",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "needed_nodes",
    "node_hash",
    "range_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index): the hash of leaves [index * 2**level, (index + 1) * 2**level).
PerfectNode = tuple[int, int]
PerfectNodes = Callable[[int, int], bytes]


def leaf_hash(record: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(start: int, end: int, perfect: PerfectNodes) -> bytes:
    """MTH of leaves ``[start, end)``, where ``start`` is aligned as every range of a proof is."""
    size = end - start
    if size <= 0:
        raise ValueError("an empty range has no hash")
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return perfect(level, start >> level)
    k = _split(size)
    return node_hash(range_hash(start, start + k, perfect), range_hash(start + k, end, perfect))


def root_of(size: int, perfect: PerfectNodes) -> bytes:
    """The root of the tree of the first ``size`` leaves."""
    return EMPTY_ROOT if size == 0 else range_hash(0, size, perfect)


def inclusion_proof(index: int, size: int, perfect: PerfectNodes) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 6962 PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(range_hash(start + k, end, perfect))
            end = start + k
        else:
            path.append(range_hash(start, start + k, perfect))
            start += k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, perfect: PerfectNodes) -> list[bytes]:
    """The proof that the tree of ``second`` leaves extends the one of ``first`` (RFC 6962
    SUBPROOF); empty when ``first`` is 0 or equal to ``second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    start, end, m, whole = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                proof.append(range_hash(start, end, perfect))
            break
        k = _split(n)
        if m <= k:
            proof.append(range_hash(start + k, end, perfect))
            end = start + k
        else:
            proof.append(range_hash(start, start + k, perfect))
            start += k
            m -= k
            whole = False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` with ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether the tree of ``second`` leaves with ``second_root`` extends the tree of ``first``
    leaves with ``first_root`` (RFC 9162, 2.1.4.2)."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def needed_nodes(compute: Callable[[PerfectNodes], object]) -> set[PerfectNode]:
    """The perfect nodes ``compute`` reads, found by a dry run, so they can be loaded at once.

    Example: ``needed_nodes(lambda p: consistency_proof(m, n, p))``."""
    seen: set[PerfectNode] = set()

    def record(level: int, index: int) -> bytes:
        seen.add((level, index))
        return bytes(32)

    compute(record)
    return seen


@dataclass
class Frontier:
    """The right edge of a tree: one perfect subtree hash per set bit of its size, largest
    (leftmost) first. Enough to append leaves and compute the root without the rest of the tree;
    a subscriber keeps one per feed (about 20 hashes at a million records)."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns every perfect node it completes as (level, index, hash)."""
        index = self.size
        made = [(0, index, leaf)]
        node, level = leaf, 0
        self.size += 1
        # A subtree of 2**level leaves closes each time the new size is divisible by it.
        while (self.size >> level) & 1 == 0:
            left = self.hashes.pop()
            node = node_hash(left, node)
            level += 1
            made.append((level, (self.size >> level) - 1, node))
        self.hashes.append(node)
        return made

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.hashes))

    def check(self) -> None:
        """Raise ValueError when the hashes cannot be the frontier of ``size`` leaves."""
        if len(self.hashes) != bin(self.size).count("1") or any(len(h) != 32 for h in self.hashes):
            raise ValueError(f"not the frontier of a tree of {self.size} leaves")
