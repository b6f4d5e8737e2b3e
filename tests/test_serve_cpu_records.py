"""The server's group commit writes its match records on the driver's cursor (brief 18C): the
rows stored — time, key, list, entry, type, distance, the caller's content id — and the
deliveries queued for webhooks are the same as SQLAlchemy's insert stores, on SQLite and
PostgreSQL; a flush with no active webhook queues nothing; a refused write fails as a database
error and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Table, insert, select

from hashwatch.app import Hashwatch
from hashwatch.errors import DatabaseConflictError, DatabaseValueError
from hashwatch.store import webhooks
from hashwatch.store.database import DurableWriter
from hashwatch.store.service import MATCH_RECORDS, MatchRecordStore
from hashwatch.store.webhooks import WebhookStore

T0 = datetime(2026, 12, 5, 16, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def writer(hw: Hashwatch) -> Iterator[DurableWriter]:
    """Durable transactions as the server's recorder makes them, closed after the test."""
    kept = hw.db.durable_writer()
    yield kept
    kept.close()


def _records(n: int, key: str) -> list[dict[str, Any]]:
    return [
        {
            "key_name": key,
            "list_name": "agency" if i % 2 else "other",
            "entry_id": 10_000_000_000 + i,  # beyond 32 bits
            "hash_type": "pdq" if i % 3 else "md5",
            "distance": i % 32,
            "content_id": f"upload-{i}" if i % 4 else None,
        }
        for i in range(n)
    ]


def _event(key: str) -> dict[str, Any]:
    matches = [{"list": "agency", "kind": "known", "entry_id": 7, "hash_type": "pdq"}]
    return {
        "id": f"ev-{key}",
        "type": "match",
        "time": T0.isoformat(),
        "key": key,
        "matches": matches,
    }


def _through_sqlalchemy(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(table), rows)


def _stored(hw: Hashwatch, key: str) -> list[tuple[Any, ...]]:
    with hw.db.read() as conn:
        q = select(MATCH_RECORDS).where(MATCH_RECORDS.c.key_name == key).order_by("id")
        return [tuple(r)[1:] for r in conn.execute(q)]


def _raw_times(hw: Hashwatch, key: str) -> list[Any]:
    """The stored time as the database holds it (SQLite: text in SQLAlchemy's format)."""
    with hw.db.read() as conn:
        sql = "SELECT at FROM match_records WHERE key_name = '" + key + "' ORDER BY id"
        return [r[0] for r in conn.exec_driver_sql(sql)]


def test_records_and_deliveries_are_stored_as_sqlalchemy_stores_them(
    hw: Hashwatch, writer: DurableWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [T0]
    store = WebhookStore(hw.db, clock=lambda: clock[0])
    every, _ = store.add("https://receiver.example/all")
    agency, _ = store.add("https://receiver.example/agency", list_name="agency")
    store.add("https://receiver.example/other", list_name="other")
    gone, _ = store.add("https://receiver.example/gone")
    store.disable(gone["id"])

    assert store.record_matches(_records(9, "raw"), [_event("raw")], writer=writer) == 2
    clock[0] = T0 + timedelta(seconds=1)
    with monkeypatch.context() as m:
        m.setattr(webhooks, "insert_many", _through_sqlalchemy)
        m.setattr(webhooks, "_any_active_hook", lambda conn: True)
        assert store.record_matches(_records(9, "sa"), [_event("sa")], writer=writer) == 2

    raw, sa = _stored(hw, "raw"), _stored(hw, "sa")
    assert len(raw) == 9
    assert [r[2:] for r in raw] == [r[2:] for r in sa]  # all but the time and key
    assert {r[0] for r in raw} == {T0} or {r[0].replace(tzinfo=UTC) for r in raw} == {T0}
    later = _raw_times(hw, "sa")[0]
    assert type(_raw_times(hw, "raw")[0]) is type(later)
    if hw.db.is_sqlite:  # the same text, one second earlier
        assert _raw_times(hw, "raw")[0] == later.replace(":01.", ":00.")
    events = sorted((d["webhook_id"], d["event"]["key"]) for d in store.deliveries("pending"))
    hooks = (every["id"], agency["id"])  # the event's match is of list "agency"
    assert events == sorted((h, k) for h in hooks for k in ("raw", "sa"))
    assert [r["key_name"] for r in MatchRecordStore(hw.db).recent(18)].count("raw") == 9


def test_with_no_active_webhook_nothing_is_queued(hw: Hashwatch, writer: DurableWriter) -> None:
    store = WebhookStore(hw.db)
    gone, _ = store.add("https://receiver.example/gone")
    store.disable(gone["id"])
    assert store.record_matches(_records(3, "k"), [_event("k")], writer=writer) == 0
    assert store.deliveries("pending") == [] and len(_stored(hw, "k")) == 3


def test_a_refused_write_fails_as_a_database_error_and_stores_nothing(
    hw: Hashwatch, writer: DurableWriter
) -> None:
    store = WebhookStore(hw.db)
    store.add("https://receiver.example/all")
    rows = _records(3, "k")
    rows[2]["hash_type"] = "x" * 5000  # too long for its column (PostgreSQL refuses it)
    rows[1]["key_name"] = None  # and no key (every database refuses it)
    with pytest.raises((DatabaseConflictError, DatabaseValueError)):
        store.record_matches(rows, [_event("k")], writer=writer)
    assert _stored(hw, "k") == [] and store.deliveries("pending") == []
