"""List integrity: concurrent writers, empty or shrinking files, the audit of every write,
field sizes and database errors, one list-name rule.

Every list here is made of digests of generated benign strings. Concurrency is made to
overlap deterministically: the first writer is held inside its transaction (at its first
``list_imports`` row, after it has read the list) until the second writer has reached the
database, and only then goes on.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select

from hashwatch.app import Hashwatch
from hashwatch.errors import (
    ConfigError,
    DatabaseConflictError,
    HashwatchError,
    ListExistsError,
    ListFormatError,
)
from hashwatch.lists.model import CategoryScheme, EntryRecord, EntryStatus
from hashwatch.signals.types import HashType
from hashwatch.store import list_status
from hashwatch.store.audit import AuditTrail, actor_or_user
from hashwatch.store.database import Database
from hashwatch.store.lists import ListStore
from hashwatch.store.models import ENTRIES
from hashwatch.store.service import Role
from tests.serve_helpers import client, make_key

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
        results = overlap.run(
            lambda: store.import_file("fresh", path), lambda: store.create("fresh")
        )
    finally:
        overlap.close()
    assert results["first"].created_list and results["first"].version == 1
    assert isinstance(results["second"], ListExistsError), results["second"]
    assert store.get("fresh").counts == {"active": 10}


# -- files with no records, and replaces that would empty a list -------------------------------

CASES = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"


def vics_case(
    path: Path, numbers: range, *, media_key: str = "Media", as_object: bool = False
) -> Path:
    media = [{"MediaID": n, "Category": 1, "MD5": md5(i)} for n, i in enumerate(numbers, 1)]
    value: Any = {"records": media} if as_object else media
    path.write_text(
        json.dumps({"@odata.context": CASES, "value": [{"CaseNumber": "c-1", media_key: value}]})
    )
    return path


def test_a_vics_case_with_media_as_an_object_is_refused_and_the_list_kept(
    store: ListStore, tmp_path: Path
) -> None:
    store.import_file("agency", vics_case(tmp_path / "v1.json", range(1000)))
    with pytest.raises(ListFormatError, match="'Media' holds an object; expected an array"):
        store.import_file("agency", vics_case(tmp_path / "obj.json", range(1000), as_object=True))
    info = store.get("agency")
    assert (info.version, info.counts) == (1, {"active": 1000})


def test_a_vics_case_spelling_media_in_lower_case_is_read(store: ListStore, tmp_path: Path) -> None:
    store.import_file("agency", vics_case(tmp_path / "v1.json", range(1000)))
    report = store.import_file(
        "agency", vics_case(tmp_path / "lower.json", range(500, 1500), media_key="media")
    )
    assert (report.version, report.records, report.added, report.withdrawn) == (2, 1000, 500, 500)


def test_a_file_without_records_is_an_error_not_an_empty_replace(
    store: ListStore, tmp_path: Path
) -> None:
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(100)))
    empty_case = vics_case(tmp_path / "empty.json", range(0))
    with pytest.raises(ListFormatError, match="no Media records found"):
        store.import_file("agency", empty_case)
    comments = tmp_path / "comments.txt"
    comments.write_text("# nothing but a comment\n\n")
    with pytest.raises(ListFormatError, match=r"no records found in comments\.txt"):
        store.import_file("agency", comments, fmt="text")
    assert store.get("agency").counts == {"active": 100}


def test_a_replace_withdrawing_most_of_a_list_needs_force(db: Database, tmp_path: Path) -> None:
    store = ListStore(db)  # the default: at most half of a list withdrawn without force
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(1000)))
    truncated = text_list(tmp_path / "truncated.txt", range(100))
    with pytest.raises(ConfigError, match=r"would withdraw 900 of the 1000 .*--force"):
        store.import_file("agency", truncated)
    assert store.get("agency").counts == {"active": 1000}
    # Half or less goes through; --append never withdraws.
    store.import_file("agency", text_list(tmp_path / "half.txt", range(500)))
    assert store.get("agency").counts == {"active": 500, "withdrawn": 500}
    report = store.import_file("agency", truncated, force=True)
    assert (report.withdrawn, report.forced) == (400, True)
    # The share is a setting.
    strict = ListStore(db, max_withdraw_share=0.0)
    with pytest.raises(ConfigError, match="more than the 0% allowed"):
        strict.import_file("agency", text_list(tmp_path / "one-less.txt", range(99)))


# -- the audit of every write ---------------------------------------------------------------------


def test_every_list_write_is_audited_with_its_actor_and_survives_the_delete(
    db: Database, store: ListStore, tmp_path: Path
) -> None:
    me = actor_or_user(None)  # the library and the CLI audit as the operating-system user
    store.create("agency", scheme=CategoryScheme.US)
    store.configure("agency", pdq_threshold=20, actor="key:curator")
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(10)))
    record = EntryRecord(hashes=((HashType.MD5, md5(99)),), category="1", source="api entry 1")
    store.add_records("agency", [record], source="api (1 entries)")
    store.set_status("agency", [(HashType.MD5, md5(1))], reason="benign test", actor="alice")
    store.set_status("agency", [(HashType.MD5, md5(2))], status=EntryStatus.DISPUTED)
    store.set_status("agency", [(HashType.MD5, md5(2))], status=EntryStatus.ACTIVE)
    store.export("agency", tmp_path / "out.csv", "csv")
    store.delete("agency")
    events = list(reversed(AuditTrail(db).events(target="agency")))
    assert [(e.action, e.actor) for e in events] == [
        ("list.created", me),
        ("list.configured", "key:curator"),
        ("list.imported", me),
        ("entries.added", me),
        ("entries.revoked", "alice"),
        ("entries.disputed", me),
        ("entries.reinstated", me),
        ("list.exported", me),
        ("list.deleted", me),
    ]
    imported, deleted = events[2].details, events[-1].details
    assert (imported["version"], imported["added"], imported["file"]) == (1, 10, "v1.txt")
    assert events[4].details["reason"] == "benign test"
    assert deleted["entries"] == {"active": 10, "revoked": 1}
    assert deleted["status_changes"] == {"revoked": 1, "disputed": 1, "active": 1}
    assert deleted["imports"] == 2 and deleted["version"] == 2
    text = json.dumps([e.as_dict() for e in events], default=str)
    assert md5(1) not in text and md5(99) not in text  # counts and names, never hashes


def test_a_revoke_of_many_entries_with_a_long_reason_commits_with_its_audit(
    db: Database, store: ListStore, tmp_path: Path
) -> None:
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(1500)))
    hashes = [(HashType.MD5, md5(i)) for i in range(1500)]
    changes = store.set_status("agency", hashes, reason="r" * 5000)
    assert len(changes) == 1500
    (event,) = AuditTrail(db).events(action_prefix="entries.", target="agency")
    assert event.details["entries"] == 1500 and len(event.details["entry_ids"]) <= 51
    # A reason too long for the record is refused before anything changes.
    with pytest.raises(ConfigError, match="reason has 20000 characters"):
        store.set_status("agency", hashes, status=EntryStatus.ACTIVE, reason="r" * 20000)
    assert store.get("agency").counts == {"revoked": 1500}


def test_a_change_whose_audit_record_fails_is_rolled_back(
    store: ListStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(5)))

    def failing(*_args: Any, **_kwargs: Any) -> None:
        raise ConfigError("the audit record cannot be written")

    monkeypatch.setattr(list_status, "record_audit", failing)
    with pytest.raises(ConfigError, match="audit record"):
        store.set_status("agency", [(HashType.MD5, md5(1))])
    assert store.get("agency").counts == {"active": 5}


# -- field sizes and database errors ------------------------------------------------------------


def test_an_oversize_field_is_a_record_error_and_nothing_is_committed(
    store: ListStore, tmp_path: Path
) -> None:
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(10)))
    media = [{"MediaID": n, "Category": 1, "MD5": md5(n)} for n in range(1, 10)]
    media[2]["Category"] = "9" * 100  # record 3: longer than the 64 characters kept
    path = tmp_path / "oversize.json"
    path.write_text(json.dumps({"value": media}))
    with pytest.raises(ListFormatError) as caught:
        store.import_file("agency", path)
    message = str(caught.value)
    assert message.startswith("record 3: category has 100 characters, more than the 64")
    assert md5(3) not in message and "9" * 64 not in message
    media[2]["Category"] = 1
    media[4]["DateUpdated"] = "2020-01-01" * 10
    path.write_text(json.dumps({"value": media}))
    with pytest.raises(ListFormatError, match="record 5: date has 100 characters"):
        store.import_file("agency", path)
    with pytest.raises(ConfigError, match="source organisation has 300 characters"):
        store.import_file("agency", text_list(tmp_path / "v2.txt", range(12)), source_org="o" * 300)
    info = store.get("agency")
    assert (info.version, info.counts, info.source_org) == (1, {"active": 10}, None)


def test_a_database_error_is_a_hashwatch_error_without_the_values(
    db: Database, store: ListStore, tmp_path: Path
) -> None:
    store.import_file("agency", text_list(tmp_path / "v1.txt", range(3)))
    row = store.get("agency")
    duplicate = {
        "list_id": row.id,
        "key": f"md5:{md5(1)}",
        "status": "active",
        "added_version": 1,
        "updated_version": 1,
        "seen_version": 1,
        "change_seq": 1,
        "tags": [],
        "extra": {},
    }
    with pytest.raises(HashwatchError) as caught, db.begin() as conn:
        conn.execute(insert(ENTRIES).values(**duplicate))
    assert isinstance(caught.value, DatabaseConflictError)  # HTTP 409
    assert "a constraint failed" in str(caught.value) and "entries" in str(caught.value)
    assert md5(1) not in str(caught.value)
    assert db.engine.hide_parameters


# -- one list-name rule ---------------------------------------------------------------------------

BAD_NAMES = ["a\r\nb", "nul\x00name", "tab\tname", "esc\x1b[31m", "x" * 201, "  ", " padded"]


def test_a_bad_list_name_is_refused_by_every_way_a_list_is_made(
    store: ListStore, tmp_path: Path
) -> None:
    path = text_list(tmp_path / "l.txt", range(3))
    record = EntryRecord(hashes=((HashType.MD5, md5(1)),), source="api entry 1")
    for name in BAD_NAMES:
        for make in (
            partial(store.create, name),
            partial(store.import_file, name, path),
            partial(store.add_records, name, [record], source="test"),
        ):
            with pytest.raises(ConfigError, match="name"):
                make()
    assert store.all() == []
    store.create("x" * 200)  # the longest name the column holds


def test_over_http_the_same_rules_hold_and_the_key_is_the_actor(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    curator = make_key(sqlite_hw, Role.CURATOR, "cur")
    v1 = text_list(tmp_path / "v1.txt", range(100)).read_bytes()
    short = text_list(tmp_path / "short.txt", range(10)).read_bytes()
    entry = {"entries": [{"hashes": [{"type": "md5", "value": md5(1)}]}]}
    with client(sqlite_hw) as c:
        for bad in ("a%0D%0Ab", "nul%00x", "x" * 201):
            r = c.post(f"/v1/lists/{bad}/import", headers=curator, files={"file": ("l.txt", v1)})
            # the store's rule, as a 422 that explains without repeating the name
            assert r.status_code == 422, r.text
            assert "list name" in r.json()["detail"][0]["msg"], r.text
            r = c.post(f"/v1/lists/{bad}/entries", headers=curator, json=entry)
            assert r.status_code == 404, r.text  # entries go to an existing list only
        url = "/v1/lists/agency/import"
        assert c.post(url, headers=curator, files={"file": ("v1.txt", v1)}).status_code == 200
        refused = c.post(url, headers=curator, files={"file": ("short.txt", short)})
        assert refused.status_code == 400 and "--force" in refused.json()["detail"]
        forced = c.post(
            url, headers=curator, params={"force": "true"}, files={"file": ("s.txt", short)}
        )
        assert forced.status_code == 200 and forced.json()["withdrawn"] == 90
    assert sqlite_hw.lists.all()[0].name == "agency"
    trail = [(e.actor, e.action) for e in AuditTrail(sqlite_hw.db).events(target="agency")]
    assert trail == [("cur", "list.imported"), ("cur", "list.imported")]


def test_categories_a_person_gives_are_checked_against_the_list_scheme(
    sqlite_hw: Hashwatch,
) -> None:
    sqlite_hw.lists.create("caid", scheme=CategoryScheme.UK)
    record = EntryRecord(hashes=((HashType.MD5, md5(1)),), category="7", source="api entry 1")
    with pytest.raises(ConfigError, match=r"api entry 1: category '7' .* UK: A, B, C, NI, 0"):
        sqlite_hw.lists.add_records("caid", [record], source="test")
    curator = make_key(sqlite_hw, Role.CURATOR, "cur")
    entry = {"entries": [{"hashes": [{"type": "md5", "value": md5(2)}], "category": "x"}]}
    with client(sqlite_hw) as c:
        r = c.post("/v1/lists/caid/entries", headers=curator, json=entry)
        assert r.status_code == 400 and "not a code of this list's scheme" in r.json()["detail"]
        entry["entries"][0]["category"] = "ni"
        assert c.post("/v1/lists/caid/entries", headers=curator, json=entry).status_code == 201
    (stored,) = sqlite_hw.lists.records("caid")
    assert stored.category == "NI"
    assert sqlite_hw.lists.get("caid").version == 1
