"""Adding entries to a 1,000,000-entry list: p50/p99 of a single add, and 995 in one request.

    .venv/bin/python bench/bench_list_add.py [--entries 1000000] [--db sqlite|postgresql|both]
                                             [--adds 200] [--dir /tmp/hw-bench-add]

The list is built quickly: one entry through the library (which creates the list and its
version), then the rest written straight into the tables (SQLite: executemany; PostgreSQL:
COPY), each entry an MD5 and a PDQ hash generated from its number. Then, with the service's
index caught up:

- library: ``ListStore.add_records`` of one new entry, then the index catching up (what the
  service does after a write), ``--adds`` times;
- HTTP: ``POST /v1/lists/{name}/entries`` with one new entry (the route refreshes the
  service's index before it answers), ``--adds`` times;
- HTTP, 995 entries in one request, 5 times.

Before/after cannot be shown in one run, so each row is also given as a ratio to a reference
measured in the same run on the same database: a plain SQLAlchemy Core INSERT of the same rows
(the entries and their two hashes each) in one transaction, with nothing else.
PostgreSQL gets a throwaway database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from _databases import drop_database, fresh_databases
from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import EntryRecord
from hashwatch.signals.types import HashType
from hashwatch.store.models import ENTRIES, HASHES, LISTS

LIST = "agency"


def md5(i: int) -> str:
    return hashlib.md5(f"bench-add-{i}".encode()).hexdigest()


def pdq(i: int) -> str:
    return hashlib.sha256(f"bench-add-{i}".encode()).hexdigest()


def record(i: int) -> EntryRecord:
    return EntryRecord(
        hashes=((HashType.MD5, md5(i)), (HashType.PDQ, pdq(i))), category="1", source=f"r{i}"
    )


def build(hw: Hashwatch, count: int) -> None:
    """A list of ``count`` entries: the first through the library, the rest bulk-written."""
    hw.lists.add_records(LIST, [record(0)], source="bench build")
    with hw.db.read() as conn:
        lst = conn.execute(select(LISTS).where(LISTS.c.name == LIST)).one()
        first = conn.execute(select(ENTRIES).where(ENTRIES.c.list_id == lst.id)).one()
    common = {
        "list_id": lst.id,
        "category": "1",
        "tags": [],
        "extra": {},
        "status": "active",
        "import_id": first.import_id,
        "added_version": 1,
        "updated_version": 1,
        "seen_version": 1,
    }
    step = 20_000
    with hw.db.engine.begin() as conn:
        common["change_seq"] = hw.db.next_change_seq(conn)
        for start in range(1, count, step):
            stop = min(count, start + step)
            ids = conn.execute(
                insert(ENTRIES).returning(ENTRIES.c.id, ENTRIES.c.key),
                [{**common, "key": f"md5:{md5(i)}", "source": f"r{i}"} for i in range(start, stop)],
            ).all()
            by_key = {key: entry_id for entry_id, key in ids}
            hash_rows: list[dict[str, Any]] = []
            for i in range(start, stop):
                entry_id = by_key[f"md5:{md5(i)}"]
                for pos, (htype, value) in enumerate((("md5", md5(i)), ("pdq", pdq(i)))):
                    hash_rows.append(
                        {
                            "entry_id": entry_id,
                            "list_id": lst.id,
                            "hash_type": htype,
                            "value": value,
                            "position": pos,
                            "active": True,
                            "change_seq": common["change_seq"],
                            "frame": None,
                            "frame_time": None,
                            "quality": None,
                        }
                    )
            conn.execute(insert(HASHES), hash_rows)
    if not hw.db.is_sqlite:
        with hw.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def reference(hw: Hashwatch, list_id: int, import_id: int, numbers: list[int]) -> None:
    """A plain SQLAlchemy Core INSERT of the rows an add writes (entries, two hashes each),
    in one transaction and nothing else: the floor an add is compared with."""
    with hw.db.engine.begin() as conn:
        ids = conn.execute(
            insert(ENTRIES).returning(ENTRIES.c.id),
            [
                {
                    "list_id": list_id,
                    "key": f"md5:{md5(i)}",
                    "category": "1",
                    "tags": [],
                    "extra": {},
                    "status": "active",
                    "import_id": import_id,
                    "source": f"r{i}",
                    "added_version": 1,
                    "updated_version": 1,
                    "seen_version": 1,
                    "change_seq": 0,
                }
                for i in numbers
            ],
        ).scalars()
        conn.execute(
            insert(HASHES),
            [
                {"entry_id": e, "list_id": list_id, "hash_type": t, "value": v, "position": k}
                for e, i in zip(ids, numbers, strict=True)
                for k, (t, v) in enumerate((("md5", md5(i)), ("pdq", pdq(i))))
            ],
        )


def measure(label: str, hw: Hashwatch, count: int, adds: int, start: int = 0) -> list[str]:
    """Rows of the result table for one database holding a list of ``count`` entries; the
    entries added are numbered from ``start`` (default: ten times ``count``)."""
    from fastapi.testclient import TestClient

    from hashwatch.store.service import KeyStore, Role
    from hashwatch.web.app import create_app
    from hashwatch.web.settings import ServeSettings

    with hw.db.read() as conn:
        lst = conn.execute(select(LISTS).where(LISTS.c.name == LIST)).one()
        first = conn.execute(select(ENTRIES).where(ENTRIES.c.list_id == lst.id).limit(1)).one()
    hw.pdq_index.refresh()
    n = iter(range(start or 10 * count, 10**12))

    def library() -> None:
        hw.lists.add_records(LIST, [record(next(n))], source="bench add")
        hw.pdq_index.refresh()  # what the service does after a write: matchable now

    def ref(k: int) -> Callable[[], None]:
        return lambda: reference(hw, lst.id, first.import_id, [next(n) for _ in range(k)])

    ref1 = timed(ref(1), adds)
    ref995 = timed(ref(995), 5)
    lib = timed(library, adds)
    token = KeyStore(hw.db).create(f"bench-{start or count}", Role.CURATOR).token
    headers = {"Authorization": f"Bearer {token}"}

    def entry(i: int) -> dict[str, Any]:
        return {"hashes": [{"type": "md5", "value": md5(i)}, {"type": "pdq", "value": pdq(i)}]}

    with TestClient(create_app(hw, ServeSettings(refresh_interval_s=3600))) as client:

        def post(k: int) -> Callable[[], None]:
            def run() -> None:
                body = {"entries": [entry(next(n)) for _ in range(k)]}
                r = client.post(f"/v1/lists/{LIST}/entries", headers=headers, json=body)
                assert r.status_code == 201, r.text

            return run

        http = timed(post(1), adds)
        many = timed(post(995), 5)
    rows = []
    for what, values, base in (
        ("reference: Core INSERT of 1 entry", ref1, ref1),
        ("library: add_records, 1 entry, index caught up", lib, ref1),
        ("HTTP: POST entries, 1 entry", http, ref1),
        ("reference: Core INSERT of 995 entries", ref995, ref995),
        ("HTTP: POST entries, 995 entries", many, ref995),
    ):
        rows.append(
            f"| {label} | {what} | {len(values)} | {p(values, 0.5) * 1000:.1f} "
            f"| {p(values, 0.99) * 1000:.1f} | {p(values, 0.5) / p(base, 0.5):.1f}× |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    ap.add_argument("--adds", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/hw-bench-add")
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    targets = fresh_databases(work, args.db)
    rows = []
    try:
        for label, url, _ in targets:
            data = work / label.lower()
            shutil.rmtree(data, ignore_errors=True)
            hw = Hashwatch(Settings(database_url=url, data_dir=data))
            start = time.perf_counter()
            build(hw, args.entries)
            built = time.perf_counter() - start
            start = time.perf_counter()
            size = len(hw.pdq_index)
            print(
                f"{label}: {args.entries:,} entries built in {built:.0f} s, "
                f"index of {size:,} opened in {time.perf_counter() - start:.1f} s",
                file=sys.stderr,
            )
            rows += measure(label, hw, args.entries, args.adds)
            hw.close()
    finally:
        for _, _, pg_name in targets:
            drop_database(pg_name)
    print(f"list of {args.entries:,} entries; times in ms; × = p50 over the reference's p50")
    print("| database | operation | runs | p50 ms | p99 ms | × reference |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
