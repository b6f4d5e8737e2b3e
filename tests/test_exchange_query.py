"""Query-only sharing: another organisation's peer key matches against the lists it was granted
and nothing else — never a hash value back, 403 on every other route — at a rate of its own,
every query logged by the publisher; a peer that scans hash space or walks toward a listed
hash is flagged and throttled until an admin clears it; the asking side (``hashwatch peers
query``) sends only hashes and keeps what it asked and got. All media and hashes are generated
and benign."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import Any

import pytest

from hashwatch.app import Hashwatch
from hashwatch.exchange.probing import ProbeSettings, ProbeWatch, pdq_weight
from hashwatch.lists.model import EntryRecord, ListKind
from hashwatch.signals.hasher import hash_stream
from hashwatch.signals.types import HashType
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import Role
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene, write_image
from tests.serve_helpers import client, make_key, serving

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _hex(value: int) -> str:
    return f"{value:064x}"


def _pdq(hw: Hashwatch, data: bytes) -> str:
    fs = hash_stream(io.BytesIO(data), "x.jpg", len(data), hw.hash_options(dihedral=False))
    value = fs.as_dict()["pdq"]
    assert isinstance(value, str)
    return value


def _flip(value: str, bits: list[int]) -> str:
    n = int(value, 16)
    for bit in bits:
        n ^= 1 << bit
    return _hex(n)


def _add(hw: Hashwatch, name: str, *hashes: tuple[HashType, str]) -> None:
    record = EntryRecord(hashes=tuple(hashes), category="1", source="test")
    hw.lists.add_records(name, [record], source="test")


def _publisher(hw: Hashwatch) -> dict[str, str]:
    """Lists "shared" (granted), "private" and "private-negative" (not granted); one picture
    listed in both "shared" and "private", a digest in "private" only. Returns the hashes."""
    picture = jpeg_bytes(scene(7))
    pdq = _pdq(hw, picture)
    secret_md5 = "0123456789abcdef0123456789abcdef"
    hw.lists.create("shared")
    hw.lists.create("private")
    hw.lists.create("private-negative", kind=ListKind.NEGATIVE)
    _add(hw, "shared", (HashType.PDQ, pdq))
    _add(hw, "private", (HashType.PDQ, pdq), (HashType.MD5, secret_md5))
    return {"pdq": pdq, "md5": secret_md5, "picture": picture.hex()}


def _peer_on_new_lists(hw: Hashwatch) -> dict[str, str]:
    hw.lists.create("shared")
    hw.lists.create("private")
    return _peer(hw)


def _peer(hw: Hashwatch, name: str = "partner", **kw: Any) -> dict[str, str]:
    return make_key(hw, Role.PEER, name, grants={"shared": "query"}, **kw)


# Lower thresholds than the defaults (64 scan-like queries, walks of 12), the same for the
# benign and the probing workloads, so that each test stays small and could fail either way.
# A rate no test reaches: only probing holds a peer back here.
PROBES = {"peer_probe_scan_queries": 16, "peer_probe_sweep_queries": 6, "peer_rate_per_s": 1e6}


def _flags(hw: Hashwatch) -> list[Any]:
    return [e for e in AuditTrail(hw.db).events() if e.action == "peer.probe_flagged"]


# -- matching within the grants --------------------------------------------------------------


def test_a_query_only_peer_matches_its_granted_lists_and_learns_no_hash(hw: Hashwatch) -> None:
    listed = _publisher(hw)
    peer = _peer(hw)
    matcher = make_key(hw, Role.MATCHER, "platform")
    near = _flip(listed["pdq"], [3, 77, 140])  # a re-encoded copy: 3 bits away
    body = {
        "signals": [
            {"type": "pdq", "value": near},
            {"type": "md5", "value": listed["md5"]},  # listed only in "private"
        ]
    }
    with client(hw) as c:
        r = c.post("/v1/match", headers=peer, json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        pdq_answer, md5_answer = answer["signals"]
        [m] = pdq_answer["matches"]
        assert m["list"] == "shared" and m["category"] == "1" and m["hash_type"] == "pdq"
        assert m["distance_band"] == "0-8" and "distance" not in m  # banded for peers
        assert "entry_id" not in m and "list_version" not in m
        assert md5_answer["matches"] == []  # "private" is neither searched nor named
        text = r.text
        assert "private" not in text and listed["pdq"] not in text
        # A picture uploaded by the peer (hash-and-match of media) is matched the same way.
        files = {"file": ("a.jpg", bytes.fromhex(listed["picture"]), "image/jpeg")}
        up = c.post("/v1/match", headers=peer, files=files)
        assert up.status_code == 200, up.text
        assert {m["list"] for m in up.json()["matches"]} == {"shared"}
        # A platform's matcher key still sees every list, with its own disclosure.
        mine = c.post("/v1/match", headers=matcher, json=body).json()
        assert {m["list"] for m in mine["matches"]} == {"shared", "private"}
        admin = make_key(hw, Role.ADMIN, "ops")
        log = c.get("/v1/admin/peer-queries", headers=admin).json()
    # The publisher logged both queries: counts and lists, never a value.
    assert [(q["key"], q["media"], q["signals"], q["matches"], q["lists"]) for q in log] == [
        ("partner", True, log[0]["signals"], 1, ["shared"]),
        ("partner", False, 2, 1, ["shared"]),
    ]
    assert log[1]["signal_types"] == {"md5": 1, "pdq": 1}
    assert near not in str(log) and listed["md5"] not in str(log)


def test_a_negative_list_outside_the_grants_does_not_suppress_the_peers_match(
    sqlite_hw: Hashwatch,
) -> None:
    listed = _publisher(sqlite_hw)
    _add(sqlite_hw, "private-negative", (HashType.PDQ, listed["pdq"]))
    curator = make_key(sqlite_hw, Role.CURATOR, "curator")
    peer = _peer(sqlite_hw, disclosure="hidden")
    one = {"signals": [{"type": "pdq", "value": listed["pdq"]}]}
    with client(sqlite_hw) as c:
        [m] = c.post("/v1/match", headers=peer, json=one).json()["matches"]
        assert m["list"] == "shared" and "distance" not in m and "distance_band" not in m
        mine = c.post("/v1/match", headers=curator, json=one).json()
        assert [m["list"] for m in mine["matches"]] == ["private-negative"]
        suppressed = mine["signals"][0]["suppressed"]
        assert {m["list"] for m in suppressed} == {"shared", "private"}


def _sample_path(path: str) -> str:
    return re.sub(r"\{(\w+)(:path)?\}", lambda m: "1" if m[1].endswith("id") else "shared", path)


def test_a_query_only_key_is_refused_everywhere_but_the_match_route(sqlite_hw: Hashwatch) -> None:
    """Walk every route of the service's OpenAPI description with a query-only key: only
    ``POST /v1/match`` answers; exports, feeds, list reads, entries, cases and admin routes
    are 403 (the index of feeds answers with the feeds the key may read: none)."""
    peer = _peer_on_new_lists(sqlite_hw)
    with client(sqlite_hw) as c:
        described = c.app.openapi()["paths"]  # type: ignore[attr-defined]
        walked = []
        for path, operations in described.items():
            for method in operations:
                if (method, path) == ("post", "/v1/match"):
                    continue
                url = _sample_path(path)
                if c.request(method.upper(), url, json={}).status_code != 401:
                    continue  # open to anyone (health, sign-in): no key asked for
                r = c.request(method.upper(), url, headers=peer, json={})
                assert r.status_code in (403, 404), (method, path, r.status_code)
                walked.append((method, path, r.status_code))
        assert len(walked) >= 30
        assert all(code == 403 for _, path, code in walked if "/feeds" in path or "/lists" in path)
        for path in ("/v1/lists/shared/export", "/v1/lists/shared", "/v1/admin/peer-queries"):
            assert c.get(path, headers=peer).status_code == 403
        assert c.post("/v1/hash", headers=peer).status_code == 403


def test_a_peer_has_a_rate_of_its_own(sqlite_hw: Hashwatch) -> None:
    _publisher(sqlite_hw)
    slow = _peer(sqlite_hw, "slow")
    other = _peer(sqlite_hw, "other")
    one = {"signals": [{"type": "md5", "value": "f" * 32}]}
    # One request per thousand seconds: the second is refused, however fast the machine.
    with client(sqlite_hw, peer_rate_per_s=0.001) as c:
        assert c.post("/v1/match", headers=slow, json=one).status_code == 200
        over = c.post("/v1/match", headers=slow, json=one)
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
        assert c.post("/v1/match", headers=other, json=one).status_code == 200
        admin = make_key(sqlite_hw, Role.ADMIN, "ops")
        log = c.get("/v1/admin/peer-queries?key=slow", headers=admin).json()
    assert [q["outcome"] for q in log] == ["refused", "answered"]


# -- probing ---------------------------------------------------------------------------------


def test_pdq_hashes_of_pictures_set_half_their_bits(sqlite_hw: Hashwatch) -> None:
    """What the scan signature rests on (docs/exchange.md): 128 of 256 bits, every picture."""
    weights = {
        pdq_weight(_pdq(sqlite_hw, jpeg_bytes(scene(s, (160, 120)), q)))
        for s in range(12)
        for q in (40, 90)
    }
    assert weights == {128}


def _reencoded(hw: Hashwatch, seed: int) -> list[str]:
    img = scene(seed)
    out = []
    for quality in (30, 80):
        for scale in (0.5, 0.75, 1.0, 1.25):
            size = (int(img.width * scale), int(img.height * scale))
            out.append(_pdq(hw, jpeg_bytes(img.resize(size), quality)))
    return out


def test_benign_workloads_are_not_flagged(sqlite_hw: Hashwatch) -> None:
    """A platform scanning distinct pictures, asking about one file again and again, and
    meeting re-encoded copies of a listed picture, is not a prober."""
    listed = _publisher(sqlite_hw)
    peer = _peer(sqlite_hw)
    distinct = [_pdq(sqlite_hw, jpeg_bytes(scene(100 + s, (160, 120)))) for s in range(30)]
    copies = _reencoded(sqlite_hw, 7)  # scene(7) is the listed picture
    with client(sqlite_hw, **PROBES) as c:
        for start in range(0, len(distinct), 10):
            batch = [{"type": "pdq", "value": v} for v in distinct[start : start + 10]]
            assert c.post("/v1/match", headers=peer, json={"signals": batch}).status_code == 200
        again = {"signals": [{"type": "pdq", "value": listed["pdq"]}]}
        for _ in range(30):
            assert c.post("/v1/match", headers=peer, json=again).status_code == 200
        for value in copies:
            r = c.post(
                "/v1/match", headers=peer, json={"signals": [{"type": "pdq", "value": value}]}
            )
            assert r.status_code == 200
            assert r.json()["matches"], "a re-encoded copy of the listed picture matches"
    assert _flags(sqlite_hw) == []


def test_a_random_hash_scan_is_flagged_then_throttled_until_unflagged(
    sqlite_hw: Hashwatch, run: Run
) -> None:
    _publisher(sqlite_hw)
    peer = _peer(sqlite_hw, "scanner")
    admin = make_key(sqlite_hw, Role.ADMIN, "ops")
    rng = random.Random(11)
    with client(sqlite_hw, peer_throttle=1e-9, **PROBES) as c:
        status = 200
        sent = 0
        while status == 200 and sent < 200:
            batch = [{"type": "pdq", "value": _hex(rng.getrandbits(256))} for _ in range(10)]
            status = c.post("/v1/match", headers=peer, json={"signals": batch}).status_code
            sent += 10
        assert status == 429 and sent <= 60  # about 3 in 4 random hashes are not 128 bits
        [flag] = c.get("/v1/admin/flags", headers=admin).json()
        assert flag["key"] == "scanner" and flag["reason"] == "scan"
        # Throttled to 1e-9 of its rate: one request at most, then 429.
        one = {"signals": [{"type": "md5", "value": "e" * 32}]}
        codes = [c.post("/v1/match", headers=peer, json=one).status_code for _ in range(3)]
        assert codes.count(429) >= 2
        listed = run("keys", "list")
        assert '"flagged": "scan"' in listed.stdout, listed.stdout
        cleared = run("keys", "unflag", "scanner")
        assert cleared.returncode == 0, cleared.stderr
        c.app.state.service.peers._flagged_at = float("-inf")  # type: ignore[attr-defined]
        c.app.state.service.peers.limiter = type(c.app.state.service.peers.limiter)()  # type: ignore[attr-defined]
        assert c.post("/v1/match", headers=peer, json=one).status_code == 200
        assert c.get("/v1/admin/flags", headers=admin).json() == []
    [event] = _flags(sqlite_hw)
    assert event.actor == "scanner" and event.details["reason"] == "scan"
    actions = [(e.action, e.target) for e in AuditTrail(sqlite_hw.db).events()]
    assert ("peer.unflagged", "key:scanner") in actions


def test_a_bit_flip_walk_toward_a_listed_hash_is_flagged(sqlite_hw: Hashwatch) -> None:
    """The walk starts 40 bits from the listed hash, flips one differing bit a request, and
    is flagged soon after its first hit, long before it reaches the hash."""
    listed = _publisher(sqlite_hw)
    peer = _peer(sqlite_hw, "walker", disclosure="exact")
    rng = random.Random(5)
    bits = rng.sample(range(256), 40)
    query = _flip(listed["pdq"], bits)
    with client(sqlite_hw, **PROBES) as c:
        steps = 0
        for bit in bits:
            query = _flip(query, [bit])
            r = c.post(
                "/v1/match", headers=peer, json={"signals": [{"type": "pdq", "value": query}]}
            )
            steps += 1
            if r.status_code == 429:
                break
        assert r.status_code == 429, "the walk was never flagged"
        assert steps < 15  # the first hit is at step 9 (31 bits); the hash at step 40
    [event] = _flags(sqlite_hw)
    assert event.details["reason"] == "sweep" and listed["pdq"] not in str(event.details)


def test_the_probe_window_is_bounded() -> None:
    watch = ProbeWatch(ProbeSettings(max_queries=100, max_peers=3, scan_queries=10**6))
    rng = random.Random(3)
    for key in range(5):
        for _ in range(3):
            watch.observe(key, [(_hex(rng.getrandbits(256)), False) for _ in range(80)])
    assert [watch.held(k) for k in range(5)] == [0, 0, 100, 100, 100]


# -- the asking side -------------------------------------------------------------------------


def test_peers_query_sends_hashes_and_keeps_what_it_asked_and_got(
    sqlite_hw: Hashwatch, tmp_path: Path, run: Run
) -> None:
    from hashwatch.config import Settings

    publisher = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'pub.sqlite3'}", data_dir=tmp_path / "pub")
    )
    try:
        _publisher(publisher)
        token = make_key(publisher, Role.PEER, "us", grants={"shared": "query"})
        token_text = token["Authorization"].removeprefix("Bearer ")
        listed = write_image(tmp_path / "files" / "listed.png", scene(7), "PNG")
        other = write_image(tmp_path / "files" / "other.jpg", scene(8))
        with serving(publisher) as url:
            r = run("peers", "query", "--url", url, "--token", token_text, str(listed), str(other))
        assert r.returncode == 0, r.stderr
        import json

        answers = {Path(a["item"]).name: a for a in map(json.loads, r.stdout.splitlines())}
        assert [m["list"] for m in answers["listed.png"]["matches"]] == ["shared"]
        assert answers["other.jpg"]["matches"] == []
        # The publisher saw two items' hashes and nothing of their names.
        [logged] = [q for q in _query_log(publisher)]
        assert logged["signals"] >= 2 and "listed" not in str(logged)
    finally:
        publisher.close()
    # The asking side keeps what it asked (types, counts) and what it got.
    [event] = [e for e in AuditTrail(sqlite_hw.db).events() if e.action == "peer.query"]
    assert event.target == "peer:127.0.0.1:" + url.rsplit(":", 1)[1]
    assert event.details["items"] == 2 and event.details["matched_items"] == 1
    assert event.details["signals"]["pdq"] == 2 and event.details["lists"] == ["shared"]
    assert token_text not in str(event.details)


def _query_log(hw: Hashwatch) -> list[dict[str, Any]]:
    from hashwatch.exchange.query_log import PeerQueryLog

    return PeerQueryLog(hw.db).recent()
