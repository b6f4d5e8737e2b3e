"""Matches are recorded by group commit: concurrent requests share one flush, and a response
comes only once its match records and audit lines are durable; a failed flush reaches every
request of its batch as a 503."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from hashwatch.app import Hashwatch
from hashwatch.audit import verify_audit_log
from hashwatch.store.database import Database
from hashwatch.store.group_commit import GroupCommit, GroupCommitClosed
from hashwatch.store.service import MATCH_RECORDS, Role
from hashwatch.web.app import create_app
from tests.serve_helpers import make_key, settings

BOUND_S = 60  # generous: the machine is shared


def _known_list(hw: Hashwatch, tmp_path: Path, count: int) -> list[str]:
    """A list of ``count`` benign random MD5 values (stand-ins for known material)."""
    values = [f"{n:032x}" for n in range(1, count + 1)]
    path = tmp_path / "known.txt"
    path.write_text("".join(f"md5 {v}\n" for v in values))
    hw.lists.import_file("known", path)
    return values


def _concurrently(n: int, call: object) -> list[object]:
    results: list[object] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait(BOUND_S)
        try:
            results[i] = call(i)  # type: ignore[operator]
        except BaseException as exc:  # reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND_S)
    return results


def test_every_response_comes_after_its_record_is_readable_elsewhere(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    values = _known_list(sqlite_hw, tmp_path, 12)
    key = make_key(sqlite_hw, Role.MATCHER)
    other = Database.open(sqlite_hw.settings.database_url)  # a second connection's view
    app = create_app(sqlite_hw, settings(background=False))
    service = app.state.service
    with TestClient(app) as c:

        def ask(i: int) -> tuple[int, int]:
            body = {"signals": [{"type": "md5", "value": values[i]}], "content_id": f"item-{i}"}
            r = c.post("/v1/match", json=body, headers=key)
            assert r.status_code == 200, r.text
            assert [m["entry_id"] for m in r.json()["matches"]]
            # As soon as the answer is back, another connection must read its record.
            with other.read() as conn:
                rows = conn.execute(
                    select(MATCH_RECORDS.c.id).where(MATCH_RECORDS.c.content_id == f"item-{i}")
                ).all()
            return r.status_code, len(rows)

        results = _concurrently(len(values), ask)
        # A non-matching lookup records nothing and waits for no flush.
        miss = c.post(
            "/v1/match", json={"signals": [{"type": "md5", "value": "e" * 32}]}, headers=key
        )
        assert miss.status_code == 200 and miss.json()["matches"] == []
    assert results == [(200, 1)] * len(values)
    assert 1 <= service.recorder.flushes <= len(values)
    with other.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM match_records")).scalar_one() == 12
    other.dispose()
    audit = sqlite_hw.settings.data_dir / "serve-audit.log"
    assert verify_audit_log(audit).ok
    lines = audit.read_text().splitlines()
    assert sum('"event":"match"' in line for line in lines) == 12
    assert not any(v in audit.read_text() for v in values), "an audit line holds no hash"


def test_a_failed_flush_answers_every_request_of_its_batch_with_503(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    values = _known_list(sqlite_hw, tmp_path, 6)
    key = make_key(sqlite_hw, Role.MATCHER)
    app = create_app(sqlite_hw, settings(background=False, retry_after_s=2))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert (
            c.post(
                "/v1/match", json={"signals": [{"type": "md5", "value": values[0]}]}, headers=key
            ).status_code
            == 200
        )
        with sqlite_hw.db.begin() as conn:  # the table is gone: every insert fails
            conn.execute(text("ALTER TABLE match_records RENAME TO match_records_away"))

        def ask(i: int) -> tuple[int, str | None, bool]:
            r = c.post(
                "/v1/match", json={"signals": [{"type": "md5", "value": values[i]}]}, headers=key
            )
            return r.status_code, r.headers.get("Retry-After"), values[i] in r.text

        failed = _concurrently(len(values), ask)
        with sqlite_hw.db.begin() as conn:
            conn.execute(text("ALTER TABLE match_records_away RENAME TO match_records"))
        again = c.post(
            "/v1/match", json={"signals": [{"type": "md5", "value": values[1]}]}, headers=key
        )
    assert failed == [(503, "2", False)] * len(values)
    assert again.status_code == 200 and again.json()["matches"]


def test_one_flush_for_what_queued_meanwhile_and_its_error_for_each_waiter() -> None:
    flushed: list[list[int]] = []
    first_started = threading.Event()
    release = threading.Event()
    disk_full = OSError("disk full")

    def flush(items: list[int]) -> None:
        flushed.append(list(items))
        if len(flushed) == 1:
            first_started.set()
            assert release.wait(BOUND_S)
        elif len(flushed) == 2:
            raise disk_full

    # A full disk is nobody's fault in particular: the batch is not retried request by request.
    commit: GroupCommit[int] = GroupCommit(flush, max_queue=100, retry_alone=lambda exc: False)
    first = threading.Thread(target=commit.submit, args=([0],))
    first.start()
    assert first_started.wait(BOUND_S)
    outcomes: dict[int, str] = {}
    raised: dict[int, BaseException] = {}

    def submit(i: int) -> None:
        try:
            commit.submit([i, i + 100])
            outcomes[i] = "ok"
        except OSError as exc:
            outcomes[i] = str(exc)
            raised[i] = exc

    waiters = [threading.Thread(target=submit, args=(i,)) for i in range(1, 5)]
    for t in waiters:
        t.start()
    # All four are queued behind the first flush before it is let go.
    for _ in range(BOUND_S * 1000):
        if commit.queued() == 8:
            break
        threading.Event().wait(0.001)
    assert commit.queued() == 8
    assert not outcomes, "nobody returns before its batch is flushed"
    release.set()
    first.join(BOUND_S)
    for t in waiters:
        t.join(BOUND_S)
    assert flushed[0] == [0]
    assert sorted(flushed[1]) == sorted([i for n in range(1, 5) for i in (n, n + 100)])
    assert len(flushed) == 2 and commit.flushes == 2
    assert outcomes == {i: "disk full" for i in range(1, 5)}
    # Each waiter raised its own exception object (one traceback each), caused by the error.
    assert len({id(exc) for exc in raised.values()}) == 4
    assert all(type(exc) is OSError and exc.__cause__ is disk_full for exc in raised.values())
    commit.submit([9])  # the writer goes on after a failed flush
    assert flushed[2] == [9]
    commit.close()
    with pytest.raises(RuntimeError):
        commit.submit([10])


def test_a_bad_request_in_a_batch_fails_alone_and_the_others_are_recorded_once(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    """One request's audit line cannot be written: its batch is retried request by request,
    so only that request fails, and the others' records and audit lines exist exactly once."""
    values = _known_list(sqlite_hw, tmp_path, 5)
    key = make_key(sqlite_hw, Role.MATCHER)
    app = create_app(sqlite_hw, settings(background=False))
    service = app.state.service
    first_flush, release = threading.Event(), threading.Event()
    record_matches, append_many = service.webhooks.record_matches, service.audit.append_many

    def gated(*args: Any, **kwargs: Any) -> int:
        if not first_flush.is_set():  # holds the first flush until the rest are queued
            first_flush.set()
            assert release.wait(BOUND_S)
        return int(record_matches(*args, **kwargs))

    def refusing(events: list[tuple[str, dict[str, Any]]], **options: Any) -> object:
        if any(details.get("content_id") == "bad" for _, details in events):
            raise OSError("the audit log refused a line")
        return append_many(events, **options)

    service.webhooks.record_matches = gated
    service.audit.append_many = refusing
    ids = ["first", "item-1", "item-2", "bad", "item-4"]
    with TestClient(app, raise_server_exceptions=False) as c:

        def ask(i: int) -> int:
            body = {"signals": [{"type": "md5", "value": values[i]}], "content_id": ids[i]}
            return int(c.post("/v1/match", json=body, headers=key).status_code)

        statuses: dict[int, int] = {}
        first = threading.Thread(target=lambda: statuses.__setitem__(0, ask(0)))
        first.start()
        assert first_flush.wait(BOUND_S)
        rest = [
            threading.Thread(target=lambda i=i: statuses.__setitem__(i, ask(i)))
            for i in range(1, 5)
        ]
        for t in rest:
            t.start()
        for _ in range(BOUND_S * 1000):  # all four queued behind the held flush
            if service.recorder.queued() == 4:
                break
            threading.Event().wait(0.001)
        assert service.recorder.queued() == 4
        release.set()
        for t in [first, *rest]:
            t.join(BOUND_S)
    assert statuses == {0: 200, 1: 200, 2: 200, 3: 500, 4: 200}
    with sqlite_hw.db.read() as conn:
        recorded = conn.execute(select(MATCH_RECORDS.c.content_id)).scalars().all()
    assert sorted(recorded) == sorted(["first", "item-1", "item-2", "item-4"])
    audit = sqlite_hw.settings.data_dir / "serve-audit.log"
    assert verify_audit_log(audit).ok
    matched = [line for line in audit.read_text().splitlines() if '"event":"match"' in line]
    assert sorted(json.loads(line)["details"]["content_id"] for line in matched) == sorted(
        ["first", "item-1", "item-2", "item-4"]
    )


def test_audit_lines_of_one_flush_chain_like_single_appends(tmp_path: Path) -> None:
    from hashwatch.audit import AuditLog

    log = AuditLog(tmp_path / "serve-audit.log")
    log.append("serve.started")
    entries = log.append_many([("match", {"list": "known", "entry_id": n}) for n in (1, 2, 3)])
    log.append("serve.stopped")
    assert [e.seq for e in entries] == [2, 3, 4]
    check = verify_audit_log(tmp_path / "serve-audit.log")
    assert check.ok and check.lines == 5, check.problems
    assert log.append_many([]) == []


def test_stopping_the_server_closes_its_match_recorder_before_the_last_audit_line(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    values = _known_list(sqlite_hw, tmp_path, 1)
    key = make_key(sqlite_hw, Role.MATCHER)
    app = create_app(sqlite_hw, settings(background=False))
    service = app.state.service
    with TestClient(app) as c:
        body = {"signals": [{"type": "md5", "value": values[0]}]}
        assert c.post("/v1/match", json=body, headers=key).status_code == 200
    with pytest.raises(GroupCommitClosed):
        service.recorder.submit([object()])
    lines = (sqlite_hw.settings.data_dir / "serve-audit.log").read_text().splitlines()
    assert '"event":"serve.stopped"' in lines[-1] and '"event":"match"' in lines[-2]
