"""A curator publishes a list as a signed feed; a partner reads it page by page over HTTP and
checks every page exactly as a subscriber does (signature, pinned origin, sequence numbers,
consistency with the last verified checkpoint and of the page with the checkpoint).

Benign stand-in data only: the hashes are digests of generated text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from hashwatch.app import Hashwatch
from hashwatch.exchange import feed_log
from hashwatch.exchange.checkpoint import Checkpoint, SigningKey, VerifierKey
from hashwatch.exchange.feed import SHAREABLE_FIELDS, FeedStore
from hashwatch.exchange.feed_keys import create_publisher_key, default_key_path
from hashwatch.exchange.feed_log import FeedPublisher
from hashwatch.exchange.feed_text import canonical
from hashwatch.exchange.merkle import EMPTY_ROOT, Frontier, leaf_hash, verify_consistency
from hashwatch.lists.model import CategoryScheme, EntryRecord, EntryStatus, VideoFrameHash
from hashwatch.signals.types import HashType
from hashwatch.store.audit import AuditTrail
from hashwatch.store.feed_models import FEED_CHECKPOINTS, FEED_RECORDS
from hashwatch.store.list_import import LIVE
from hashwatch.store.models import ENTRIES
from hashwatch.store.service import KeyStore, Role
from tests.inprocess_cli import Run, run
from tests.serve_helpers import bearer, client, make_key

__all__ = ["run"]

ORG = "agency.example"
ORIGIN = f"{ORG}/feeds/known"


def md5(n: int) -> str:
    return hashlib.md5(f"benign stand-in {n}".encode()).hexdigest()


def sha1(n: int) -> str:
    return hashlib.sha1(f"benign stand-in {n}".encode()).hexdigest()


def pdq(n: int) -> str:
    return hashlib.sha256(f"benign stand-in {n}".encode()).hexdigest()


def record(n: int, **facts: Any) -> EntryRecord:
    facts = {"category": "1", "series": f"series {n % 7}", "comment": "case note", **facts}
    hashes = ((HashType.MD5, md5(n)), (HashType.SHA1, sha1(n)), (HashType.PDQ, pdq(n)))
    return EntryRecord(hashes=hashes, source=f"record {n}", **facts)


def _b64(items: list[str]) -> list[bytes]:
    return [base64.b64decode(x, validate=True) for x in items]


@dataclass
class Subscriber:
    """What a subscriber holds of one feed, and its per-page checks (docs/exchange.md)."""

    key: VerifierKey
    origin: str
    after: int = 0
    frontier: Frontier = field(default_factory=Frontier)
    known: tuple[int, bytes] = (0, EMPTY_ROOT)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def verify(self, page: dict[str, Any]) -> tuple[Frontier, Checkpoint, list[dict[str, Any]]]:
        signed = Checkpoint.verify(page["checkpoint"], self.key, self.origin)
        known_size, known_root = self.known
        assert signed.size >= known_size and page["known_size"] == known_size
        assert verify_consistency(
            known_size, signed.size, known_root, signed.root, _b64(page["known_proof"])
        ), "the checkpoint does not extend the one verified before"
        assert page["after"] == self.after
        frontier = self.frontier.copy()
        records = []
        for n, text in enumerate(page["records"], start=self.after + 1):
            obj = json.loads(text)
            assert obj["origin"] == self.origin and obj["seq"] == n
            frontier.append(leaf_hash(text.encode("utf-8")))
            records.append(obj)
        end = self.after + len(records)
        assert page["more"] == (end < signed.size)
        assert page["next"] == (end if records else None)
        assert verify_consistency(
            end, signed.size, frontier.root(), signed.root, _b64(page["page_proof"])
        ), "the page does not fit the signed checkpoint"
        return frontier, signed, records

    def pull(
        self, c: TestClient, headers: dict[str, str], limit: int = 400
    ) -> list[dict[str, Any]]:
        """Every new record, page by page, each page verified before it is applied."""
        applied: list[dict[str, Any]] = []
        while True:
            params = {"after": self.after, "limit": limit, "known_size": self.known[0]}
            answer = c.get("/v1/feeds/known/records", params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            frontier, signed, records = self.verify(answer.json())
            for obj in records:
                if obj["op"] == "revoke":
                    self.entries.pop(obj["key"], None)
                else:
                    self.entries[obj["key"]] = obj["entry"]
            self.frontier, self.known = frontier, (signed.size, signed.root)
            self.after = frontier.size
            applied += records
            if not answer.json()["more"]:
                return applied


@pytest.fixture
def publisher(hw: Hashwatch) -> Iterator[tuple[Hashwatch, SigningKey]]:
    key = create_publisher_key(default_key_path(hw.settings.data_dir), ORG)
    hw.lists.create("known", scheme=CategoryScheme.US)
    hw.lists.add_records("known", [record(n) for n in range(1, 1201)], source="generated")
    yield hw, key


def test_a_partner_reads_a_published_list_and_every_change_page_by_page(
    publisher: tuple[Hashwatch, SigningKey],
) -> None:
    hw, key = publisher
    feeds = FeedStore(hw.db)
    info = feeds.publish("known", key, hash_types=["md5", "pdq"], fields=["category", "series"])
    assert (info.origin, info.size) == (ORIGIN, 1200)
    partner_token = KeyStore(hw.db).create("partner", Role.PEER, grants={"known": "feed"}).token
    partner = bearer(partner_token)
    curator = make_key(hw, Role.CURATOR, "cur")
    sub = Subscriber(key.verifier, ORIGIN)
    with client(hw, background=False) as c:
        first = sub.pull(c, partner)
        assert [r["op"] for r in first] == ["add"] * 1200
        entry = sub.entries[f"md5:{md5(5)}"]
        # What leaves: the chosen hash types and fields, provenance; never the comment.
        assert [h["type"] for h in entry["hashes"]] == ["md5", "pdq"]
        assert entry["fields"] == {"series": "series 5"} and entry["category"] == "1"
        provenance = {k: entry["provenance"][k] for k in ("org", "list", "version")}
        assert provenance == {"org": ORG, "list": "known", "version": 1}
        assert "case note" not in json.dumps(first) and sha1(5) not in json.dumps(first)

        # Changes through the list's own writers: HTTP and the library, no hook to the feed.
        hw.lists.add_records("known", [record(1, category="2")], source="recategorised")
        hw.lists.add_records("known", [record(2, comment="a new note only")], source="note")
        answer = c.post(
            "/v1/lists/known/entries/dispute",
            headers=curator,
            json={"hashes": [{"type": "md5", "value": md5(3)}], "reason": "contested"},
        )
        assert answer.status_code == 200, answer.text
        answer = c.post(
            "/v1/lists/known/entries/revoke",
            headers=curator,
            json={"hashes": [{"type": "md5", "value": md5(4)}], "reason": "not what it said"},
        )
        assert answer.status_code == 200, answer.text
        changed = record(6, series="series renamed")
        hw.lists.add_records("known", [changed, record(5000)], source="more")
        # Revoked and reinstated between two reads: the partner's copy is already right.
        revoke = {"status": EntryStatus.REVOKED, "reason": "test"}
        hw.lists.set_status("known", [(HashType.MD5, md5(7))], **revoke)  # type: ignore[arg-type]
        hw.lists.set_status("known", [(HashType.MD5, md5(7))], status=EntryStatus.ACTIVE)

        second = sub.pull(c, partner, limit=2)  # small pages: known_proof across checkpoints
        ops = [(r["op"], r["key"]) for r in second]
        assert ops == [
            ("category", f"md5:{md5(1)}"),
            ("dispute", f"md5:{md5(3)}"),
            ("revoke", f"md5:{md5(4)}"),
            ("update", f"md5:{md5(6)}"),
            ("add", f"md5:{md5(5000)}"),
        ]
        hw.lists.set_status("known", [(HashType.MD5, md5(8))], **revoke)  # type: ignore[arg-type]
        assert [r["op"] for r in sub.pull(c, partner)] == ["revoke"]
        hw.lists.set_status("known", [(HashType.MD5, md5(8))], status=EntryStatus.ACTIVE)
        assert [r["op"] for r in sub.pull(c, partner)] == ["add"]
        assert second[2]["reason"] == "revoked" and "entry" not in second[2]
        assert sub.entries[f"md5:{md5(3)}"]["disputed"] is True
        assert f"md5:{md5(4)}" not in sub.entries
        # The subscriber now holds exactly the publisher's live entries.
        live = _live_keys(hw)
        assert set(sub.entries) == live

        # Nothing new: a page holds no records and proves the same checkpoint.
        assert sub.pull(c, partner) == []
        # The consistency endpoint proves the two checkpoints the partner saw.
        proof = c.get(
            "/v1/feeds/known/consistency",
            params={"first": 1200, "second": sub.known[0]},
            headers=partner,
        ).json()["proof"]
        assert verify_consistency(1200, sub.known[0], _root(hw, 1200), sub.known[1], _b64(proof))

        # A page altered in transit fails the subscriber's check.
        page = c.get(
            "/v1/feeds/known/records", params={"after": 0, "limit": 3}, headers=partner
        ).json()
        page["records"][1] = page["records"][1].replace("series 2", "series 3")
        with pytest.raises(AssertionError, match="does not fit"):
            Subscriber(key.verifier, ORIGIN).verify(page)

        # A subscriber ahead of the publisher (a rollback) is told so.
        for params in ({"after": 10_000}, {"known_size": 10_000}):
            ahead = c.get("/v1/feeds/known/records", params=params, headers=partner)
            assert ahead.status_code == 409, ahead.text
    reads = AuditTrail(hw.db).events(action_prefix="feed.read", limit=1000)
    assert reads and {e.actor for e in reads} == {"partner"}
    assert reads[-1].details["after"] == 0 and reads[-1].details["count"] == 400


def _live_keys(hw: Hashwatch) -> set[str]:
    with hw.db.read() as conn:
        rows = conn.execute(select(ENTRIES.c.key).where(ENTRIES.c.status.in_(LIVE)))
        return set(rows.scalars())


def _root(hw: Hashwatch, size: int) -> bytes:
    with hw.db.read() as conn:
        root = conn.execute(
            select(FEED_CHECKPOINTS.c.root).where(FEED_CHECKPOINTS.c.size == size)
        ).scalar_one()
    return bytes(root)


def test_only_a_feed_grant_reads_a_feed(publisher: tuple[Hashwatch, SigningKey]) -> None:
    hw, key = publisher
    hw.lists.create("other")
    FeedStore(hw.db).publish("known", key)
    FeedStore(hw.db).publish("other", key)
    keys = KeyStore(hw.db)
    feed = bearer(keys.create("feed-peer", Role.PEER, grants={"known": "feed"}).token)
    query = bearer(keys.create("query-peer", Role.PEER, grants={"known": "query"}).token)
    other = bearer(keys.create("other-peer", Role.PEER, grants={"other": "feed"}).token)
    bare = bearer(keys.create("bare-peer", Role.PEER).token)
    matcher = make_key(hw, Role.MATCHER, "m")
    admin = make_key(hw, Role.ADMIN, "a")
    paths = ["/v1/feeds/known/checkpoint", "/v1/feeds/known/records"]
    with client(hw, background=False) as c:
        expected = [(feed, 200), (admin, 200), (query, 403), (other, 403), (bare, 403)]
        for headers, status in [*expected, (matcher, 403), ({}, 401)]:
            for path in paths:
                assert c.get(path, headers=headers).status_code == status, (path, headers)
        listed = c.get("/v1/feeds", headers=feed).json()["feeds"]
        assert [(f["list"], f["origin"], f["size"]) for f in listed] == [("known", ORIGIN, 1200)]
        assert c.get("/v1/feeds", headers=query).status_code == 403
        assert {f["list"] for f in c.get("/v1/feeds", headers=admin).json()["feeds"]} == {
            "known",
            "other",
        }
        FeedStore(hw.db).unpublish("known", actor="cur")
        assert c.get("/v1/feeds/known/checkpoint", headers=feed).status_code == 404
        assert c.get("/v1/feeds/nothing/checkpoint", headers=admin).status_code == 404
    actions = [e.action for e in AuditTrail(hw.db).events(action_prefix="feed.pub")]
    assert actions == ["feed.published", "feed.published"]
    assert AuditTrail(hw.db).events(action_prefix="feed.unpublished")[0].actor == "cur"


def test_feeds_are_refused_with_503_without_the_signing_key(sqlite_hw: Hashwatch) -> None:
    admin = make_key(sqlite_hw, Role.ADMIN, "a")
    with client(sqlite_hw, background=False) as c:
        answer = c.get("/v1/feeds/known/records", headers=admin)
    assert answer.status_code == 503
    assert "exchange keygen" in answer.json()["detail"]


def test_two_replicas_catching_up_one_feed_append_one_log(
    publisher: tuple[Hashwatch, SigningKey],
) -> None:
    hw, key = publisher
    FeedStore(hw.db).publish("known", key)
    hw.lists.add_records("known", [record(n) for n in range(2001, 3001)], source="more")
    start = threading.Barrier(2)
    appended: list[int] = []

    def replica() -> None:
        publisher = FeedPublisher(hw.db, key)
        start.wait(timeout=30)
        appended.append(publisher.catch_up("known"))

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(appended) == [0, 1000]
    with hw.db.read() as conn:
        seqs = list(conn.execute(select(FEED_RECORDS.c.seq).order_by(FEED_RECORDS.c.seq)).scalars())
        signed = conn.execute(select(func.count()).select_from(FEED_CHECKPOINTS)).scalar_one()
    assert seqs == list(range(1, 2201)) and signed == 2
    info = FeedStore(hw.db).get("known")
    assert info.size == 2200
    texts = [json.loads(t) for t in FeedStore(hw.db).page(info, 1200, 1000).records]
    assert len({t["key"] for t in texts}) == 1000


def test_a_curator_publishes_from_the_command_line(run: Run, tmp_path: Path) -> None:
    (tmp_path / "known.txt").write_text("".join(f"md5 {md5(n)}\n" for n in range(20)))
    assert run("lists", "import", "known.txt", "--name", "known").returncode == 0
    refused = run("exchange", "publish", "known")
    assert refused.returncode == 5 and "exchange keygen" in refused.stderr
    made = run("exchange", "keygen", "--name", ORG)
    assert made.returncode == 0, made.stderr
    verifier = VerifierKey.parse(made.stdout)
    pem = tmp_path / "data" / "exchange" / "signing-key.pem"
    assert pem.stat().st_mode & 0o077 == 0
    assert run("exchange", "key").stdout == made.stdout
    again = run("exchange", "keygen", "--name", ORG)
    assert again.returncode != 0 and "never overwritten" in again.stderr
    assert run("exchange", "keygen", "--name", "has space", "--key", "k2.pem").returncode == 2

    published = run("exchange", "publish", "known", "--hashes", "md5", "--fields", "category")
    assert published.returncode == 0, published.stderr
    shown = json.loads(published.stdout)
    assert (shown["origin"], shown["size"], shown["fields"]) == (ORIGIN, 20, ["category"])
    assert Checkpoint.verify(shown["checkpoint"], verifier, ORIGIN).size == 20
    bad = run("exchange", "publish", "known", "--fields", "case_path")
    assert bad.returncode == 2 and "cannot be shared" in bad.stderr
    listed = [json.loads(line) for line in run("exchange", "feeds").stdout.splitlines()]
    assert [(f["list"], f["size"], f["published"]) for f in listed] == [("known", 20, True)]
    assert run("exchange", "unpublish", "known").returncode == 0
    assert json.loads(run("exchange", "feeds").stdout)["published"] is False

    # A .pub that belongs to another key is refused rather than handed to peers.
    other = run("exchange", "keygen", "--name", "other.example", "--key", "other.pem")
    assert other.returncode == 0
    (tmp_path / "other.pem.pub").write_text(made.stdout)
    mismatch = run("exchange", "key", "--key", "other.pem")
    assert mismatch.returncode == 5 and "do not belong together" in mismatch.stderr


def test_every_record_is_the_canonical_json_of_itself_whatever_the_entry_holds(
    hw: Hashwatch,
) -> None:
    """Records are written as text directly (not through json.dumps, which cost most of a
    catch-up): the text must still be, byte for byte, the design's canonical JSON, for
    escaped and non-ASCII text, flags, tags and the frame hashes of a video."""
    key = create_publisher_key(default_key_path(hw.settings.data_dir), ORG)
    hw.lists.create("known", scheme=CategoryScheme.US)
    odd = 'série "α" \\ \n\t\u2028 \U0001f600 </script>'
    frames = tuple(
        VideoFrameHash(frame=n, timestamp=n / 3, pdq=pdq(900 + n), quality=100 - n)
        for n in range(3)
    )
    records = [
        record(1, series=odd, tags=("étiquette", 'q"uote', ""), victim_identified=True),
        record(2, series=None, victim_identified=False, comment=odd, date="2024-05-01"),
        record(3, category=None, tags=("a",)),
        EntryRecord(hashes=((HashType.MD5, md5(4)),), category="2", frames=frames, source="v"),
    ]
    hw.lists.add_records("known", records, source="generated")
    hw.lists.set_status("known", [(HashType.MD5, md5(3))], status=EntryStatus.DISPUTED)
    feeds = FeedStore(hw.db)
    info = feeds.publish("known", key, fields=list(SHAREABLE_FIELDS))
    hw.lists.set_status("known", [(HashType.MD5, md5(2))], status=EntryStatus.REVOKED)
    FeedPublisher(hw.db, key).catch_up("known")
    info = feeds.get("known")
    texts = feeds.page(info, 0, 100).records
    assert len(texts) == 5
    for text in texts:
        assert canonical(json.loads(text)) == text
    objs = {(o["key"], o["op"]): o for o in map(json.loads, texts)}
    first = objs[f"md5:{md5(1)}", "add"]["entry"]
    assert first["fields"]["series"] == odd and first["fields"]["victim_identified"] is True
    assert first["fields"]["tags"] == ["étiquette", 'q"uote', ""]
    second = objs[f"md5:{md5(2)}", "add"]["entry"]
    assert second["fields"]["victim_identified"] is False and "tags" not in second["fields"]
    assert objs[f"md5:{md5(3)}", "add"]["entry"]["disputed"] is True
    video = objs[f"md5:{md5(4)}", "add"]["entry"]["hashes"]
    assert [h.get("frame_time") for h in video] == [None, 0.0, 1 / 3, 2 / 3]
    assert objs[f"md5:{md5(2)}", "revoke"]["reason"] == "revoked"


def test_a_catch_up_reads_and_writes_per_batch_by_index_never_per_entry(
    sqlite_hw: Hashwatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost of a catch-up is per batch, not per entry: a fixed number of statements per
    batch, every read a seek or range of an index. (Reading a batch's hashes with the feed's
    hash types in the query made SQLite take the (hash_type, value) index and read every
    hash of those types in the database for each batch.)"""
    hw = sqlite_hw
    key = create_publisher_key(default_key_path(hw.settings.data_dir), ORG)
    hw.lists.create("known", scheme=CategoryScheme.US)
    hw.lists.add_records("known", [record(n) for n in range(1, 301)], source="generated")
    hw.lists.create("other")
    hw.lists.add_records("other", [record(n) for n in range(1000, 1100)], source="generated")
    monkeypatch.setattr(feed_log, "BATCH", 50)
    seen: list[tuple[str, Any, bool]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        seen.append((statement, params, many))

    feeds = FeedStore(hw.db)
    feeds.publish("known", key)
    hw.lists.add_records("known", [record(n, category="2") for n in range(1, 301)], source="re")
    event.listen(hw.db.engine, "before_cursor_execute", capture)
    try:
        assert FeedPublisher(hw.db, key).catch_up("known") == 300
    finally:
        event.remove(hw.db.engine, "before_cursor_execute", capture)
    batches = 300 // 50
    # Per batch: entries, their hashes, their state; records, nodes, changed states.
    assert len(seen) <= 6 * batches + 15, [s for s, _, _ in seen]
    with hw.db.engine.connect() as conn:
        for statement, params, many in seen:
            if many or not statement.lstrip().upper().startswith("SELECT"):
                continue
            plan = " | ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            )
            scans = [p for p in plan.split(" | ") if p.startswith("SCAN ") and "CONSTANT" not in p]
            assert not scans, (statement, plan)
            assert "ix_entry_hashes_lookup" not in plan, (statement, plan)
