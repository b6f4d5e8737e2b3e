"""Settling is instant: adding an entry to a large list costs the same as to a small one, and
the entry is matchable as soon as the call returns (issue 10, "Consensus").

An investigator's decision adds one entry to the agency's list, which may hold a million
entries. The work one add does (the write, then the service's index catching up) must not
grow with the list: it is measured here as the database's own work — SQLite's virtual-machine
steps, PostgreSQL's rows read by each statement (EXPLAIN ANALYZE) — on a list of 5,000
entries and of 10,000, which must cost the same. Timings are in ``bench/bench_list_add.py``.
All hashes are generated from numbers: benign data only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, insert, select

from hashwatch.app import Hashwatch
from hashwatch.lists.model import EntryRecord
from hashwatch.signals.types import HashType
from hashwatch.store.models import ENTRIES, HASHES, LISTS
from hashwatch.store.service import Role
from tests.serve_helpers import client, make_key

LIST = "agency"
# Two sizes of list, the second twice the first: scanning it would cost twice as much.
SMALL, LARGE = 5_000, 10_000


def md5(i: int) -> str:
    return hashlib.md5(f"benign-add-{i}".encode()).hexdigest()


def pdq(i: int) -> str:
    return hashlib.sha256(f"benign-add-{i}".encode()).hexdigest()


def record(i: int) -> EntryRecord:
    return EntryRecord(
        hashes=((HashType.MD5, md5(i)), (HashType.PDQ, pdq(i))), category="1", source=f"r{i}"
    )


def grow(hw: Hashwatch, start: int, stop: int) -> None:
    """Entries ``start`` .. ``stop - 1`` written straight into the list's tables (what an
    import of that many would leave, in a fraction of the time)."""
    with hw.db.read() as conn:
        lst = conn.execute(select(LISTS).where(LISTS.c.name == LIST)).one()
        first = conn.execute(select(ENTRIES).where(ENTRIES.c.list_id == lst.id).limit(1)).one()
    with hw.db.engine.begin() as conn:
        same = {"list_id": lst.id, "change_seq": hw.db.next_change_seq(conn)}
        ids = conn.execute(
            insert(ENTRIES).returning(ENTRIES.c.id, ENTRIES.c.source),
            [
                {
                    **same,
                    "key": f"md5:{md5(i)}",
                    "category": "1",
                    "tags": [],
                    "extra": {},
                    "status": "active",
                    "import_id": first.import_id,
                    "source": f"r{i}",
                    "added_version": 1,
                    "updated_version": 1,
                    "seen_version": 1,
                }
                for i in range(start, stop)
            ],
        ).all()
        rows = [
            {**same, "entry_id": entry_id, "hash_type": t, "value": v, "position": pos}
            for entry_id, source in ids
            for pos, (t, v) in enumerate(
                (("md5", md5(int(source[1:]))), ("pdq", pdq(int(source[1:]))))
            )
        ]
        conn.execute(insert(HASHES), rows)
    if not hw.db.is_sqlite:
        with hw.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE entries, entry_hashes")
            conn.commit()


@contextmanager
def database_work(hw: Hashwatch) -> Iterator[dict[str, int]]:
    """Count the statements run inside the block and the work the database did for them."""
    counted = {"statements": 0, "work": 0}
    selects: list[tuple[str, Any]] = []
    touched: list[Any] = []

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        counted["statements"] += 1
        if hw.db.is_sqlite:
            # Called every 100 virtual-machine instructions, fetching included.
            raw = conn.connection.driver_connection
            raw.set_progress_handler(step, 100)
            touched.append(raw)
        elif statement.lstrip().upper().startswith("SELECT"):
            selects.append((statement, params))

    def step() -> int:
        counted["work"] += 1
        return 0

    event.listen(hw.db.engine, "before_cursor_execute", before)
    try:
        yield counted
    finally:
        event.remove(hw.db.engine, "before_cursor_execute", before)
        if hw.db.is_sqlite:
            for raw in touched:
                raw.set_progress_handler(None, 0)
    for statement, params in selects:
        counted["work"] += _rows_read(hw, statement, params)


def _rows_read(hw: Hashwatch, statement: str, params: Any) -> int:
    """Rows PostgreSQL read from the list tables to answer ``statement``."""
    with hw.db.engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        plan = raw.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params).fetchone()[0]
        conn.rollback()
    if isinstance(plan, str):
        plan = json.loads(plan)
    total = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal total
        if node.get("Relation Name") in ("entries", "entry_hashes"):
            rows = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            total += int(rows * node.get("Actual Loops", 1))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return total


def add_one(hw: Hashwatch, i: int) -> Callable[[], None]:
    def run() -> None:
        hw.lists.add_records(LIST, [record(i)], source="decision")
        hw.pdq_index.refresh()  # what the service does after a write

    return run


def test_adding_one_entry_costs_the_same_at_5000_and_10000_entries(hw: Hashwatch) -> None:
    hw.lists.add_records(LIST, [record(0)], source="first decision")
    grow(hw, 1, SMALL)
    assert len(hw.pdq_index) == SMALL  # caught up: the next refresh sees only the add
    with database_work(hw) as small:
        add_one(hw, 1_000_000)()
    grow(hw, SMALL, LARGE)
    hw.pdq_index.refresh()
    assert len(hw.pdq_index) == LARGE + 1
    with database_work(hw) as large:
        add_one(hw, 1_000_001)()
    assert len(hw.pdq_index) == LARGE + 2
    assert large["statements"] == small["statements"]
    # A scan would read twice the rows (or steps) for the larger list; an add
    # that reads only what it writes costs within a few B-tree levels of the same.
    assert large["work"] <= small["work"] * 1.2 + 10, (small, large)
    assert small["work"] < 100, small  # (each step: 100 SQLite instructions)


def test_an_entry_added_over_http_is_matchable_when_the_call_returns(hw: Hashwatch) -> None:
    hw.lists.add_records(LIST, [record(0)], source="first decision")
    grow(hw, 1, SMALL)
    curator = make_key(hw, Role.CURATOR, "lead")
    matcher = make_key(hw, Role.MATCHER, "platform")
    wanted = {"signals": [{"type": "pdq", "value": pdq(7_000_000)}]}
    with client(hw, refresh_interval_s=3600) as c:  # no background refresh to lean on
        assert c.post("/v1/match", headers=matcher, json=wanted).json()["matches"] == []
        entry = {
            "entries": [{"hashes": [{"type": "pdq", "value": pdq(7_000_000)}], "category": "1"}]
        }
        with database_work(hw) as work:
            added = c.post(f"/v1/lists/{LIST}/entries", headers=curator, json=entry)
        assert added.status_code == 201, added.text
        assert added.json()["added"] == 1 and added.json()["version"] == 2
        found = c.post("/v1/match", headers=matcher, json=wanted).json()["matches"]
        assert [(m["list"], m["hash_type"], m["category"]) for m in found] == [(LIST, "pdq", "1")]
        # Revoking it reaches the index the same way (the entry changed, not its hash).
        revoke = {"hashes": [{"type": "pdq", "value": pdq(7_000_000)}], "reason": "mistake"}
        r = c.post(f"/v1/lists/{LIST}/entries/revoke", headers=curator, json=revoke)
        assert r.status_code == 200, r.text
        assert c.post("/v1/match", headers=matcher, json=wanted).json()["matches"] == []
    assert len(hw.pdq_index) == SMALL
    assert work["work"] < 100, work  # nothing read in proportion to the list
