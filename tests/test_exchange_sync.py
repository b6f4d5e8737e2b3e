"""Subscribing: a peer's feed pulled, verified and applied page by page.

The first stories read a tiny publisher built in the test (``tests/test_exchange_client.py``)
so each rule of the subscriber is seen alone: category mapping, revocations, quarantine,
resuming after a failure at any page, nothing applied from a page that fails verification.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import FeedVerificationError
from hashwatch.exchange.base import FetchDelta, RemoteEntry, SignalExchange
from hashwatch.exchange.feed_client import FeedCheckpoint, FeedExchange
from hashwatch.exchange.peers import PeerInfo, Subscription
from hashwatch.exchange.sync import Syncer
from hashwatch.lists.model import EntryStatus
from hashwatch.matching.matcher import Signal
from hashwatch.signals.types import HashType
from hashwatch.store.audit import AuditTrail
from hashwatch.store.models import ENTRIES, EVENTS, HASHES
from tests.inprocess_cli import Run, run  # noqa: F401  (the fixture)
from tests.test_exchange_client import TOKEN, TinyFeed, entry_of, md5_of, pdq_of

Factory = Callable[[PeerInfo, Subscription], SignalExchange[Any]]


@pytest.fixture
def feed(tmp_path: Path) -> TinyFeed:
    from hashwatch.exchange.checkpoint import generate_signing_key

    return TinyFeed(generate_signing_key(tmp_path / "feed.pem", "agency.example"))


def factory(feed: TinyFeed, page_size: int = 100) -> Factory:
    def make(peer: PeerInfo, sub: Subscription) -> SignalExchange[Any]:
        config = peer.config(sub.remote_list)
        config = type(config)(
            config.name,
            config.url,
            config.token,
            config.remote_list,
            {**config.options, "page_size": str(page_size)},
        )
        return FeedExchange(config, transport=feed.transport())

    return make


def subscribe(
    hw: Hashwatch, feed: TinyFeed, *, trust: str = "auto", make: Factory | None = None, **kw: Any
) -> Syncer:
    syncer = Syncer(hw.db, factory=make or factory(feed))
    syncer.subscribe(
        "agency",
        "http://agency.test",
        lists=[("known", "from-agency")],
        token=TOKEN,
        key=str(feed.key.verifier),
        trust=trust,
        **kw,
    )
    return syncer


def entries(hw: Hashwatch, name: str = "from-agency") -> dict[str, Any]:
    with hw.db.read() as conn:
        list_id = hw.lists.get(name, with_counts=False).id
        rows = conn.execute(select(ENTRIES).where(ENTRIES.c.list_id == list_id)).all()
    return {r.key: r for r in rows}


def state(hw: Hashwatch) -> list[tuple[Any, ...]]:
    """Everything the sync wrote to the list that a second run must reproduce."""
    with hw.db.read() as conn:
        rows = conn.execute(
            select(ENTRIES.c.key, ENTRIES.c.status, ENTRIES.c.category, ENTRIES.c.tags)
        ).all()
        hashes = conn.execute(
            select(HASHES.c.hash_type, HASHES.c.value, HASHES.c.active).order_by(
                HASHES.c.hash_type, HASHES.c.value, HASHES.c.active
            )
        ).all()
    return sorted(tuple(r) for r in rows) + [tuple(h) for h in hashes]


def pdq_hits(hw: Hashwatch, n: int) -> int:
    matcher = hw.matcher(["from-agency"])
    [result] = matcher.match_many([[Signal(HashType.PDQ, pdq_of(n))]])
    return len(result.matches)


def test_an_auto_peer_is_applied_with_its_categories_mapped_and_its_provenance(
    hw: Hashwatch, feed: TinyFeed
) -> None:
    feed.add_range(0, 230)
    odd = entry_of(7) | {"scheme": "AGENCY", "category": "Z"}  # another scheme, not mapped
    feed.append("update", f"md5:{md5_of(7)}", odd)
    mapped = entry_of(8) | {"scheme": "AGENCY", "category": "M"}
    feed.append("update", f"md5:{md5_of(8)}", mapped)
    syncer = subscribe(hw, feed, category_map={"M": "2"})
    pages: list[int] = []
    [report] = syncer.sync("agency", on_page=lambda r: pages.append(r.pages))
    assert pages == [1, 2, 3] and report.position == 232
    assert report.added == 230 and report.error is None
    got = entries(hw)
    assert len(got) == 230 and all(e.status == "active" for e in got.values())
    one = got[f"md5:{md5_of(1)}"]
    assert one.category == "1" and one.series == "series-1"
    assert one.extra["peer"] == {
        "name": "agency",
        "key": f"md5:{md5_of(1)}",
        "origin": "agency.example/feeds/known",
        "seq": 2,
        "org": "Agency A",
        "list": "known",
        "version": 1,
        "date": "2026-12-01",
    }
    seven = got[f"md5:{md5_of(7)}"]
    assert seven.category is None and "category-unmapped" in seven.tags
    assert seven.extra["category_raw"] == {"code": "Z", "scheme": "AGENCY"}
    assert got[f"md5:{md5_of(8)}"].category == "2"
    assert pdq_hits(hw, 5) == 1  # the PDQ hash reached the index

    # A revocation revokes (the record and its history kept); listed again, reinstated.
    feed.append("revoke", f"md5:{md5_of(5)}")
    feed.append("dispute", f"md5:{md5_of(6)}", entry_of(6, disputed=True))
    [report] = syncer.sync("agency")
    assert report.revoked == 1 and report.pages == 1
    got = entries(hw)
    assert got[f"md5:{md5_of(5)}"].status == "revoked"
    assert got[f"md5:{md5_of(6)}"].status == "disputed"
    assert pdq_hits(hw, 5) == 0
    with hw.db.read() as conn:
        reasons = conn.execute(
            select(EVENTS.c.reason).where(EVENTS.c.entry_id == got[f"md5:{md5_of(5)}"].id)
        ).scalars()
        assert list(reasons) == ["revoked by peer agency"]
    feed.append("add", f"md5:{md5_of(5)}", entry_of(5))
    syncer.sync("agency")
    assert entries(hw)[f"md5:{md5_of(5)}"].status == "active" and pdq_hits(hw, 5) == 1

    # A local curator's revocation outlives the peer's updates.
    hw.lists.set_status("from-agency", [(HashType.MD5, md5_of(9))], reason="ours")
    feed.append("update", f"md5:{md5_of(9)}", entry_of(9, category="3"))
    syncer.sync("agency")
    assert entries(hw)[f"md5:{md5_of(9)}"].status == "revoked"
    actions = {e.action for e in AuditTrail(hw.db).events(limit=500)}
    assert {"peer.added", "peer.page_applied", "entries.synced"} <= actions


def test_a_review_peer_waits_in_quarantine_until_a_person_decides(
    sqlite_hw: Hashwatch, feed: TinyFeed
) -> None:
    hw = sqlite_hw
    feed.add_range(0, 30)
    syncer = subscribe(hw, feed, trust="review")
    [report] = syncer.sync("agency")
    assert report.quarantined == 30 and report.added == 0
    assert entries(hw) == {} and pdq_hits(hw, 3) == 0  # nothing matchable yet
    waiting = syncer.quarantine("agency")
    assert len(waiting) == 30
    shown = waiting[3].as_dict()
    assert shown["hash_types"] == ["md5", "pdq"] and shown["category"] == "1"
    assert shown["provenance"]["org"] == "Agency A"
    # A revocation applies at once: it drops the waiting entry.
    feed.append("revoke", f"md5:{md5_of(4)}")
    syncer.sync("agency")
    assert len(syncer.quarantine("agency")) == 29
    assert syncer.accept("agency", [f"md5:{md5_of(3)}", f"md5:{md5_of(5)}"])["accepted"] == 2
    assert set(entries(hw)) == {f"md5:{md5_of(3)}", f"md5:{md5_of(5)}"}
    assert pdq_hits(hw, 3) == 1
    assert syncer.reject("agency")["rejected"] == 27
    assert syncer.quarantine("agency") == []
    # A revocation of an accepted entry applies without review.
    feed.append("revoke", f"md5:{md5_of(3)}")
    syncer.sync("agency")
    assert entries(hw)[f"md5:{md5_of(3)}"].status == EntryStatus.REVOKED.value


class _Exploding(Mapping[str, RemoteEntry | None]):
    """A page's updates that fail half-way through being applied (a crash, a power cut)."""

    def __init__(self, inner: Mapping[str, RemoteEntry | None]) -> None:
        self.inner = inner

    def __getitem__(self, key: str) -> RemoteEntry | None:
        return self.inner[key]

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[str]:
        for n, key in enumerate(self.inner):
            if n == len(self.inner) // 2:
                raise RuntimeError("power cut")
            yield key


class _ExplodingCheckpoint:
    """A checkpoint that fails as it is saved: after the page's entries were written."""

    def __init__(self, inner: FeedCheckpoint) -> None:
        self.inner = inner

    def to_json(self) -> dict[str, Any]:
        raise RuntimeError("power cut")

    def is_stale(self) -> bool:
        return False


class Faulty(SignalExchange[Any]):
    """Wraps an exchange; page ``fail_at`` fails while it is being applied."""

    kind = "faulty"

    def __init__(self, inner: SignalExchange[Any], fail_at: int, where: str) -> None:
        super().__init__(inner.config)
        self.inner, self.fail_at, self.where = inner, fail_at, where

    def checkpoint_from_json(self, data: Mapping[str, Any]) -> Any:  # type: ignore[override]
        return self.inner.checkpoint_from_json(data)

    def fetch_iter(self, checkpoint: Any) -> Iterator[FetchDelta[Any]]:
        for n, delta in enumerate(self.inner.fetch_iter(checkpoint), start=1):
            if n != self.fail_at:
                yield delta
            elif self.where == "updates":
                yield FetchDelta(_Exploding(delta.updates), delta.checkpoint)
            else:
                yield FetchDelta(delta.updates, _ExplodingCheckpoint(delta.checkpoint))

    def report_opinion(self, entry: RemoteEntry, opinion: Any, reason: str | None = None) -> None:
        self.inner.report_opinion(entry, opinion, reason)


def _story(feed: TinyFeed) -> None:
    """Adds, changes and revocations across several pages."""
    feed.add_range(0, 120)
    for n in range(0, 120, 7):
        feed.append("revoke", f"md5:{md5_of(n)}")
    for n in range(1, 120, 11):
        feed.append("category", f"md5:{md5_of(n)}", entry_of(n, category="3"))
    feed.add_range(120, 160)
    for n in range(0, 40, 14):
        feed.append("add", f"md5:{md5_of(n)}", entry_of(n, category="2"))


@pytest.mark.parametrize(("fail_at", "where"), [(1, "updates"), (3, "checkpoint"), (5, "updates")])
def test_a_sync_interrupted_at_any_page_resumes_without_loss_or_duplicates(
    tmp_path: Path, feed: TinyFeed, fail_at: int, where: str
) -> None:
    _story(feed)
    calm = Hashwatch(Settings(f"sqlite:///{tmp_path / 'calm.sqlite3'}", tmp_path / "calm"))
    subscribe(calm, feed, make=factory(feed, 40)).sync("agency")
    hit = Hashwatch(Settings(f"sqlite:///{tmp_path / 'hit.sqlite3'}", tmp_path / "hit"))
    plain = factory(feed, 40)
    subscribe(hit, feed, make=plain)
    broken = Syncer(hit.db, factory=lambda p, s: Faulty(plain(p, s), fail_at, where))
    with pytest.raises(RuntimeError, match="power cut"):
        broken.sync("agency")
    before = hit.peers.get("agency").subscriptions[0]
    assert before.pages == fail_at - 1 and before.last_error == "RuntimeError"
    [report] = Syncer(hit.db, factory=plain).sync("agency")
    assert report.error is None and report.position == len(feed.records)
    assert state(hit) == state(calm)
    calm_sub, hit_sub = (h.peers.get("agency").subscriptions[0] for h in (calm, hit))
    assert (hit_sub.upserts, hit_sub.revocations) == (calm_sub.upserts, calm_sub.revocations)
    assert hit_sub.last_error is None
    calm.close()
    hit.close()


def test_a_page_that_fails_verification_applies_nothing_and_is_recorded(
    sqlite_hw: Hashwatch, feed: TinyFeed
) -> None:
    hw = sqlite_hw
    feed.add_range(0, 50)
    syncer = subscribe(hw, feed)
    syncer.sync("agency")
    saved = hw.peers.get("agency").subscriptions[0].checkpoint
    feed.add_range(50, 60)
    feed.rewrite = lambda tail, out: (
        {**out, "records": [r.replace('"1"', '"4"') for r in out["records"]]}
        if tail == "records"
        else out
    )
    with pytest.raises(FeedVerificationError, match="altered"):
        syncer.sync("agency")
    sub = hw.peers.get("agency").subscriptions[0]
    assert sub.checkpoint == saved and len(entries(hw)) == 50
    assert sub.last_error is not None and "altered" in sub.last_error
    failed = AuditTrail(hw.db).events(action_prefix="peer.sync_failed")
    assert failed and failed[0].target == "agency"
    feed.rewrite = None
    [report] = syncer.sync("agency")
    assert report.added == 10 and hw.peers.get("agency").subscriptions[0].last_error is None


def test_one_process_syncs_a_peer_at_a_time(sqlite_hw: Hashwatch, feed: TinyFeed) -> None:
    feed.add_range(0, 5)
    first = subscribe(sqlite_hw, feed)
    assert first._take_lease("agency")
    other = Syncer(sqlite_hw.db, factory=factory(feed), owner="replica-2")
    [report] = other.sync("agency")
    assert report.skipped and report.pages == 0 and entries(sqlite_hw) == {}
    first._release_lease("agency")
    assert other.sync("agency")[0].added == 5


def test_the_peers_commands(run: Run, feed: TinyFeed) -> None:  # noqa: F811
    feed.add_range(0, 12)
    with feed.serve() as url:
        key = str(feed.key.verifier)
        args = ["--token", TOKEN, "--key", key, "--list", "known:from-agency", "--map", "Z=3"]
        added = run("peers", "add", "agency", url, *args, "--trust", "review")
        assert added.returncode == 0, added.stderr
        shown = json.loads(added.stdout)
        assert shown["subscriptions"][0]["origin"] == "agency.example/feeds/known"
        synced = run("peers", "sync", "agency")
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)["quarantined"] == 12
        assert "page 1" in synced.stderr
        waiting = [json.loads(line) for line in run("peers", "quarantine").stdout.splitlines()]
        assert len(waiting) == 12 and waiting[0]["hash_types"] == ["md5", "pdq"]
        accepted = run("peers", "accept", "agency", waiting[0]["key"])
        assert json.loads(accepted.stdout)["accepted"] == 1
        assert json.loads(run("peers", "reject", "agency", "--all").stdout)["rejected"] == 11
        listed = run("peers", "list")
        for out in (added, synced, listed):
            assert TOKEN not in out.stdout + out.stderr
        peer = json.loads(listed.stdout)
        assert peer["token"] == TOKEN[:6] + "…" and peer["trust"] == "review"
        assert peer["subscriptions"][0]["applied_records"] == 12
        feed.status = 401
        refused = run("peers", "sync")
        assert refused.returncode == 5 and "refused our token" in refused.stderr
        assert (
            "refused our token"
            in json.loads(run("peers", "list").stdout)["subscriptions"][0]["last_error"]
        )
        assert run("peers", "remove", "agency").returncode == 0
        assert run("peers", "list").stdout == ""
        assert run("lists", "show", "from-agency").returncode == 0  # our list stays
