"""A reviewer's next page of a large case costs the same as of a small one.

A case's rows are written straight into the tables (clusters of near-duplicates, other new
media, known matches, documents: generated paths, no media), as a scan's import ranks them.
The work is counted, not timed: SQLite virtual-machine steps for the queue's next 20 targets
and for a cluster's page. Before, a queue page read every item of the case and a cluster's
members were found by walking the rank index over the whole case, so the work grew with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import event, insert

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.review.consensus import ReviewStore
from hashwatch.review.votes import Target, VoteChoice
from hashwatch.store.models import CASE_CLUSTERS, CASE_ITEMS, CASES, utcnow
from hashwatch.store.users import Actor, UserRole, UserStore

CHEAP = PasswordHasher(1, 8 * 1024, 1)


def _item(case_id: int, path: str, rank: int, status: str, cluster: int | None) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "root": "/evidence",
        "path": path,
        "scan_status": status,
        "cluster_number": cluster,
        "rank": rank,
        "reasons": [],
        "matches": [{"list": "known", "category": "1"}] if status == "known" else [],
        "digests": {},
    }


def _case(hw: Hashwatch, uid: str, items: int) -> None:
    """Half the items in clusters of 4, then other new media, known matches, documents."""
    with hw.db.write(lock="cases") as conn:
        inserted = conn.execute(
            insert(CASES).values(
                case_uid=uid,
                case_dir="/case",
                evidence=[],
                scan={},
                consensus_k=3,
                imported_at=utcnow(),
                imported_by="test",
            )
        ).inserted_primary_key
        assert inserted is not None
        case_id = int(inserted[0])
        rows, clusters = [], []
        for number in range(1, items // 8 + 1):
            clusters.append(
                {
                    "case_id": case_id,
                    "number": number,
                    "priority": 1.0,
                    "reasons": ["near-duplicates"],
                    "representative": f"c{number}-0.jpg",
                    "members": [f"c{number}-{m}.jpg" for m in range(4)],
                }
            )
            rows += [_item(case_id, f"c{number}-{m}.jpg", 0, "new", number) for m in range(4)]
        for status in ("new", "known", "other"):
            rows += [_item(case_id, f"{status}{n}.jpg", 0, status, None) for n in range(items // 6)]
        for rank, row in enumerate(rows, 1):  # the scan's rank order, one rank an item
            row["rank"] = rank
        conn.execute(insert(CASE_CLUSTERS), clusters)
        conn.execute(insert(CASE_ITEMS), rows)


@pytest.fixture
def hw(tmp_path: Path) -> Iterator[Hashwatch]:
    app = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "data")
    )
    yield app
    app.close()


def _steps(hw: Hashwatch, call: Callable[[], object]) -> int:
    """SQLite virtual-machine steps (in tens) that ``call`` made the database take."""
    counted = [0]
    touched: list[Any] = []

    def step() -> int:
        counted[0] += 1
        return 0

    def before(conn: Any, *_: Any) -> None:
        raw = conn.connection.driver_connection
        raw.set_progress_handler(step, 10)
        touched.append(raw)

    event.listen(hw.db.engine, "before_cursor_execute", before)
    try:
        call()
    finally:
        event.remove(hw.db.engine, "before_cursor_execute", before)
        for raw in touched:
            raw.set_progress_handler(None, 0)
    return counted[0]


def test_the_next_page_and_a_cluster_cost_the_same_in_a_case_eight_times_larger(
    hw: Hashwatch,
) -> None:
    _case(hw, "small", 1_000)
    _case(hw, "large", 8_000)
    info = UserStore(hw.db, hasher=CHEAP).add("ann", "reviewer", "ann's long passphrase")
    ann = Actor(0, "ann", UserRole.REVIEWER, user_id=info.id)
    review = ReviewStore(hw.db, hw.lists)

    for case in ("small", "large"):
        page = review.queue(case, ann, limit=20)
        assert [str(e.target) for e in page] == [f"cluster:{n}" for n in range(1, 21)]
        assert len(page[0].item_ids) == 4
        assert review.target(case, Target(cluster=1)).item_ids == page[0].item_ids

    work = {
        case: (
            _steps(hw, partial(review.queue, case, ann, limit=20)),
            _steps(hw, partial(review.target, case, Target(cluster=1))),
        )
        for case in ("small", "large")
    }
    (small_queue, small_cluster), (large_queue, large_cluster) = work["small"], work["large"]
    assert small_queue > 0 and small_cluster > 0
    # Eight times the items; the same page: at most a little more work (the indexes' depth).
    assert large_queue <= small_queue * 1.5 + 2, work
    assert large_cluster <= small_cluster * 1.5 + 2, work


def test_the_queue_read_a_few_rows_at_a_time_lists_clusters_then_new_then_known_matches(
    hw: Hashwatch,
) -> None:
    _case(hw, "small", 48)  # 6 clusters, 8 other new, 8 known, 8 other files
    info = UserStore(hw.db, hasher=CHEAP).add("ann", "reviewer", "ann's long passphrase")
    ann = Actor(0, "ann", UserRole.REVIEWER, user_id=info.id)
    review = ReviewStore(hw.db, hw.lists)
    everything = review.queue("small", ann, limit=500)
    kinds = [(e.target.cluster is not None, e.scan_status) for e in everything]
    assert kinds == [(True, "new")] * 6 + [(False, "new")] * 8 + [(False, "known")] * 8
    assert all(e.list_category == "1" for e in everything[-8:])
    # A page read a few rows at a time gives the same targets as one read of the whole case.
    from hashwatch.review.rows import queue_targets

    with hw.db.read() as conn:
        small_chunks = queue_targets(conn, 1, ("pending", "voted"), limit=500, chunk=3)
    assert [str(e.target) for e in small_chunks] == [str(e.target) for e in everything]


def test_a_target_pages_neighbours_cost_the_same_at_any_depth_and_skip_your_votes(
    hw: Hashwatch,
) -> None:
    """The target page's previous and next links come from the target's rank outwards;
    they read the first 500 targets of the reviewer's queue before."""
    _case(hw, "small", 1_000)
    _case(hw, "large", 8_000)
    info = UserStore(hw.db, hasher=CHEAP).add("ann", "reviewer", "ann's long passphrase")
    ann = Actor(0, "ann", UserRole.REVIEWER, user_id=info.id)
    review = ReviewStore(hw.db, hw.lists)
    prev_t, next_t, _ = review.around("large", ann, Target(cluster=5))
    assert (str(prev_t), str(next_t)) == ("cluster:4", "cluster:6")
    assert review.around("large", ann, Target(cluster=1))[0] is None
    review.configure("large", actor="lee", scheme="US")
    review.vote("large", Target(cluster=5), VoteChoice("1"), actor=ann)
    prev_t, next_t, _ = review.around("large", ann, Target(cluster=6))
    assert (str(prev_t), str(next_t)) == ("cluster:4", "cluster:7")  # your vote is left out

    work = {
        case: _steps(hw, partial(review.around, case, ann, Target(cluster=120)))
        for case in ("small", "large")
    }
    assert 0 < work["large"] <= work["small"] * 1.5 + 2, work
    deep = _steps(hw, partial(review.around, "large", ann, Target(cluster=900)))
    assert deep <= work["small"] * 1.5 + 2, (deep, work)
