"""Subscribing: a peer's feed pulled, verified and applied page by page.

The first stories read a tiny publisher built in the test (``tests/test_exchange_client.py``)
so each rule of the subscriber is seen alone: category mapping, revocations, quarantine,
resuming after a failure at any page, nothing applied from a page that fails verification.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import FeedVerificationError
from hashwatch.exchange.base import FetchDelta, RemoteEntry, SignalExchange
from hashwatch.exchange.feed_client import FeedCheckpoint, FeedExchange
from hashwatch.exchange.peers import PeerInfo, Subscription
from hashwatch.exchange.sync import Syncer
from hashwatch.lists.model import CategoryScheme, EntryStatus
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


# -- three instances ----------------------------------------------------------------------
# A publishes with the service `hashwatch serve` runs (its app under uvicorn, on a loopback
# socket, in this process); B (PostgreSQL) subscribes with trust auto, C (SQLite) with trust
# review, through a loopback proxy that can alter A's answers.


def _csv(path: Path, numbers: range, category: str) -> Path:
    lines = ["md5,pdq,category"] + [f"{md5_of(n)},{pdq_of(n)},{category}" for n in numbers]
    path.write_text("\n".join(lines) + "\n")
    return path


class Proxy:
    """Forwards to A; ``mode`` decides what reaches the subscriber."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.captured: dict[str, Any] | None = None
        self.liar: TinyFeed | None = None

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, Any]:
        import httpx

        if self.mode == "rewrite" and self.liar is not None:
            url = urlsplit(path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            return self.liar.answer("GET", url.path, query, None)
        response = httpx.get(self.upstream + path, headers=headers, timeout=30)
        data = response.json()
        if response.status_code != 200 or "/records" not in path:
            return response.status_code, data
        if self.captured is None:
            self.captured = json.loads(json.dumps(data))
        if self.mode == "tamper" and data["records"]:
            data["records"][0] = data["records"][0].replace('"category":"1"', '"category":"5"')
        elif self.mode == "replay":
            data = self.captured
        return 200, data

    @contextmanager
    def serve(self) -> Iterator[str]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {"Authorization": self.headers.get("Authorization", "")}
                status, data = proxy.answer(self.path, headers)
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


@contextmanager
def serving(db_url: str, data_dir: Path) -> Iterator[str]:
    """A's service (what `hashwatch serve` runs: its app under uvicorn) on a loopback port,
    with its own connection to A's database."""
    from tests.serve_helpers import serving as serve_app

    served = Hashwatch(Settings(db_url, data_dir))
    try:
        with serve_app(served, sync_interval_s=0) as url:
            yield url
    finally:
        served.close()


def _export(hw: Hashwatch, name: str) -> bytes:
    """The list's text export (every hash of every live entry), entries in key order: an
    export lists entries in the order this database received them, which for a subscriber is
    the feed's order of changes, not the publisher's order of entry ids."""
    out = io.BytesIO()
    hw.lists.export(name, out, "text")
    lines = out.getvalue().splitlines(keepends=True)
    entries = [b"".join(lines[i : i + 2]) for i in range(0, len(lines), 2)]  # md5, pdq
    return b"".join(sorted(entries))


def _categories(hw: Hashwatch, name: str) -> dict[str, str | None]:
    """Each live entry's category, by entry key."""
    live = (EntryStatus.ACTIVE.value, EntryStatus.DISPUTED.value)
    with hw.db.read() as conn:
        list_id = hw.lists.get(name, with_counts=False).id
        rows = conn.execute(
            select(ENTRIES.c.key, ENTRIES.c.category).where(
                ENTRIES.c.list_id == list_id, ENTRIES.c.status.in_(live)
            )
        )
        return {r.key: r.category for r in rows}


def _untouched(hw: Hashwatch) -> tuple[Any, ...]:
    """What a refused page must leave as it was: the list (version, every entry and hash as
    ``state`` reads them) and the subscription's checkpoint."""
    version = hw.lists.get("from-a", with_counts=False).version
    return version, state(hw), hw.peers.get("agency-a").subscriptions[0].checkpoint


def test_three_instances_a_publishes_b_follows_c_catches_up_after_being_offline(
    tmp_path: Path,
    pg_url: str,
    run: Run,  # noqa: F811
) -> None:
    from hashwatch.exchange.feed import FeedStore
    from hashwatch.exchange.feed_keys import create_publisher_key, default_key_path
    from hashwatch.store.service import KeyStore, Role

    a = Hashwatch(Settings(f"sqlite:///{tmp_path / 'a.sqlite3'}", tmp_path / "a"))
    b = Hashwatch(Settings(pg_url, tmp_path / "b"))
    c_url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    c = Hashwatch(Settings(c_url, tmp_path / "c"))
    signing = create_publisher_key(default_key_path(a.settings.data_dir), "agency-a.example")
    a.lists.import_file(
        "known", _csv(tmp_path / "v1.csv", range(0, 100), "1"), scheme=CategoryScheme.US
    )
    FeedStore(a.db).publish("known", signing)
    keys = KeyStore(a.db)
    token_b = keys.create("org-b", Role.PEER, grants={"known": "feed"}).token
    token_c = keys.create("org-c", Role.PEER, grants={"known": "feed"}).token
    verifier = str(signing.verifier)
    with serving(a.settings.database_url, a.settings.data_dir) as url_a:
        proxy = Proxy(url_a)
        with proxy.serve() as url_p:
            syncer_b = Syncer(b.db)
            syncer_b.subscribe(
                "agency-a", url_p, lists=[("known", "from-a")], token=token_b, key=verifier
            )
            assert syncer_b.sync("agency-a")[0].added == 100
            base = ["--db", c_url, "peers"]
            args = ["--token", token_c, "--key", verifier, "--list", "known:from-a"]
            added = run(*base, "add", "agency-a", url_p, *args, "--trust", "review")
            assert added.returncode == 0, added.stderr
            assert run(*base, "sync").returncode == 0
            assert json.loads(run(*base, "accept", "agency-a", "--all").stdout)["accepted"] == 100

            # C is offline while A adds 10,000 entries, then changes 3,000 and withdraws 2,030
            # (a replace import of the list as its source now has it).
            a.lists.import_file(
                "known", _csv(tmp_path / "v2.csv", range(100, 10_100), "1"), mode="append"
            )
            now = [n for n in range(10_100) if not (50 <= n < 80 or 5_000 <= n < 7_000)]
            lines = [f"{md5_of(n)},{pdq_of(n)},{2 if 1_000 <= n < 4_000 else 1}" for n in now]
            (tmp_path / "v3.csv").write_text("md5,pdq,category\n" + "\n".join(lines) + "\n")
            a.lists.import_file("known", tmp_path / "v3.csv")
            [report_b] = syncer_b.sync("agency-a")
            assert report_b.error is None and report_b.revoked == 30
            synced = run(*base, "sync", "agency-a")
            assert synced.returncode == 0, synced.stderr
            assert json.loads(synced.stdout)["quarantined"] > 0
            assert run(*base, "accept", "agency-a", "--all").returncode == 0
            # The same active set on all three, byte for byte in an export.
            expected = _export(a, "known")
            assert expected.count(b"\n") == 2 * 8_070
            assert _export(b, "from-a") == expected
            assert _export(c, "from-a") == expected
            assert _categories(c, "from-a") == _categories(a, "known") == _categories(b, "from-a")

            # An altered page, a replayed page and a rewritten history: refused, nothing applied.
            a.lists.import_file(
                "known", _csv(tmp_path / "v4.csv", range(20_000, 20_005), "1"), mode="append"
            )
            before = _untouched(b)
            for mode, words in (("tamper", "altered"), ("replay", "replayed")):
                proxy.mode = mode
                with pytest.raises(FeedVerificationError, match=words):
                    syncer_b.sync("agency-a")
                assert _untouched(b) == before
                error = b.peers.get("agency-a").subscriptions[0].last_error
                assert error is not None and words in error
            # A rewrites an old record and signs the rewritten tree with its own key.
            records = [
                json.dumps(json.loads(r), sort_keys=True, separators=(",", ":"))
                for r in _all_records(url_a, token_b)
            ]
            records[4] = records[4].replace('"category":"1"', '"category":"3"')
            proxy.liar = TinyFeed(signing, list_name="known", records=records)
            proxy.mode = "rewrite"
            refused = run(*base, "sync", "agency-a")
            assert refused.returncode == 6 and "history was rewritten" in refused.stderr
            with pytest.raises(FeedVerificationError, match="history was rewritten"):
                syncer_b.sync("agency-a")
            assert _untouched(b) == before
            proxy.mode = "pass"
            assert syncer_b.sync("agency-a")[0].added == 5
    for hw in (a, b, c):
        hw.close()


def _all_records(url: str, token: str) -> list[str]:
    import httpx

    out: list[str] = []
    while True:
        page = httpx.get(
            f"{url}/v1/feeds/known/records",
            params={"after": len(out), "limit": 1000},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        out += page["records"]
        if not page["more"]:
            return out


def test_peers_over_http_the_leads_quarantine_page_and_the_background_sync(
    sqlite_hw: Hashwatch, feed: TinyFeed
) -> None:
    from hashwatch.store.service import Role
    from hashwatch.store.users import UserStore
    from hashwatch.web.auth import SESSION_COOKIE
    from tests.serve_helpers import client, make_key

    hw = sqlite_hw
    feed.add_range(0, 6)
    with feed.serve() as url:
        Syncer(hw.db).subscribe(
            "agency",
            url,
            lists=[("known", "from-agency")],
            token=TOKEN,
            key=str(feed.key.verifier),
            trust="review",
        )
        admin = make_key(hw, Role.ADMIN)
        with client(hw, sync_interval_s=0) as http:
            assert http.get("/v1/peers", headers=make_key(hw, Role.MATCHER)).status_code == 403
            [peer] = http.get("/v1/peers", headers=admin).json()
            assert peer["token"] == TOKEN[:6] + "…" and TOKEN not in json.dumps(peer)
            [report] = http.post("/v1/peers/agency/sync", headers=admin).json()
            assert report["quarantined"] == 6
            waiting = http.get("/v1/peers/agency/quarantine", headers=admin).json()
            assert [w["key"] for w in waiting] == [f"md5:{md5_of(n)}" for n in range(6)]
            body = {"keys": [f"md5:{md5_of(0)}"]}
            accepted = http.post("/v1/peers/agency/quarantine/accept", headers=admin, json=body)
            assert accepted.json()["accepted"] == 1
            # A lead decides on the page.
            users = UserStore(hw.db)
            users.add("lena", "lead", "a long lead password")
            session = users.sign_in("lena", "a long lead password")
            http.cookies.set(SESSION_COOKIE, session.token)
            page = http.get("/review/peers/agency/quarantine")
            assert page.status_code == 200 and f"md5:{md5_of(1)}" in page.text
            assert "Agency A" in page.text and "md5, pdq" in page.text
            form = {"csrf_token": "forged", "decision": "accept", "key": f"md5:{md5_of(1)}"}
            refused = http.post("/review/peers/agency/quarantine", data=form)
            assert refused.status_code == 403 and len(entries(hw)) == 1
            form["csrf_token"] = UserStore.csrf_token_of(session.token)
            http.post("/review/peers/agency/quarantine", data=form, follow_redirects=False)
            form["decision"] = "reject-all"
            http.post("/review/peers/agency/quarantine", data=form, follow_redirects=False)
            http.cookies.clear()
            assert http.get("/v1/peers/agency/quarantine", headers=admin).json() == []
            assert set(entries(hw)) == {f"md5:{md5_of(0)}", f"md5:{md5_of(1)}"}
        # serve --sync-interval: the server syncs every peer by itself.
        feed.add_range(6, 9)
        with client(hw, sync_interval_s=0.1):
            deadline = time.monotonic() + 60
            while len(Syncer(hw.db).quarantine("agency")) < 3:
                assert time.monotonic() < deadline, "the background sync did not run"
                time.sleep(0.05)
