"""The feed's Merkle tree against a from-the-definition RFC 6962 implementation."""

from __future__ import annotations

import hashlib

import pytest

from hashwatch.exchange.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    needed_nodes,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH, recursively, straight from the definition."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def tree(n: int) -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    leaves = [leaf_hash(f"record {i}".encode()) for i in range(n)]
    frontier = Frontier()
    nodes: dict[tuple[int, int], bytes] = {}
    for leaf in leaves:
        for level, index, h in frontier.append(leaf):
            nodes[(level, index)] = h
    return leaves, nodes


def test_roots_match_the_definition_at_every_size() -> None:
    leaves, nodes = tree(70)
    frontier = Frontier()
    assert frontier.root() == EMPTY_ROOT
    for n in range(1, 71):
        frontier.append(leaves[n - 1])
        frontier.check()
        expected = mth(leaves[:n])
        assert frontier.root() == expected
        assert root_of(n, lambda level, index: nodes[(level, index)]) == expected


def test_every_inclusion_proof_verifies_and_a_wrong_leaf_does_not() -> None:
    leaves, nodes = tree(37)
    for n in range(1, 38):
        root = mth(leaves[:n])
        for i in range(n):
            proof = inclusion_proof(i, n, lambda level, index: nodes[(level, index)])
            assert verify_inclusion(leaves[i], i, n, proof, root)
            assert not verify_inclusion(leaf_hash(b"other"), i, n, proof, root)
            if i + 1 < n:
                assert not verify_inclusion(leaves[i], i + 1, n, proof, root)


def test_every_consistency_proof_verifies_and_rewritten_history_does_not() -> None:
    leaves, nodes = tree(40)
    rewritten = list(leaves)
    rewritten[5] = leaf_hash(b"changed")
    for second in range(1, 41):
        for first in range(0, second + 1):
            proof = consistency_proof(first, second, lambda level, index: nodes[(level, index)])
            assert verify_consistency(
                first, second, mth(leaves[:first]), mth(leaves[:second]), proof
            )
            if first > 5:
                assert not verify_consistency(
                    first, second, mth(rewritten[:first]), mth(leaves[:second]), proof
                )
            if 0 < first < second:
                assert not verify_consistency(
                    first, second, mth(leaves[:first]), mth(leaves[:second]), proof[:-1]
                )


def test_needed_nodes_are_few_and_suffice() -> None:
    leaves, nodes = tree(1000)
    want = needed_nodes(lambda p: consistency_proof(333, 1000, p))
    assert len(want) < 40
    loaded = {key: nodes[key] for key in want}
    proof = consistency_proof(333, 1000, lambda level, index: loaded[(level, index)])
    assert verify_consistency(333, 1000, mth(leaves[:333]), mth(leaves[:1000]), proof)


@pytest.mark.parametrize(("size", "count"), [(1, 0), (3, 1), (4, 2), (64, 0)])
def test_a_wrong_frontier_is_refused(size: int, count: int) -> None:
    with pytest.raises(ValueError):
        Frontier(size, [bytes(32)] * count).check()
