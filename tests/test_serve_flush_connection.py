"""The match recorder commits on a connection of its own: one connection for every flush,
set to sync SQLite's log at each commit (``synchronous=FULL``) once, while the pool's other
connections keep NORMAL; a flush that fails drops that connection (never back in the pool at
FULL) and the next flush opens a fresh one; shutting the server down closes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hashwatch.app import Hashwatch
from hashwatch.store.service import MATCH_RECORDS, Role
from hashwatch.web.app import create_app
from tests.serve_helpers import known_md5, make_key, settings

FULL, NORMAL = 2, 1  # PRAGMA synchronous


def _synchronous(raw: Any) -> int:
    return int(raw.execute("PRAGMA synchronous").fetchone()[0])


def _recorded(hw: Hashwatch) -> list[str]:
    with hw.db.read() as conn:
        return sorted(conn.execute(select(MATCH_RECORDS.c.content_id)).scalars().all())


def test_every_flush_commits_on_one_kept_connection_that_syncs_each_commit(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    value = known_md5(sqlite_hw, tmp_path)
    key = make_key(sqlite_hw, Role.MATCHER)
    app = create_app(sqlite_hw, settings(background=False))
    writer = app.state.service._records_writer
    with TestClient(app) as c:
        for n in range(5):
            body = {"signals": [{"type": "md5", "value": value}], "content_id": f"upload-{n}"}
            r = c.post("/v1/match", json=body, headers=key)
            assert r.status_code == 200 and r.json()["matches"]
        kept = writer._conn
        assert writer.opened == 1 and kept is not None  # five flushes, one connection
        assert _synchronous(kept.connection.dbapi_connection) == FULL
        with sqlite_hw.db.read() as conn:  # any other connection of the pool
            assert _synchronous(conn.connection.dbapi_connection) == NORMAL
    assert writer._conn is None and kept.closed  # the server's shutdown closed it
    assert _recorded(sqlite_hw) == [f"upload-{n}" for n in range(5)]


def test_a_failed_flush_drops_its_connection_and_the_next_one_opens_a_fresh_one(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    value = known_md5(sqlite_hw, tmp_path)
    key = make_key(sqlite_hw, Role.MATCHER)
    app = create_app(sqlite_hw, settings(background=False))
    service = app.state.service
    writer = service._records_writer

    def failing_append(*args: Any, **kwargs: Any) -> None:
        raise OSError("the disk refused the audit lines")

    with TestClient(app, raise_server_exceptions=False) as c:
        body = {"signals": [{"type": "md5", "value": value}], "content_id": "upload-1"}
        assert c.post("/v1/match", json=body, headers=key).status_code == 200
        first = writer._conn
        first_raw = first.connection.dbapi_connection
        service.audit.append_many = failing_append
        failed = c.post("/v1/match", json={**body, "content_id": "upload-2"}, headers=key)
        del service.audit.append_many  # the disk is back
        assert failed.status_code >= 500 and writer._conn is None and first.closed
        with pytest.raises(Exception, match="closed"):  # not handed back to the pool at FULL
            first_raw.execute("SELECT 1")
        again = c.post("/v1/match", json={**body, "content_id": "upload-3"}, headers=key)
        assert again.status_code == 200 and again.json()["matches"]
        fresh = writer._conn
        assert writer.opened == 2 and fresh is not None and fresh is not first
        assert _synchronous(fresh.connection.dbapi_connection) == FULL
    assert _recorded(sqlite_hw) == ["upload-1", "upload-3"]  # the failed one left nothing
