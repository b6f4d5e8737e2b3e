"""The platform engineer's story over HTTP, on SQLite and PostgreSQL: keys, a benign generated
picture uploaded and matched, a webhook received and verified, the curator's list import."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from hashwatch.app import Hashwatch
from hashwatch.audit import verify_audit_log
from hashwatch.signals.hasher import hash_stream
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import Role
from hashwatch.web.webhooks import SIGNATURE_HEADER, verify_signature
from tests.media import jpeg_bytes, scene
from tests.serve_helpers import bearer, client, make_key, receiver


def _wait(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_key_upload_match_webhook(hw: Hashwatch) -> None:
    admin = make_key(hw, Role.ADMIN, "ops")
    picture = jpeg_bytes(scene(7))
    pdq = hash_stream(io.BytesIO(picture), "x").as_dict()["pdq"]
    # The receiver runs on loopback: a webhook target the server refuses unless allowed.
    with client(hw, webhook_allow_hosts="127.0.0.1") as c, receiver() as rec:
        # The admin hands out keys; tokens are shown once.
        curator = bearer(
            c.post("/v1/keys", headers=admin, json={"name": "cur", "role": "curator"}).json()[
                "token"
            ]
        )
        matcher = bearer(
            c.post("/v1/keys", headers=admin, json={"name": "platform", "role": "matcher"}).json()[
                "token"
            ]
        )
        hook = c.post("/v1/webhooks", headers=admin, json={"url": rec.url, "list": "agency"}).json()
        # The curator builds a list with the picture's PDQ hash.
        assert (
            c.post(
                "/v1/lists", headers=curator, json={"name": "agency", "pdq_threshold": 31}
            ).status_code
            == 201
        )
        added = c.post(
            "/v1/lists/agency/entries",
            headers=curator,
            json={"entries": [{"hashes": [{"type": "pdq", "value": pdq}], "category": "1"}]},
        )
        assert added.status_code == 201, added.text
        # The platform uploads a recompressed copy of the picture.
        copy = jpeg_bytes(scene(7), quality=60)
        r = c.post("/v1/match", headers=matcher, files={"file": ("up.jpg", copy, "image/jpeg")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["signals"]["pdq"] and body["signals"]["path"] == "up.jpg"
        [m] = body["matches"]
        assert (m["list"], m["hash_type"], m["category"]) == ("agency", "pdq", "1")
        # By default a match shows the band its distance falls in, not the distance.
        assert "distance" not in m and m["distance_band"] in ("0-8", "9-16", "17-24", "25-31")
        # A different picture does not match.
        other = c.post(
            "/v1/match", headers=matcher, files={"file": ("o.jpg", jpeg_bytes(scene(99)))}
        )
        assert other.json()["matches"] == []
        # The webhook arrives, signed; the match response did not wait for it.
        assert _wait(lambda: rec.received)
        headers, payload = rec.received[0]
        event = json.loads(payload)
        [sent] = event["matches"]
        assert sent["list"] == "agency" and sent["entry_id"] == m["entry_id"]
        assert event["key"] == "platform" and pdq not in payload.decode()
        assert verify_signature(hook["secret"], payload, headers[SIGNATURE_HEADER])
        assert not verify_signature("whsec_wrong", payload, headers[SIGNATURE_HEADER])
        assert _wait(
            lambda: c.get("/v1/webhooks/deliveries?status=delivered", headers=admin).json()
        )
        # Match records and metrics, never content.
        records = c.get("/v1/match-records", headers=admin).json()
        assert [(r["key_name"], r["list_name"], r["entry_id"]) for r in records] == [
            ("platform", "agency", m["entry_id"])
        ]
        metrics = c.get("/metrics", headers=admin).text
        assert 'hashwatch_matches_total{list="agency"} 1.0' in metrics
        assert "hashwatch_http_request_duration_seconds_bucket" in metrics
        assert "hashwatch_index_hashes" in metrics
    audit = hw.settings.data_dir / "serve-audit.log"
    assert verify_audit_log(audit).ok
    events = [json.loads(line) for line in audit.read_text().splitlines()]
    matches = [e["details"] for e in events if e["event"] == "match"]
    assert matches == [
        {
            "key": "platform",
            "list": "agency",
            "entry_id": m["entry_id"],
            "hash_type": "pdq",
            "distance": sent["distance"],
        }
    ]
    # Keys, webhooks and lists are audited by the store, with the key's name as the actor.
    trail = [(e.actor, e.action) for e in AuditTrail(hw.db).events()]
    assert ("ops", "key.created") in trail and ("ops", "webhook.added") in trail
    assert ("cur", "list.created") in trail and ("cur", "entries.added") in trail
    assert pdq not in audit.read_text()


def test_json_signals_roles_and_errors(hw: Hashwatch) -> None:
    hw.lists.create("agency")
    curator = make_key(hw, Role.CURATOR)
    matcher = make_key(hw, Role.MATCHER)
    md5 = "0" * 31 + "1"
    with client(hw) as c:
        entry = {"entries": [{"hashes": [{"type": "md5", "value": md5}]}]}
        assert c.post("/v1/lists/agency/entries", headers=curator, json=entry).status_code == 201
        signals = [{"type": "md5", "value": md5.upper()}, {"type": "sha1", "value": "a" * 40}]
        body = c.post("/v1/match", headers=matcher, json={"signals": signals}).json()
        assert [len(s["matches"]) for s in body["signals"]] == [1, 0]
        assert body["signals"][0]["value"] == md5
        assert [(m["signal"], m["hash_type"]) for m in body["matches"]] == [(0, "md5")]
        # Malformed hash: 422 naming the field.
        bad = c.post(
            "/v1/match", headers=matcher, json={"signals": [{"type": "pdq", "value": "xyz"}]}
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "signals", 0, "value"]
        assert "pdq" in bad.json()["detail"][0]["msg"]
        too_many = [{"type": "md5", "value": md5}] * 1001
        assert c.post("/v1/match", headers=matcher, json={"signals": too_many}).status_code == 422
        # Roles: no key 401, wrong key 401, too weak 403.
        assert c.post("/v1/match", json={"signals": signals}).status_code == 401
        assert (
            c.post("/v1/match", headers=bearer("hw_nope"), json={"signals": signals}).status_code
            == 401
        )
        assert c.get("/v1/lists", headers=matcher).status_code == 403
        assert c.get("/v1/keys", headers=curator).status_code == 403
        assert c.get("/v1/lists", headers=curator).status_code == 200
        # Revocation through the API stops matching at once (facts are read at match time).
        revoke = {"hashes": [{"type": "md5", "value": md5}], "reason": "test"}
        assert (
            c.post("/v1/lists/agency/entries/revoke", headers=curator, json=revoke).status_code
            == 200
        )
        body = c.post("/v1/match", headers=matcher, json={"signals": signals[:1]}).json()
        assert body["matches"] == []
        assert (
            c.post("/v1/lists/nolist/entries/revoke", headers=curator, json=revoke).status_code
            == 404
        )
        assert c.post("/v1/lists", headers=curator, json={"name": "agency"}).status_code == 409


def test_curator_imports_and_exports_a_list(hw: Hashwatch, tmp_path: Path) -> None:
    curator = make_key(hw, Role.CURATOR)
    matcher = make_key(hw, Role.MATCHER)
    lines = "".join(f"md5 {i:032x}\n" for i in range(1, 51))
    with client(hw) as c:
        r = c.post(
            "/v1/lists/shared/import",
            headers=curator,
            files={"file": ("shared.txt", lines.encode(), "text/plain")},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["added"], r.json()["version"]) == (50, 1)
        again = c.post(
            "/v1/lists/shared/import", headers=curator, files={"file": ("s.txt", lines.encode())}
        )
        assert again.json()["changed"] is False
        bad = c.post(
            "/v1/lists/shared/import", headers=curator, files={"file": ("b.txt", b"md5 nothex\n")}
        )
        assert bad.status_code == 422 and "line 1" in bad.json()["detail"]
        assert (
            c.patch("/v1/lists/shared", headers=curator, json={"pdq_threshold": 20}).json()[
                "pdq_threshold"
            ]
            == 20
        )
        exported = c.get("/v1/lists/shared/export?format=csv", headers=curator)
        assert exported.status_code == 200 and exported.text.count("\n") == 51
        body = c.post(
            "/v1/match", headers=matcher, json={"signals": [{"type": "md5", "value": f"{7:032x}"}]}
        )
        assert body.json()["matches"][0]["list"] == "shared"
