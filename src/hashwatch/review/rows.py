"""Rows of case review read as typed objects, the queue's order, and category checks:
what :mod:`hashwatch.review.consensus` builds on."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from hashwatch.errors import CaseNotFoundError, ConfigError
from hashwatch.lists.categories import check_category
from hashwatch.lists.model import CategoryScheme
from hashwatch.review.votes import Decision, Target, Vote, VoteChoice
from hashwatch.scan.model import ItemStatus
from hashwatch.store.models import CASE_CLUSTERS, CASE_ITEMS, CASE_VOTES, LISTS

__all__ = [
    "QueueEntry",
    "TargetView",
    "around",
    "check_choice",
    "choice_of",
    "decision_of",
    "queue_targets",
    "target_of",
    "vote_of",
    "voted_by",
    "where_target",
]

IT = CASE_ITEMS
KNOWN = ItemStatus.KNOWN.value


@dataclass(frozen=True)
class QueueEntry:
    """A target to review: its state, the scan's rank of its first item, why it is here, and
    a known match's category from its list (a suggestion to confirm, never a decision)."""

    target: Target
    state: str
    rank: int
    item_ids: list[int]
    scan_status: str
    reasons: list[str]
    list_category: str | None = None
    partial_video: bool = False

    def as_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["target"] = str(self.target)
        return out


@dataclass(frozen=True)
class TargetView:
    """A target with its state, items, every vote (all versions) and every decision."""

    target: Target
    state: str
    item_ids: list[int]
    votes: list[Vote]
    decisions: list[Decision]

    def as_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "state": self.state,
            "item_ids": self.item_ids,
            "votes": [v.as_json() for v in self.votes],
            "decisions": [d.as_json() for d in self.decisions],
        }


def where_target(table: Any, case_id: int, target: Target) -> Any:
    if target.cluster is not None:
        return and_(table.c.case_id == case_id, table.c.cluster_number == target.cluster)
    return and_(table.c.case_id == case_id, table.c.item_id == target.item)


def target_of(row: Any) -> Target:
    if row.cluster_number is not None:
        return Target(cluster=int(row.cluster_number))
    return Target(item=int(row.item_id))


def choice_of(row: Any) -> VoteChoice:
    return VoteChoice(
        row.category,
        bool(row.not_relevant),
        row.series,
        bool(row.victim_identified),
        bool(row.offender_identified),
        row.note,
    )


def vote_of(row: Any) -> Vote:
    return Vote(
        int(row.id), target_of(row), row.user_name, choice_of(row), row.at, row.superseded_by
    )


def decision_of(row: Any, votes: Sequence[Vote] = ()) -> Decision:
    return Decision(
        id=int(row.id),
        target=target_of(row),
        choice=choice_of(row),
        how=row.how,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        vote_ids=[int(i) for i in row.votes or []],
        list_name=row.list_name,
        entry_ids=[int(i) for i in row.entry_ids or []],
        list_error=row.list_error,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoked_reason=row.revoked_reason,
        votes=list(votes),
    )


def queue_targets(
    conn: Connection,
    case_id: int,
    states: Sequence[str],
    *,
    skip: Collection[str] = (),
    limit: int | None = None,
    chunk: int = 256,
) -> list[QueueEntry]:
    """The case's targets in ``states`` (less those in ``skip``, e.g. the ones a reviewer
    voted on), in queue order: clusters of new media, then known matches to confirm, then new
    media that partly re-uses a known video; the first ``limit`` of them.

    The items are read in rank order ``chunk`` rows at a time, only those in ``states``, and
    the reading stops once ``limit`` targets are found: the work grows with how far into the
    case the next targets are, not with the case's size (a queue page of a 100,000-item case
    read every item before). The import's ranks put the clusters of new media and the other
    new media before the known matches, so rank order is queue order except for partial
    video re-use, which waits until the other targets run out. A cluster's members are read
    by its own index when the cluster is first met."""
    open_rows = _open_rows(case_id, states)
    ready: list[QueueEntry] = []
    later: list[QueueEntry] = []
    seen: set[str] = set()
    after = -1
    while limit is None or len(ready) < limit:
        rows = conn.execute(
            select(IT).where(and_(open_rows, IT.c.rank > after)).order_by(IT.c.rank).limit(chunk)
        ).all()
        clusters = _clusters_of(conn, case_id, rows, seen)
        for item in rows:
            entry = _entry(conn, case_id, item, seen, skip, clusters)
            if entry is None or entry.state not in states:
                continue
            (later if entry.partial_video and entry.scan_status != KNOWN else ready).append(entry)
            if limit is not None and len(ready) >= limit:
                break
        if len(rows) < chunk:
            break
        after = int(rows[-1].rank)
    found = ready + later
    return found if limit is None else found[:limit]


def require_cluster(conn: Connection, case: Any, number: int) -> None:
    """:class:`CaseNotFoundError` unless ``case`` (a ``cases`` row) has cluster ``number``."""
    found = conn.execute(
        select(CASE_CLUSTERS.c.id).where(
            and_(CASE_CLUSTERS.c.case_id == case.id, CASE_CLUSTERS.c.number == number)
        )
    ).first()
    if found is None:
        raise CaseNotFoundError(f"case {case.case_uid} has no cluster {number}")


def voted_by(conn: Connection, case_id: int, user_id: int | None) -> set[str]:
    """The targets ``user_id`` has a current vote on."""
    votes = CASE_VOTES
    rows = conn.execute(
        select(votes.c.cluster_number, votes.c.item_id).where(
            and_(
                votes.c.case_id == case_id,
                votes.c.user_id == user_id,
                votes.c.superseded_by.is_(None),
            )
        )
    )
    return {str(target_of(r)) for r in rows}


def _open_rows(case_id: int, states: Sequence[str]) -> Any:
    return and_(
        IT.c.case_id == case_id,
        IT.c.review_status.in_(list(states)),
        or_(
            IT.c.cluster_number.is_not(None),
            IT.c.scan_status.in_([ItemStatus.NEW.value, ItemStatus.KNOWN.value]),
        ),
    )


def around(
    conn: Connection,
    case_id: int,
    target: Target,
    states: Sequence[str],
    *,
    skip: Collection[str] = (),
    chunk: int = 64,
) -> tuple[Target | None, Target | None, list[str]]:
    """(previous, next, reasons): the targets in ``states`` (less ``skip``) just before and
    just after ``target`` in rank order, and why ``target`` is ranked where it is. Reads
    from the target's rank outwards a chunk at a time, so a target page costs the same at
    any depth of any case (it read the reviewer's first 500 targets before)."""
    if target.cluster is not None:
        cluster = conn.execute(
            select(CASE_CLUSTERS.c.reasons).where(
                and_(CASE_CLUSTERS.c.case_id == case_id, CASE_CLUSTERS.c.number == target.cluster)
            )
        ).first()
        rank = conn.execute(
            select(IT.c.rank).where(
                and_(IT.c.case_id == case_id, IT.c.cluster_number == target.cluster)
            )
        ).scalars()
        ranks = [int(r) for r in rank]
        reasons = list(cluster.reasons or []) if cluster is not None else []
        here = min(ranks) if ranks else 0
    else:
        row = conn.execute(
            select(IT.c.rank, IT.c.reasons).where(
                and_(IT.c.case_id == case_id, IT.c.id == target.item)
            )
        ).first()
        reasons = list(row.reasons or []) if row is not None else []
        here = int(row.rank) if row is not None else 0
    left_out = {*skip, str(target)}
    open_rows = _open_rows(case_id, states)

    def walk(forward: bool) -> Target | None:
        seen: set[str] = set()
        bound = here
        while True:
            beyond = IT.c.rank > bound if forward else IT.c.rank < bound
            rows = conn.execute(
                select(IT)
                .where(and_(open_rows, beyond))
                .order_by(IT.c.rank if forward else IT.c.rank.desc())
                .limit(chunk)
            ).all()
            clusters = _clusters_of(conn, case_id, rows, seen)
            for item in rows:
                entry = _entry(conn, case_id, item, seen, left_out, clusters)
                if entry is not None and entry.state in states:
                    return entry.target
            if len(rows) < chunk:
                return None
            bound = int(rows[-1].rank)

    return walk(False), walk(True), reasons


# A cluster as the queue shows it: its row and its members (id, rank, matches) by rank.
LoadedCluster = tuple[Any, list[Any]]


def _clusters_of(
    conn: Connection, case_id: int, rows: Sequence[Any], seen: set[str]
) -> dict[int, LoadedCluster]:
    """The clusters that ``rows`` (a chunk of items) meet for the first time, with their
    members, in two queries for the whole chunk: one query per cluster made a queue page of
    100 clusters cost 200 round trips."""
    numbers = {
        int(r.cluster_number)
        for r in rows
        if r.cluster_number is not None
        and not r.split_off
        and f"cluster:{r.cluster_number}" not in seen
    }
    if not numbers:
        return {}
    wanted = sorted(numbers)
    found = conn.execute(
        select(CASE_CLUSTERS).where(
            and_(CASE_CLUSTERS.c.case_id == case_id, CASE_CLUSTERS.c.number.in_(wanted))
        )
    ).all()
    members: dict[int, list[Any]] = {n: [] for n in wanted}
    # Sorted here: an ORDER BY rank leads SQLite to walk the rank index over the whole case
    # rather than the cluster index over the members.
    for m in conn.execute(
        select(IT.c.id, IT.c.rank, IT.c.matches, IT.c.cluster_number).where(
            and_(
                IT.c.case_id == case_id,
                IT.c.cluster_number.in_(wanted),
                IT.c.split_off.is_(False),
            )
        )
    ):
        members[int(m.cluster_number)].append(m)
    return {
        int(c.number): (c, sorted(members[int(c.number)], key=lambda m: int(m.rank))) for c in found
    }


def _entry(
    conn: Connection,
    case_id: int,
    item: Any,
    seen: set[str],
    skip: Collection[str],
    clusters: dict[int, LoadedCluster],
) -> QueueEntry | None:
    """The target ``item`` stands for, the first time it is met (None after, when it is in
    ``skip``, or when the item is not reviewed: unreadable, ignorable and other files).
    ``clusters``: the chunk's clusters, from :func:`_clusters_of`."""
    partial = any(m.get("partial") for m in item.matches or [])
    if item.cluster_number is not None and not item.split_off:
        key = f"cluster:{item.cluster_number}"
        if key in seen:
            return None
        loaded = clusters.get(int(item.cluster_number))
        if loaded is not None:
            cluster, members = loaded
            seen.add(key)
            if key in skip:
                return None
            return QueueEntry(
                Target(cluster=int(cluster.number)),
                cluster.review_status,
                int(item.rank),
                [int(m.id) for m in members],
                item.scan_status,
                list(cluster.reasons or []),
                partial_video=any(p.get("partial") for m in members for p in m.matches or []),
            )
    if item.scan_status not in (ItemStatus.NEW.value, ItemStatus.KNOWN.value):
        return None
    if f"item:{item.id}" in skip:
        return None
    known = item.scan_status == KNOWN
    category = next((m.get("category") for m in item.matches or [] if m.get("category")), None)
    return QueueEntry(
        Target(item=int(item.id)),
        item.review_status,
        int(item.rank),
        [int(item.id)],
        item.scan_status,
        list(item.reasons or []),
        list_category=category if known else None,
        partial_video=partial,
    )


def check_choice(conn: Connection, case: Any, choice: VoteChoice) -> VoteChoice:
    """The category as the case's scheme stores it, or :class:`ConfigError` naming the
    valid codes. The scheme: the case's own, else its known list's."""
    if choice.category is None:
        return choice
    scheme = case.scheme
    custom: dict[str, str] = {}
    if case.known_list:
        row = conn.execute(select(LISTS).where(LISTS.c.name == case.known_list)).first()
        if row is not None:
            custom = dict(row.category_map or {})
            scheme = scheme or (row.scheme if row.scheme != CategoryScheme.NONE.value else None)
    if scheme is None:
        raise ConfigError(
            f"case {case.case_uid} has no category scheme: set one with "
            f"'hashwatch cases set {case.case_uid} --scheme US' (or UK, CUSTOM)"
        )
    code = check_category(scheme, choice.category, custom)
    return VoteChoice(**(choice.__dict__ | {"category": code}))
