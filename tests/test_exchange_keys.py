"""Peer keys: another organisation's key reaches only what its grants allow, list by list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import ConfigError
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import GrantAccess, KeyStore, Role
from hashwatch.store.users import Actor, allowed, may_read_feed
from tests.inprocess_cli import Run, run
from tests.serve_helpers import bearer, client

__all__ = ["run"]


def _lists(run: Run, tmp_path: Path, *names: str) -> None:
    for n, name in enumerate(names):
        (tmp_path / f"{name}.txt").write_text(f"md5 {n:032x}\n")
        made = run("lists", "import", f"{name}.txt", "--name", name)
        assert made.returncode == 0, made.stderr


def test_a_curator_creates_peer_keys_with_feed_or_query_grants(run: Run, tmp_path: Path) -> None:
    _lists(run, tmp_path, "known", "series", "private")
    peer = ("keys", "create", "--role", "peer")
    feed = run(*peer, "--name", "partner.example", "--lists", "known, series")
    assert feed.returncode == 0, feed.stderr
    assert "feed access to known, series" in feed.stderr and feed.stdout.startswith("hw_")
    query = run(*peer, "--name", "platform", "--lists", "known", "--query-only")
    assert query.returncode == 0, query.stderr
    # The existing forms still work.
    assert run("keys", "create", "--role", "matcher", "--name", "m").returncode == 0
    listed = {k["name"]: k for k in map(json.loads, run("keys", "list").stdout.splitlines())}
    assert listed["partner.example"]["role"] == "peer"
    assert listed["partner.example"]["grants"] == {"known": "feed", "series": "feed"}
    assert listed["platform"]["grants"] == {"known": "query"}
    assert listed["m"]["grants"] == {}
    assert "token" not in json.dumps(listed)

    for args, message in [
        (("--role", "peer", "--name", "p2"), "needs --lists"),
        (("--role", "peer", "--name", "p3", "--lists", "nope"), "no hash list named 'nope'"),
        (("--role", "matcher", "--name", "p4", "--lists", "known"), "are for peer keys"),
        (("--role", "curator", "--name", "p5", "--query-only"), "are for peer keys"),
    ]:
        refused = run("keys", "create", *args)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr
    # A refused key leaves nothing behind: no key, no grant.
    names = [json.loads(line)["name"] for line in run("keys", "list").stdout.splitlines()]
    assert names == ["partner.example", "platform", "m"]


def test_grants_are_audited_and_checked_by_the_store(sqlite_hw: Hashwatch) -> None:
    sqlite_hw.lists.create("known")
    keys = KeyStore(sqlite_hw.db)
    new = keys.create("org", Role.PEER, grants={"known": GrantAccess.FEED}, actor="cur")
    assert new.info.grants == {"known": "feed"}
    assert keys.authenticate(new.token) is not None
    assert keys.authenticate(new.token).grants == {"known": "feed"}  # type: ignore[union-attr]
    event = AuditTrail(sqlite_hw.db).events(action_prefix="key.created")[0]
    assert event.details["grants"] == {"known": "feed"} and event.actor == "cur"
    with pytest.raises(ConfigError, match="only a peer key"):
        keys.create("cur2", Role.CURATOR, grants={"known": "feed"})
    with pytest.raises(ValueError):
        keys.create("bad", Role.PEER, grants={"known": "write"})
    # Deleting a list takes its grants with it.
    sqlite_hw.lists.delete("known")
    assert keys.authenticate(new.token).grants == {}  # type: ignore[union-attr]


def test_peer_role_stands_below_the_chain() -> None:
    peer = Actor(1, "org", Role.PEER, grants={"known": "feed", "other": "query"})
    assert allowed(peer, Role.PEER)
    assert not any(allowed(peer, r) for r in (Role.MATCHER, Role.CURATOR, Role.ADMIN))
    assert all(allowed(Actor(2, r.value, r), Role.PEER) for r in Role)
    assert may_read_feed(peer, "known")
    assert not may_read_feed(peer, "other") and not may_read_feed(peer, "unknown")
    assert may_read_feed(Actor(3, "c", Role.CURATOR), "anything")
    assert may_read_feed(Actor(4, "a", Role.ADMIN), "anything")
    assert not may_read_feed(Actor(5, "m", Role.MATCHER), "known")


def test_a_peer_key_matches_its_lists_and_passes_nothing_else(tmp_path: Path) -> None:
    hw = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "d")
    )
    try:
        hw.lists.create("known")
        token = KeyStore(hw.db).create("org", Role.PEER, grants={"known": "feed"}).token
        peer = bearer(token)
        with client(hw, background=False) as c:
            for method, path, body in [
                ("POST", "/v1/hash", None),
                ("GET", "/v1/lists", None),
                ("GET", "/v1/lists/known", None),
                ("POST", "/v1/lists", {"name": "mine"}),
                ("GET", "/v1/keys", None),
                ("GET", "/metrics", None),
            ]:
                answer = c.request(method, path, headers=peer, json=body)
                assert answer.status_code == 403, (path, answer.text)
            # What a grant does allow: matching against the granted list (tests/
            # test_exchange_query.py has the rest of the story).
            signals = {"signals": [{"type": "md5", "value": "0" * 32}]}
            assert c.post("/v1/match", headers=peer, json=signals).status_code == 200
    finally:
        hw.close()
