"""A match record's commit is durable against a power cut, not only against a crash of the
server process: SQLite syncs its write-ahead log at that commit (``synchronous=FULL`` for that
transaction), after the audit log's fsync (written ahead); other writes keep SQLite's NORMAL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from hashwatch.app import Hashwatch
from hashwatch.store.service import MATCH_RECORDS, Role
from hashwatch.web.app import create_app
from tests.serve_helpers import known_md5, make_key, settings

FULL, NORMAL = 2, 1  # PRAGMA synchronous


def _synchronous(conn: Any) -> int:
    raw = conn.connection.dbapi_connection
    return int(raw.execute("PRAGMA synchronous").fetchone()[0])


def test_the_match_record_commit_syncs_the_log_and_other_writes_keep_normal(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    value = known_md5(sqlite_hw, tmp_path)
    key = make_key(sqlite_hw, Role.MATCHER)
    inserted: dict[int, str] = {}  # connection id -> the table its transaction wrote
    at_commit: list[tuple[str, int]] = []

    def before_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO"):
            inserted.setdefault(id(conn.connection), statement.split()[2])

    def on_commit(conn: Any) -> None:
        table = inserted.pop(id(conn.connection), None)
        if table is not None:
            at_commit.append((table, _synchronous(conn)))

    engine = sqlite_hw.db.engine
    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", on_commit)
    try:
        app = create_app(sqlite_hw, settings(background=False))
        with TestClient(app) as c:
            body = {"signals": [{"type": "md5", "value": value}], "content_id": "upload-1"}
            r = c.post("/v1/match", json=body, headers=key)
            assert r.status_code == 200 and r.json()["matches"]
        make_key(sqlite_hw, Role.MATCHER, name="after-the-match")  # an ordinary write
        with sqlite_hw.db.read() as conn:
            pooled_afterwards = _synchronous(conn)
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)
        event.remove(engine, "commit", on_commit)
    assert ("match_records", FULL) in at_commit
    assert [level for table, level in at_commit if table != "match_records"][-1] == NORMAL
    assert pooled_afterwards == NORMAL  # the connection went back to the pool at NORMAL


def test_an_audit_fsync_that_fails_leaves_no_record_of_the_match(
    sqlite_hw: Hashwatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit log is written ahead: its fsync comes before the records' commit, so a
    disk that refuses it leaves no match record without a durable audit line."""
    value = known_md5(sqlite_hw, tmp_path)
    key = make_key(sqlite_hw, Role.MATCHER)
    app = create_app(sqlite_hw, settings(background=False))
    refusing = False
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if refusing:
            raise OSError("the disk refused to sync the audit log")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)  # Python's: the audit log's, not SQLite's own
    with TestClient(app, raise_server_exceptions=False) as c:
        body = {"signals": [{"type": "md5", "value": value}], "content_id": "upload-2"}
        refusing = True
        r = c.post("/v1/match", json=body, headers=key)
        refusing = False  # the disk is back: the next match is recorded as usual
        again = c.post("/v1/match", json={**body, "content_id": "upload-3"}, headers=key)
    assert r.status_code >= 500 and value not in r.text  # not reported as recorded
    assert again.status_code == 200 and again.json()["matches"]
    with sqlite_hw.db.read() as conn:
        recorded = conn.execute(select(MATCH_RECORDS.c.content_id)).scalars().all()
    assert recorded == ["upload-3"]
    audit = (sqlite_hw.settings.data_dir / "serve-audit.log").read_text()
    assert '"content_id":"upload-3"' in audit.replace(" ", "")
