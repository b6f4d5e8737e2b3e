"""List integrity: concurrent writers, empty or shrinking files, the audit of every write,
field sizes and database errors, one list-name rule.

Every list here is made of digests of generated benign strings. Concurrency is made to
overlap deterministically: the first writer is held inside its transaction (at its first
``list_imports`` row, after it has read the list) until the second writer has reached the
database, and only then goes on.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from hashwatch.errors import ConfigError, HashwatchError, ListExistsError, ListFormatError
from hashwatch.lists.model import EntryStatus
from hashwatch.signals.types import HashType
from hashwatch.store.audit import AuditTrail
from hashwatch.store.database import Database
from hashwatch.store.lists import ListStore
from hashwatch.store.models import ENTRIES

WAIT = 60.0  # generous bound on every wait; the tests take well under a second each


def md5(i: int) -> str:
    return hashlib.md5(f"benign-{i}".encode()).hexdigest()


def text_list(path: Path, numbers: range) -> Path:
    path.write_text("".join(f"md5 {md5(i)}\n" for i in numbers))
    return path


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database.open(db_url)
    yield database
    database.dispose()


@pytest.fixture
def store(db: Database) -> ListStore:
    return ListStore(db)


def _second_reads_list(statement: str) -> bool:
    """The second writer has read the list row (what writers read before the fix)."""
    return "FROM hash_lists" in statement and "hash_lists.kind" in statement


class Overlap:
    """Hold the thread named ``first`` at its first ``list_imports`` insert until the thread
    named ``second`` has reached the database: it is taking the writer lock, or it has
    read the list row unlocked (as writers did before they took a lock)."""

    def __init__(self, engine: Engine, arrived: Callable[[str], bool] = _second_reads_list):
        self.engine = engine
        self.arrived = arrived
        self.first_inside = threading.Event()
        self.second_arrived = threading.Event()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        name = threading.current_thread().name
        if name == "first" and "INSERT INTO list_imports" in statement:
            if not self.first_inside.is_set():
                self.first_inside.set()
                assert self.second_arrived.wait(WAIT), "the second writer never arrived"
        elif name == "second" and (
            "BEGIN IMMEDIATE" in statement or "pg_advisory_xact_lock" in statement
        ):
            self.second_arrived.set()

    def _after(self, _conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name == "second" and self.arrived(statement):
            self.second_arrived.set()

    def run(self, first: Callable[[], Any], second: Callable[[], Any]) -> dict[str, Any]:
        """Run both writers overlapped; return each one's result or exception."""
        results: dict[str, Any] = {}

        def call(name: str, fn: Callable[[], Any]) -> None:
            try:
                results[name] = fn()
            except Exception as exc:  # the test asserts on it
                results[name] = exc

        one = threading.Thread(target=call, args=("first", first), name="first")
        two = threading.Thread(target=call, args=("second", second), name="second")
        one.start()
        assert self.first_inside.wait(WAIT), "the first writer never started its import"
        two.start()
        for thread in (one, two):
            thread.join(WAIT)
            assert not thread.is_alive(), f"{thread.name} writer did not finish"
        return results


def _live(db: Database, list_id: int) -> int:
    with db.read() as conn:
        return len(
            conn.execute(
                select(ENTRIES.c.id).where(
                    ENTRIES.c.list_id == list_id, ENTRIES.c.status == EntryStatus.ACTIVE.value
                )
            ).all()
        )


def test_two_replace_imports_at_once_make_versions_2_and_3(
    db: Database, store: ListStore, tmp_path: Path
) -> None:
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(0, 300)))
    a = text_list(tmp_path / "a.txt", range(100, 400))  # 2/3 of the list listed again
    b = text_list(tmp_path / "b.txt", range(200, 500))
    overlap = Overlap(db.engine)
    try:
        results = overlap.run(
            lambda: store.import_file("agency", a), lambda: store.import_file("agency", b)
        )
    finally:
        overlap.close()
    first, second = results["first"], results["second"]
    assert not isinstance(first, Exception), first
    assert not isinstance(second, Exception), second
    assert (first.version, second.version) == (2, 3)
    history = store.imports("agency")
    assert [h["version"] for h in history] == [3, 2, 1]
    info = store.get("agency")
    assert info.version == 3
    # The last replace wins: exactly b's 300 entries are live, the rest withdrawn.
    assert info.counts == {"active": 300, "withdrawn": 200}
    assert _live(db, info.id) == 300
    assert second.added == 100 and second.withdrawn == 100


def test_two_creates_of_one_new_list_give_list_exists_not_a_database_error(
    db: Database, store: ListStore, tmp_path: Path
) -> None:
    path = text_list(tmp_path / "new.txt", range(10))
    overlap = Overlap(db.engine, arrived=lambda s: "FROM hash_lists" in s)
    try:
        results = overlap.run(lambda: store.import_file("fresh", path), lambda: store.create("fresh"))
    finally:
        overlap.close()
    assert results["first"].created_list and results["first"].version == 1
    assert isinstance(results["second"], ListExistsError), results["second"]
    assert store.get("fresh").counts == {"active": 10}
