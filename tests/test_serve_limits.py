"""Limits and guarantees of the service: media never on disk, upload and rate limits, dead
letters that can be re-sent, match records purged after their retention."""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pytest

from hashwatch.app import Hashwatch
from hashwatch.store.service import MatchRecordStore, Role
from hashwatch.store.webhooks import WebhookStore
from tests.media import scene
from tests.serve_helpers import client, make_key, receiver


def _png(seed: int, size: tuple[int, int]) -> bytes:
    import io

    buf = io.BytesIO()
    scene(seed, size).save(buf, "BMP")  # uncompressed: several MB, above Starlette's 1 MiB
    return buf.getvalue()


def test_media_upload_never_touches_disk(
    sqlite_hw: Hashwatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    key = make_key(sqlite_hw, Role.MATCHER)
    picture = _png(3, (1600, 1200))
    assert len(picture) > 2 * 1024 * 1024  # Starlette would spool this to a file
    seen: list[str] = []
    with client(sqlite_hw) as c:
        original = tempfile.SpooledTemporaryFile.rollover

        def rollover(self: tempfile.SpooledTemporaryFile[bytes]) -> None:
            seen.append("rollover")
            original(self)

        monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", rollover)
        for path in ("/v1/hash", "/v1/match"):
            r = c.post(path, headers=key, files={"file": ("big.bmp", picture, "image/bmp")})
            assert r.status_code == 200, r.text
            assert list(spool.iterdir()) == [] and seen == []
    assert not any(picture[:64] in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_upload_limit_and_rate_limit(sqlite_hw: Hashwatch) -> None:
    key = make_key(sqlite_hw, Role.MATCHER)
    slow = make_key(sqlite_hw, Role.MATCHER, "slow", rate_per_s=1)
    with client(sqlite_hw, max_upload_bytes=100_000) as c:
        big = c.post("/v1/hash", headers=key, files={"file": ("b.bmp", _png(1, (800, 600)))})
        assert big.status_code == 413
        codes = [
            c.post(
                "/v1/match", headers=slow, json={"signals": [{"type": "md5", "value": "0" * 32}]}
            )
            for _ in range(4)
        ]
        assert [r.status_code for r in codes[:2]] == [200, 200]
        limited = [r for r in codes if r.status_code == 429]
        assert limited and int(limited[0].headers["Retry-After"]) >= 1
        assert c.post("/v1/hash", headers=key, json={}).status_code == 415
        admin = make_key(sqlite_hw, Role.ADMIN)
        assert 'status="429"' in c.get("/metrics", headers=admin).text


def test_dead_letters_and_resend(hw: Hashwatch) -> None:
    hw.lists.create("agency")
    hw_hooks = WebhookStore(hw.db)
    admin = make_key(hw, Role.ADMIN)
    curator = make_key(hw, Role.CURATOR)
    md5 = "f" * 32
    with receiver(status=500) as rec, client(hw, webhook_allow_hosts="127.0.0.1") as c:
        hook = c.post("/v1/webhooks", headers=admin, json={"url": rec.url}).json()
        entry = {"entries": [{"hashes": [{"type": "md5", "value": md5}]}]}
        c.post("/v1/lists/agency/entries", headers=curator, json=entry)
        r = c.post("/v1/match", headers=curator, json={"signals": [{"type": "md5", "value": md5}]})
        assert r.json()["matches"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not hw_hooks.deliveries("dead"):
            time.sleep(0.05)
        [dead] = c.get("/v1/webhooks/deliveries?status=dead", headers=admin).json()
        assert dead["attempts"] == 3 and dead["last_error"] == "HTTP 500"
        assert len(rec.received) == 3 and dead["webhook_id"] == hook["id"]
        rec.status = 200
        assert (
            c.post(f"/v1/webhooks/deliveries/{dead['id']}/resend", headers=admin).status_code == 200
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not hw_hooks.deliveries("delivered"):
            time.sleep(0.05)
        assert hw_hooks.deliveries("delivered")[0]["id"] == dead["id"]
        assert c.post("/v1/webhooks/deliveries/999999/resend", headers=admin).status_code == 404


def test_match_records_are_purged_after_retention(hw: Hashwatch) -> None:
    store = MatchRecordStore(hw.db)
    row = {"key_name": "k", "list_name": "l", "entry_id": 1, "hash_type": "md5", "distance": 0}
    store.add([row, row])
    assert store.purge(timedelta(days=30)) == 0
    assert store.purge(timedelta(0)) == 2
    assert store.count() == 0
