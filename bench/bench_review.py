"""Review: decisions needed to settle a scanned case, and queue latency with 100,000 items.

    .venv/bin/python bench/bench_review.py [--files 2000] [--items 100000] [--calls 200]
        [--db both|sqlite|postgresql] [--dir /tmp/hw-bench-review] [--skip-decisions]

1. Decisions: the scan benchmark's kind of tree (``bench_scan.make_tree``, ``--files`` files:
   photos that re-use a few pictures, archives of pictures, documents), scanned with a known
   list built from the MD5s of some of its pictures, the case imported. The decisions needed to
   settle every new item are one per queued target: a cluster of near-duplicates, an item in
   no cluster, a known match to confirm. The reference is one decision per reviewable item
   (new or known), as a tool without clustering or list pre-categorisation needs.
2. Latency: a case of ``--items`` items written straight into the tables (clusters of 2–8
   near-duplicates, other new media, known matches, documents), then ``queue`` (the next 20
   targets for a reviewer) and ``item`` (an item's details), through the library and over HTTP
   (``TestClient``, a person's key), p50/p99 of ``--calls`` calls each. The reference, timed in
   the same run on the same table: a plain ``SELECT ... ORDER BY rank LIMIT 20`` and a select
   of one item by id. Then the review pages as a signed-in browser gets them (a session
   cookie): the queue page and the next target's page (``page:`` rows).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _databases import drop_database, fresh_databases
from bench_scan import make_tree
from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import ListKind
from hashwatch.review.consensus import ReviewStore
from hashwatch.store.models import CASE_CLUSTERS, CASE_ITEMS, CASES, utcnow
from hashwatch.store.service import KeyStore, Role
from hashwatch.store.users import Actor, UserRole, UserStore
from hashwatch.web.app import create_app
from hashwatch.web.auth import SESSION_COOKIE
from hashwatch.web.settings import ServeSettings

CHEAP = PasswordHasher(1, 8 * 1024, 1)
CASE_UID = "bench-review-100k"
PAGE = 20


def decisions(root: Path, files: int) -> None:
    tree = root / "tree"
    t0 = time.perf_counter()
    make_tree(tree, files)
    on_disk = sorted(p for p in tree.rglob("*") if p.is_file() and not p.name.startswith("."))
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    hw = Hashwatch(Settings(database_url=f"sqlite:///{work / 'hw.sqlite3'}", data_dir=work))
    try:
        pictures = [p for p in on_disk if p.suffix == ".jpg"]
        known = pictures[: len(pictures) // 10 : 7]  # some of the pictures, by their MD5
        rows = ["md5,category"] + [f"{hashlib.md5(p.read_bytes()).hexdigest()},1" for p in known]
        (work / "known.csv").write_text("\n".join(rows) + "\n")
        hw.lists.import_file("known", work / "known.csv", kind=ListKind.KNOWN)
        t = time.perf_counter()
        outcome = hw.scan([tree], work / "case", workers=2)
        t_scan = time.perf_counter() - t
        imported = hw.cases.import_case(work / "case", actor="bench")
        users = UserStore(hw.db, hasher=CHEAP)
        info = users.add("ann", "reviewer", "ann's long passphrase", actor="bench")
        ann = Actor(0, "ann", UserRole.REVIEWER, user_id=info.id)
        queue = ReviewStore(hw.db, hw.lists).queue(imported.case.case_uid, ann, limit=10**9)
        items = hw.cases.items(imported.case.case_uid)
    finally:
        hw.close()
    by_status: dict[str, int] = {}
    for item in items:
        by_status[item.scan_status] = by_status.get(item.scan_status, 0) + 1
    reviewable = by_status.get("new", 0) + by_status.get("known", 0)
    clusters = [e for e in queue if e.target.cluster is not None]
    singles = [e for e in queue if e.target.item is not None and e.scan_status == "new"]
    confirms = [e for e in queue if e.target.item is not None and e.scan_status == "known"]
    in_clusters = sum(len(e.item_ids) for e in clusters)
    print(
        f"tree: {len(on_disk)} files ({time.perf_counter() - t0:.0f} s with the scan's "
        f"{t_scan:.0f} s), {len(items)} items with archive members; scan statuses {by_status}; "
        f"known list: {len(known)} pictures' MD5s"
    )
    print(
        f"new items {by_status.get('new', 0)}: {in_clusters} in {len(clusters)} clusters, "
        f"{len(singles)} in no cluster; known matches to confirm: {len(confirms)}"
    )
    print(
        f"decisions: hashwatch {len(queue)} (clusters {len(clusters)} + singles {len(singles)} "
        f"+ confirms {len(confirms)}); reference one per item {reviewable}; "
        f"ratio {reviewable / max(1, len(queue)):.1f}x fewer"
    )
    print(f"outcome: {outcome.summary.by_status}")


def build_case(hw: Hashwatch, items: int) -> tuple[int, list[int]]:
    """A case of ``items`` generated rows in the scan's rank order; returns its id and some
    item ids spread over the case."""
    with hw.db.write(lock="cases") as conn:
        inserted = conn.execute(
            insert(CASES).values(
                case_uid=CASE_UID,
                case_number="BENCH-100K",
                case_dir="/nonexistent/bench-case",
                evidence=[],
                scan={},
                consensus_k=3,
                imported_at=utcnow(),
                imported_by="bench",
            )
        ).inserted_primary_key
        assert inserted is not None
        case_id = inserted[0]
        clusters, rows, rank, number = [], [], 0, 0
        n_cluster_items = items * 45 // 100  # 45 % in clusters, 30 % other new, 10 % known
        while rank < n_cluster_items:
            number += 1
            size = 2 + number % 7
            members = [f"dir{number // 100:04d}/c{number}-{m}.jpg" for m in range(size)]
            clusters.append(
                {
                    "case_id": case_id,
                    "number": number,
                    "priority": 1.0 / number,
                    "reasons": [f"{size} near-duplicate pictures"],
                    "representative": members[0],
                    "members": members,
                    "nearest_known_distance": None,
                    "review_status": "pending",
                }
            )
            for path in members:
                rank += 1
                rows.append(_row(case_id, path, rank, "new", number))
        for status, share in (("new", 30), ("known", 10), ("other", 15)):
            for _ in range(items * share // 100):
                rank += 1
                rows.append(_row(case_id, f"flat/{status}{rank}.jpg", rank, status, None))
        while rank < items:
            rank += 1
            rows.append(_row(case_id, f"flat/ignorable{rank}.txt", rank, "ignorable", None))
        conn.execute(insert(CASE_CLUSTERS), clusters)
        for start in range(0, len(rows), 5000):
            conn.execute(insert(CASE_ITEMS), rows[start : start + 5000])
        ids = [
            int(i)
            for i in conn.execute(select(CASE_ITEMS.c.id).order_by(CASE_ITEMS.c.id)).scalars()
        ]
    if not hw.db.is_sqlite:
        with hw.db.engine.connect() as conn:
            conn.execute(text("ANALYZE case_items, case_clusters"))
            conn.commit()
    return int(case_id), ids[:: max(1, len(ids) // 500)]


def _row(case_id: int, path: str, rank: int, status: str, cluster: int | None) -> dict[str, object]:
    known = status == "known"
    return {
        "case_id": case_id,
        "root": "/nonexistent/evidence",
        "path": path,
        "size": 100_000 + rank,
        "sha256": hashlib.sha256(path.encode()).hexdigest(),
        "digests": {"md5": hashlib.md5(path.encode()).hexdigest()},
        "media_type": "image" if path.endswith(".jpg") else "other",
        "mime": "image/jpeg" if path.endswith(".jpg") else "text/plain",
        "scan_status": status,
        "cluster_number": cluster,
        "rank": rank,
        "priority": None,
        "reasons": ["matches list known (category 1) by md5"] if known else [],
        "exif": None,
        "matches": [{"list": "known", "category": "1", "hash_type": "md5"}] if known else [],
        "error": None,
        "review_status": "pending",
    }


def timed(fn: Callable[[int], object], calls: int) -> tuple[float, float]:
    fn(0)  # warm
    out = []
    for i in range(calls):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(len(out) * 0.99))]


def latency(root: Path, which: str, items: int, calls: int) -> None:
    print("| database | call | calls | p50 ms | p99 ms | × reference p50 |")
    print("|---|---|---:|---:|---:|---:|")
    for label, url, pg_name in fresh_databases(root, which):
        _one_database(root, label, url, pg_name, items, calls)


def _one_database(
    root: Path, label: str, url: str, pg_name: str | None, items: int, calls: int
) -> None:
    hw = Hashwatch(Settings(database_url=url, data_dir=root / "data"))
    try:
        t = time.perf_counter()
        case_id, some_ids = build_case(hw, items)
        built = time.perf_counter() - t
        users = UserStore(hw.db, hasher=CHEAP)
        info = users.add("ann", "reviewer", "ann's long passphrase", actor="bench")
        ann = Actor(0, "ann", UserRole.REVIEWER, user_id=info.id)
        key = KeyStore(hw.db).create("ann-key", Role.MATCHER, user="ann").token
        review = ReviewStore(hw.db, hw.lists)
        assert len(review.queue(CASE_UID, ann, limit=PAGE)) == PAGE

        def ref_queue(_: int) -> object:
            with hw.db.read() as conn:
                return conn.execute(
                    select(CASE_ITEMS)
                    .where(CASE_ITEMS.c.case_id == case_id)
                    .order_by(CASE_ITEMS.c.rank)
                    .limit(PAGE)
                ).all()

        def ref_item(i: int) -> object:
            with hw.db.read() as conn:
                return conn.execute(
                    select(CASE_ITEMS).where(CASE_ITEMS.c.id == some_ids[i % len(some_ids)])
                ).first()

        results: list[tuple[str, tuple[float, float], float]] = []
        q_ref = timed(ref_queue, calls)
        i_ref = timed(ref_item, calls)
        results.append((f"reference: SELECT ... ORDER BY rank LIMIT {PAGE}", q_ref, q_ref[0]))
        results.append(("reference: SELECT one item by id", i_ref, i_ref[0]))
        lib_q = timed(lambda _: review.queue(CASE_UID, ann, limit=PAGE), calls)
        results.append((f"library: queue (next {PAGE})", lib_q, q_ref[0]))
        lib_i = timed(lambda i: review.item(CASE_UID, some_ids[i % len(some_ids)]), calls)
        results.append(("library: item", lib_i, i_ref[0]))
        app = create_app(hw, ServeSettings(background=False))
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(app) as client:

            def http_queue(_: int) -> object:
                answer = client.get(f"/v1/cases/{CASE_UID}/queue", headers=headers)
                assert answer.status_code == 200, answer.text
                return answer

            def http_item(i: int) -> object:
                item_id = some_ids[i % len(some_ids)]
                answer = client.get(f"/v1/cases/{CASE_UID}/items/{item_id}", headers=headers)
                assert answer.status_code == 200, answer.text
                return answer

            results.append(("HTTP: GET .../queue", timed(http_queue, calls), q_ref[0]))
            results.append(("HTTP: GET .../items/{id}", timed(http_item, calls), i_ref[0]))
        results += _pages(hw, app, review, ann, calls, q_ref[0])
        for name, (p50, p99), ref in results:
            print(f"| {label} | {name} | {calls} | {p50:.2f} | {p99:.2f} | {p50 / ref:.1f}× |")
        print(f"({label}: {items} items written in {built:.1f} s)", flush=True)
    finally:
        hw.close()
        drop_database(pg_name)


def _pages(
    hw: Hashwatch, app: object, review: ReviewStore, ann: Actor, calls: int, ref: float
) -> list[tuple[str, tuple[float, float], float]]:
    """The review pages as a signed-in browser gets them: the queue page (up to 500 targets
    in sections) and the next target's page (its items, the decision form, the reviewer's
    neighbours in the queue, second-look marks and the break prompt)."""
    users = UserStore(hw.db, hasher=CHEAP)
    session = users.open_session(users.get("ann"))
    following = str(review.queue(CASE_UID, ann, limit=1)[0].target)
    out = []
    with TestClient(app, follow_redirects=False) as client:  # type: ignore[arg-type]
        client.cookies.set(SESSION_COOKIE, session.token)

        def page(path: str) -> Callable[[int], object]:
            def get(_: int) -> object:
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)
                return answer

            return get

        queue_page = page(f"/review/cases/{CASE_UID}")
        next_page = page(f"/review/cases/{CASE_UID}/targets/{following}")
        out.append(("page: GET /review/cases/{case} (queue)", timed(queue_page, calls), ref))
        out.append(("page: GET .../targets/{next} (next item)", timed(next_page, calls), ref))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--db", default="both", choices=["both", "sqlite", "postgresql"])
    ap.add_argument("--dir", default="/tmp/hw-bench-review")
    ap.add_argument("--skip-decisions", action="store_true")
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    if not args.skip_decisions:
        decisions(root, args.files)
    latency(root, args.db, args.items, args.calls)


if __name__ == "__main__":
    main()
