"""Feedback: subscribers tell the publisher what they think of its entries.

The publisher (agency A) holds list ``agency`` of generated benign pictures standing in for
known material. Its peers (partner organisations B and C) send opinions on entries; two
opinions that disagree dispute the entry; a false positive the curator confirms moves to a
negative list and stops matching. Each test runs against SQLite and the real PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import ConfigError, EntryNotFoundError, ExchangeError, PeerNotFoundError
from hashwatch.exchange.base import Opinion
from hashwatch.exchange.checkpoint import generate_signing_key
from hashwatch.exchange.feed import FeedStore
from hashwatch.exchange.feed_client import FeedExchange
from hashwatch.exchange.feed_keys import create_publisher_key, default_key_path
from hashwatch.exchange.feedback import Feedback
from hashwatch.exchange.peers import PeerInfo
from hashwatch.exchange.sync import Syncer
from hashwatch.lists.model import ListKind
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import KeyStore, Role
from tests.inprocess_cli import Run, run
from tests.media import scene, write_image
from tests.serve_helpers import client, make_key, serving
from tests.test_exchange_client import TOKEN, TinyFeed, md5_of
from tests.test_exchange_sync import factory, subscribe

__all__ = ["run"]  # the fixture


def _pictures(tmp_path: Path, n: int = 3) -> list[Path]:
    return [write_image(tmp_path / "ref" / f"ref-{i}.jpg", scene(40 + i)) for i in range(n)]


def _publish(hw: Hashwatch, tmp_path: Path) -> tuple[list[Path], list[str]]:
    """List ``agency`` with three pictures; returns the files and their entry keys."""
    files = _pictures(tmp_path)
    hw.add_media("agency", files, category="1")
    return files, _keys(files)


def _keys(files: list[Path]) -> list[str]:
    """The entry keys add-media gives the files: their MD5s."""
    return [f"md5:{hashlib.md5(f.read_bytes()).hexdigest()}" for f in files]


def test_opposite_opinions_dispute_the_entry(hw: Hashwatch, tmp_path: Path) -> None:
    _, keys = _publish(hw, tmp_path)
    ops = hw.opinions
    assert ops.record("agency", keys[0], "org-b", "seen").entry_status == "active"
    assert ops.record("agency", keys[0], "org-b", Opinion.CONFIRMED).entry_status == "active"
    assert ops.record("agency", keys[1], "org-c", "confirmed").entry_status == "active"

    # C calls the first entry a false positive while B confirms it: pytx's rule disputes it.
    receipt = ops.record("agency", keys[0], "org-c", "false_positive", "a holiday photo")
    assert (receipt.key, receipt.opinion, receipt.entry_status) == (
        keys[0],
        Opinion.FALSE_POSITIVE,
        "disputed",
    )
    entry = ops.entry("agency", keys[0])
    assert entry.status == "disputed" and entry.contested
    assert entry.counts == {"confirmed": 1, "false_positive": 1, "disputed": 0, "seen": 0}
    # The dispute went through the list's status change: an event with who and why.
    (event,) = hw.lists.events("agency", entry.entry_id)
    assert (event["old_status"], event["new_status"], event["actor"]) == (
        "active",
        "disputed",
        "org-c",
    )
    assert "confirmed by org-b" in event["reason"] and "org-c" in event["reason"]

    # B's newer opinion replaced its "seen"; the history keeps both.
    history = ops.entry("agency", keys[0], history=True).opinions
    assert [(o.peer, o.opinion.value, o.current) for o in history] == [
        ("org-b", "seen", False),
        ("org-b", "confirmed", True),
        ("org-c", "false_positive", True),
    ]

    # Per peer: only that peer's opinions, on the entries it spoke of.
    by_c = ops.entries("agency", peer="org-c")
    assert [(e.key, [o.opinion.value for o in e.opinions]) for e in by_c] == [
        (keys[0], ["false_positive"]),
        (keys[1], ["confirmed"]),
    ]
    assert [e.key for e in ops.entries("agency")] == keys[:2]
    summary = ops.summary("agency")
    assert summary["entries"] == 2 and summary["contested"] == 1
    assert summary["opinions"] == {"confirmed": 2, "false_positive": 1, "disputed": 0, "seen": 0}
    assert summary["peers"] == {
        "org-b": {"confirmed": 1},
        "org-c": {"confirmed": 1, "false_positive": 1},
    }

    # One peer saying "disputed" is enough on its own.
    assert ops.record("agency", keys[2], "org-b", "disputed", "category").entry_status == (
        "disputed"
    )

    # Audit: every opinion and the dispute, naming entries by id, never by hash.
    trail = AuditTrail(hw.db).events(target="agency")
    actions = [e.action for e in trail]
    assert actions.count("entries.opinion") == 5 and actions.count("entries.disputed") == 2
    for e in trail:
        assert not any(k.split(":", 1)[1] in str(e.details) for k in keys)


def test_opinions_that_cannot_be_taken(hw: Hashwatch, tmp_path: Path) -> None:
    _, keys = _publish(hw, tmp_path)
    with pytest.raises(ConfigError, match="needs a reason"):
        hw.opinions.record("agency", keys[0], "org-b", "false_positive")
    with pytest.raises(ConfigError, match="an opinion is one of"):
        hw.opinions.record("agency", keys[0], "org-b", "great")
    unknown = "md5:" + "0" * 32
    with pytest.raises(EntryNotFoundError) as caught:
        hw.opinions.record("agency", unknown, "org-b", "seen")
    assert "0" * 32 not in str(caught.value)  # a key is a hash: never in a message
    # A key is read as the list writes it (type and hex case).
    assert hw.opinions.record("agency", keys[0].upper(), "org-b", "seen").key == keys[0]
    assert hw.opinions.entries("agency", peer="nobody") == []


def test_false_positive_moved_to_a_negative_list_stops_matching(
    hw: Hashwatch, tmp_path: Path
) -> None:
    files, keys = _publish(hw, tmp_path)
    hw.add_media("partner", [files[0]], category="1")  # a second list holds it too

    def lists_matched() -> tuple[list[tuple[str, str]], list[str]]:
        (matched,) = hw.match_paths([files[0]], hw.matcher())
        found = sorted({(m.list, m.kind) for m in matched.result.matches})
        return found, sorted({m.list for m in matched.result.suppressed})

    assert lists_matched() == ([("agency", "known"), ("partner", "known")], [])

    with pytest.raises(ConfigError, match="no peer calls entry"):
        hw.opinions.move_to_negative("agency", keys[0], "agency-fp")
    hw.opinions.record("agency", keys[0], "org-b", "false_positive", "a holiday photo")
    hw.opinions.record("agency", keys[0], "org-c", "false_positive", "landscape")
    with pytest.raises(ConfigError, match="another list"):
        hw.opinions.move_to_negative("agency", keys[0], "agency")
    with pytest.raises(ConfigError, match="not negative"):
        hw.opinions.move_to_negative("agency", keys[0], "partner")

    move = hw.opinions.move_to_negative("agency", keys[0], "agency-fp", actor="curator-a")
    assert (move.status, move.created_list, move.peers) == ("revoked", True, ("org-b", "org-c"))
    neg = hw.lists.get("agency-fp")
    assert neg.kind is ListKind.NEGATIVE and neg.counts == {"active": 1}
    (revoke,) = hw.lists.events("agency", move.entry_id)
    assert revoke["new_status"] == "revoked" and "org-b, org-c" in revoke["reason"]

    # The media no longer alerts: the revoked entry is gone, the partner's match suppressed.
    assert lists_matched() == ([("agency-fp", "negative")], ["partner"])
    assert hw.opinions.entry("agency", keys[0]).status == "revoked"

    exported = tmp_path / "fp.csv"
    hw.lists.export("agency-fp", exported, "csv")
    assert keys[0].split(":", 1)[1] in exported.read_text()
    trail = AuditTrail(hw.db)
    assert [e.action for e in trail.events(target="agency-fp", limit=2)] == [
        "list.exported",
        "entries.added",
    ]
    added = trail.events(target="agency-fp", action_prefix="entries.added")[0]
    assert added.actor == "curator-a" and added.details["peers"] == ["org-b", "org-c"]
    assert trail.events(target="agency", limit=1)[0].details["moved_to"] == "agency-fp"

    # Again: nothing left to change.
    again = hw.opinions.move_to_negative("agency", keys[0], "agency-fp")
    assert not again.changed and hw.lists.get("agency-fp").version == neg.version


def test_curator_reads_opinions_and_moves_a_false_positive_from_the_cli(
    run: Run, tmp_path: Path
) -> None:
    files = _pictures(tmp_path)
    assert run("lists", "add-media", "agency", *map(str, files), "--category", "1").returncode == 0
    assert run("lists", "add-media", "partner", str(files[0])).returncode == 0
    hw = Hashwatch(Settings(f"sqlite:///{tmp_path / 'hw.sqlite3'}", tmp_path / "data"))
    keys = _keys(files)
    hw.opinions.record("agency", keys[0], "org-b", "confirmed")
    hw.opinions.record("agency", keys[0], "org-c", "false_positive", "a holiday photo")
    hw.opinions.record("agency", keys[1], "org-c", "seen")
    hw.close()

    shown = run("lists", "show", "agency", "--opinions")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "disputed (contested)" in text and "org-c: false_positive (a holiday photo)" in text
    assert "2 entries of agency have opinions, 1 contested" in shown.stderr
    by_c = run("lists", "show", "agency", "--opinions", "--peer", "org-c", "--json")
    rows = [json.loads(line) for line in by_c.stdout.splitlines()]
    assert [(r["key"], [o["peer"] for o in r["opinions"]]) for r in rows] == [
        (keys[0], ["org-c"]),
        (keys[1], ["org-c"]),
    ]
    assert run("lists", "show", "--opinions").returncode == 2  # which list?

    refused = run("lists", "move-negative", "agency", keys[1], "--to", "agency-fp")
    assert refused.returncode == 2 and "no peer calls entry" in refused.stderr
    moved = run("lists", "move-negative", "agency", keys[0], "--to", "agency-fp")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["peers"] == ["org-c"]
    (answer,) = [json.loads(line) for line in run("match", str(files[0])).stdout.splitlines()]
    assert {(m["list"], m["kind"]) for m in answer["matches"]} == {("agency-fp", "negative")}
    assert {m["list"] for m in answer["suppressed"]} == {"partner"}


def test_peers_send_opinions_over_http_and_see_only_their_own(
    hw: Hashwatch, tmp_path: Path
) -> None:
    _, keys = _publish(hw, tmp_path)
    hw.lists.create("other")
    org_b = make_key(hw, Role.PEER, "org-b", grants={"agency": "feed"})
    org_c = make_key(hw, Role.PEER, "org-c", grants={"agency": "feed"})
    query_only = make_key(hw, Role.PEER, "org-q", grants={"agency": "query"})
    elsewhere = make_key(hw, Role.PEER, "org-d", grants={"other": "feed"})
    curator = make_key(hw, Role.CURATOR, "curator-a")
    matcher = make_key(hw, Role.MATCHER, "platform")
    url = "/v1/feeds/agency/opinions"
    with client(hw) as http:
        sent = http.post(url, json={"key": keys[0], "opinion": "confirmed"}, headers=org_b)
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"key": keys[0], "opinion": "confirmed", "entry_status": "active"}
        body = {"key": keys[0], "opinion": "false_positive", "reason": "a holiday photo"}
        answer = http.post(url, json=body, headers=org_c)
        # C learns the entry is now disputed, never that B confirmed it.
        assert answer.json() == {
            "key": keys[0],
            "opinion": "false_positive",
            "entry_status": "disputed",
        }
        assert "org-b" not in answer.text

        seen = {"key": keys[1], "opinion": "seen"}
        for refused in (query_only, elsewhere, matcher):
            assert http.post(url, json=seen, headers=refused).status_code == 403
        assert http.post(url, json=seen).status_code == 401
        unknown = http.post(url, json={"key": "md5:" + "0" * 32, "opinion": "seen"}, headers=org_b)
        assert unknown.status_code == 404 and "0" * 32 not in unknown.text
        no_reason = http.post(
            url, json={"key": keys[1], "opinion": "false_positive"}, headers=org_b
        )
        assert no_reason.status_code == 422
        assert http.post(url, json={**seen, "opinion": "great"}, headers=org_b).status_code == 422
        assert http.post(url, json=seen, headers=curator).status_code == 200  # a curator may

        listed = http.get("/v1/lists/agency/opinions", headers=curator).json()
        assert listed["summary"]["contested"] == 1 and listed["next"] is None
        first = listed["entries"][0]
        assert (first["key"], first["status"], first["counts"]["confirmed"]) == (
            keys[0],
            "disputed",
            1,
        )
        assert [o["peer"] for o in first["opinions"]] == ["org-b", "org-c"]
        by_b = http.get("/v1/lists/agency/opinions", params={"peer": "org-b"}, headers=curator)
        assert [[o["peer"] for o in e["opinions"]] for e in by_b.json()["entries"]] == [["org-b"]]
        one = http.get("/v1/lists/agency/opinions", params={"key": keys[1]}, headers=curator)
        assert [o["peer"] for o in one.json()["entries"][0]["opinions"]] == ["curator-a"]
        assert http.get("/v1/lists/agency/opinions", headers=org_b).status_code == 403

        move = {"key": keys[0], "to": "agency-fp"}
        assert http.post(
            "/v1/lists/agency/move-negative", json=move, headers=org_b
        ).status_code == (403)
        moved = http.post("/v1/lists/agency/move-negative", json=move, headers=curator)
        assert moved.status_code == 200, moved.text
        assert moved.json()["peers"] == ["org-c"] and moved.json()["status"] == "revoked"
    assert hw.lists.get("agency-fp").kind is ListKind.NEGATIVE


# -- the subscriber's side -----------------------------------------------------------------


def test_a_subscriber_tells_the_peer_what_it_thinks_and_keeps_what_it_sent(
    hw: Hashwatch, tmp_path: Path
) -> None:
    feed = TinyFeed(generate_signing_key(tmp_path / "feed.pem", "agency.example"))
    feed.add_range(0, 4)
    subscribe(hw, feed).sync("agency")
    review = TinyFeed(generate_signing_key(tmp_path / "other.pem", "other.example"))
    review.add_range(10, 12)
    held = Syncer(hw.db, factory=factory(review))
    held.subscribe(
        "other",
        "http://other.test",
        lists=[("known", "from-other")],
        token=TOKEN,
        key=str(review.key.verifier),
        trust="review",
    )
    held.sync("other")
    feeds = {"agency": feed, "other": review}

    def reach(peer: PeerInfo, remote_list: str) -> FeedExchange:
        return FeedExchange(peer.config(remote_list), transport=feeds[peer.name].transport())

    feedback = Feedback(hw.db, factory=reach)
    key = f"md5:{md5_of(1)}"
    sent = feedback.send("agency", key.upper(), "false_positive", "a holiday photo", actor="ana")
    assert feed.opinions == [{"key": key, "opinion": "false_positive", "reason": "a holiday photo"}]
    assert (sent.local_list, sent.remote_list, sent.entry_id is not None) == (
        "from-agency",
        "known",
        True,
    )
    # An entry still in quarantine can be judged too (a reviewer saw it is not what it says).
    waiting = feedback.send("other", f"md5:{md5_of(10)}", Opinion.DISPUTED, "category 3, not 1")
    assert waiting.entry_id is None and review.opinions[0]["opinion"] == "disputed"

    with pytest.raises(EntryNotFoundError, match="no entry from peer 'agency'"):
        feedback.send("agency", f"md5:{md5_of(10)}", "seen")  # the other peer's entry
    with pytest.raises(PeerNotFoundError):
        feedback.send("nobody", key, "seen")
    with pytest.raises(ConfigError, match="needs a reason"):
        feedback.send("agency", key, "false_positive", "  ")
    feed.status = 403  # the publisher no longer takes our key
    with pytest.raises(ExchangeError, match="403"):
        feedback.send("agency", key, "confirmed")
    assert len(feed.opinions) == 1

    trail = AuditTrail(hw.db).events(action_prefix="peer.opinion")
    assert [(e.action, e.target) for e in trail] == [
        ("peer.opinion_failed", "agency"),
        ("peer.opinion_sent", "other"),
        ("peer.opinion_sent", "agency"),
    ]
    assert trail[-1].actor == "ana" and trail[-1].details["reason"] == "a holiday photo"
    assert all(md5_of(1) not in str(e.details) for e in trail)


# -- the whole story: a publisher and two subscribers on loopback --------------------------


def test_two_subscribers_disagree_and_the_feed_publishes_the_dispute(
    db_url: str, tmp_path: Path, run: Run
) -> None:
    publisher = Hashwatch(Settings(db_url, tmp_path / "publisher"))
    signing = create_publisher_key(default_key_path(publisher.settings.data_dir), "agency.example")
    files, keys = _publish(publisher, tmp_path)
    FeedStore(publisher.db).publish("agency", signing)
    grant = {"agency": "feed"}
    token_b = KeyStore(publisher.db).create("org-b", Role.PEER, grants=grant).token
    token_c = KeyStore(publisher.db).create("org-c", Role.PEER, grants=grant).token
    c = Hashwatch(Settings(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path / "c"))
    verifier = str(signing.verifier)
    try:
        with serving(publisher) as url:
            # B subscribes from the command line (trust auto), C in the library (review).
            subscribed = run(
                "peers",
                "add",
                "agency-a",
                url,
                "--list",
                "agency:from-a",
                "--token",
                token_b,
                "--key",
                verifier,
                "--trust",
                "auto",
            )
            assert subscribed.returncode == 0, subscribed.stderr
            assert run("peers", "sync", "agency-a").returncode == 0
            syncer = Syncer(c.db)
            syncer.subscribe(
                "agency-a",
                url,
                lists=[("agency", "from-a")],
                token=token_c,
                key=verifier,
                trust="review",
            )
            syncer.sync("agency-a")

            Feedback(c.db).send("agency-a", keys[0], "confirmed")  # from C's quarantine
            assert publisher.opinions.entry("agency", keys[0]).status == "active"
            said = run(
                "peers",
                "opinion",
                "agency-a",
                keys[0],
                "--false-positive",
                "--reason",
                "a holiday photo",
            )
            assert said.returncode == 0, said.stderr
            assert json.loads(said.stdout)["local_list"] == "from-a"
            entry = publisher.opinions.entry("agency", keys[0])
            assert (entry.status, sorted(o.peer for o in entry.opinions)) == (
                "disputed",
                ["org-b", "org-c"],
            )
            missing = run("peers", "opinion", "agency-a", "md5:" + "0" * 32, "--seen")
            assert missing.returncode == 4 and "0" * 32 not in missing.stderr

            # The feed says so; B's next sync marks its own copy disputed.
            assert run("peers", "sync", "agency-a").returncode == 0
            feeds = FeedStore(publisher.db)
            page = feeds.page(feeds.get("agency"), after=0, limit=100)
            ops = [(r["op"], r["key"]) for r in map(json.loads, page.records)]
            assert ops[-1] == ("dispute", keys[0]) and ops.count(("dispute", keys[0])) == 1
        b = Hashwatch(Settings(f"sqlite:///{tmp_path / 'hw.sqlite3'}", tmp_path / "data"))
        try:
            (match,) = b.match_paths([files[0]], b.matcher(["from-a"]))
            assert {m.entry_status for m in match.result.matches} == {"disputed"}
        finally:
            b.close()
    finally:
        c.close()
        publisher.close()
