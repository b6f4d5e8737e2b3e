"""The one contract every exchange kind passes (docs/exchange.md): against a loopback peer
of its kind, a fetch from nothing yields the peer's entries; a checkpoint saved as JSON
resumes with only the changes made after it, deletions as ``None``; a fetch with nothing new
yields no change; and an opinion reaches the peer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hashwatch.exchange.base import (
    FetchDelta,
    Opinion,
    RemoteEntry,
    exchange_kinds,
    exchange_of,
)
from tests.exchange_peers import PEERS, open_peer


def drain(pages: Iterable[FetchDelta[Any]]) -> tuple[list[tuple[str, RemoteEntry | None]], Any]:
    """Every update in order, and the last checkpoint (None when no page came)."""
    updates: list[tuple[str, RemoteEntry | None]] = []
    checkpoint = None
    for page in pages:
        updates.extend(page.updates.items())
        checkpoint = page.checkpoint
    return updates, checkpoint


def hashes(entry: RemoteEntry | None) -> set[tuple[str, str]]:
    assert entry is not None
    return {(h.hash_type, h.value) for h in entry.hashes}


@pytest.fixture(params=sorted(PEERS))
def peer(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    yield from open_peer(request.param, tmp_path, monkeypatch)


def test_every_registered_kind_has_a_loopback_peer() -> None:
    assert set(exchange_kinds()) == set(PEERS)


def test_exchange_contract(peer: Any) -> None:
    exchange_cls = exchange_of(peer.kind)
    first = [peer.put(i) for i in range(3)]

    updates, checkpoint = drain(exchange_cls(peer.config).fetch_iter(None))
    got = dict(updates)
    assert set(got) == set(first)
    for i, key in enumerate(first):
        entry = got[key]
        assert entry is not None and entry.key == key
        assert hashes(entry) == peer.hashes(i)
    assert checkpoint is not None and not checkpoint.is_stale()
    saved = json.loads(json.dumps(checkpoint.to_json()))

    added = peer.put(3)
    deleted = peer.delete(0)
    exchange = exchange_cls(peer.config)
    resumed = exchange_cls.checkpoint_from_json(saved)
    later, checkpoint = drain(exchange.fetch_iter(resumed))
    assert sorted(key for key, _ in later) == sorted([added, deleted])
    assert dict(later)[deleted] is None
    assert hashes(dict(later)[added]) == peer.hashes(3)

    nothing, _ = drain(exchange.fetch_iter(checkpoint))
    assert nothing == []

    entry = got[first[1]]
    assert entry is not None
    exchange.report_opinion(entry, Opinion.CONFIRMED)
    assert (first[1], "confirmed") in peer.opinions
