"""HMA subscribing to a hashwatch list: python-threatexchange's fetch loop (``fetch_iter`` and
its ``naive_fetch_merge``) run over hashwatch's SignalExchangeAPI against a feed served on
loopback (tests/exchange_peers.FeedPeer, the feed wire format), as HMA runs it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("threatexchange")

from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from hashwatch.errors import FeedVerificationError
from hashwatch.exchange.hma import (
    HashwatchCheckpoint,
    HashwatchCollabConfig,
    HashwatchCredentials,
    HashwatchEntry,
    HashwatchSignalExchangeAPI,
)
from tests.exchange_peers import FeedPeer, md5_of, open_peer, pdq_of

SIGNAL_TYPES = [PdqSignal, VideoMD5Signal]


@pytest.fixture
def feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FeedPeer]:
    yield from open_peer("hashwatch", tmp_path, monkeypatch)


def api_for(feed: FeedPeer) -> HashwatchSignalExchangeAPI:
    collab = HashwatchCollabConfig(
        name="hashwatch-known",
        url=feed.http.url,
        remote_list=feed.list_name,
        key=feed.config.options["key"],
    )
    return HashwatchSignalExchangeAPI.for_collab(collab, HashwatchCredentials("peer-token"))


def sync(
    api: HashwatchSignalExchangeAPI, state: dict[str, HashwatchEntry], cp: Any
) -> HashwatchCheckpoint:
    for delta in api.fetch_iter(SIGNAL_TYPES, cp):
        api.naive_fetch_merge(state, delta.updates)
        cp = delta.checkpoint
    assert isinstance(cp, HashwatchCheckpoint)
    return cp


def test_hma_fetches_a_verified_hashwatch_feed_and_follows_its_changes(feed: FeedPeer) -> None:
    for i in range(5):
        feed.put(i)
    feed.delete(4)
    state: dict[str, HashwatchEntry] = {}
    checkpoint = sync(api_for(feed), state, None)
    assert sorted(state) == sorted(feed.key(i) for i in range(4))
    assert checkpoint.origin == feed.origin and checkpoint.after == 6

    by_type = HashwatchSignalExchangeAPI.naive_convert_to_signal_type(
        SIGNAL_TYPES, api_for(feed).collab, state
    )
    assert sorted(by_type[PdqSignal]) == sorted(pdq_of(i) for i in range(4))
    assert sorted(by_type[VideoMD5Signal]) == sorted(md5_of(i) for i in range(4))
    opinion = by_type[PdqSignal][pdq_of(0)].get_as_aggregate_opinion()
    assert opinion.category.name == "POSITIVE_CLASS" and opinion.tags == {"US:A1"}

    # HMA stores the checkpoint as a plain dataclass; a new process resumes from it.
    saved = HashwatchCheckpoint(**dataclasses.asdict(checkpoint))
    feed.delete(0)
    feed.put(7)
    checkpoint = sync(api_for(feed), state, saved)
    assert sorted(state) == sorted(feed.key(i) for i in (1, 2, 3, 7))
    assert checkpoint.after == 8


def test_hma_never_sees_a_tampered_page(feed: FeedPeer) -> None:
    for i in range(3):
        feed.put(i)

    def tamper(answer: dict[str, Any]) -> None:
        answer["records"] = [r.replace(md5_of(1), md5_of(9)) for r in answer["records"]]

    feed.tamper = tamper
    state: dict[str, HashwatchEntry] = {}
    with pytest.raises(FeedVerificationError):
        sync(api_for(feed), state, None)
    assert feed.key(1) not in state and feed.key(9) not in state
