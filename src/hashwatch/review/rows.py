"""Rows of case review read as typed objects, the queue's order, and category checks:
what :mod:`hashwatch.review.consensus` builds on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select

from hashwatch.errors import ConfigError
from hashwatch.lists.categories import check_category
from hashwatch.lists.model import CategoryScheme
from hashwatch.review.votes import Decision, Target, Vote, VoteChoice
from hashwatch.scan.model import ItemStatus
from hashwatch.store.models import CASE_CLUSTERS, CASE_ITEMS, LISTS

__all__ = [
    "QueueEntry",
    "TargetView",
    "check_choice",
    "choice_of",
    "decision_of",
    "queue_targets",
    "target_of",
    "vote_of",
    "where_target",
]

IT = CASE_ITEMS


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


def _with(entry: QueueEntry, **changes: Any) -> QueueEntry:
    return QueueEntry(**(entry.__dict__ | changes))


def queue_targets(conn: Connection, case_id: int) -> list[QueueEntry]:
    """Every target of the case with its state, in queue order: clusters of new media, then
    known matches to confirm, then new media that partly re-uses a known video."""
    items = conn.execute(select(IT).where(IT.c.case_id == case_id).order_by(IT.c.rank))
    clusters = {
        int(c.number): c
        for c in conn.execute(select(CASE_CLUSTERS).where(CASE_CLUSTERS.c.case_id == case_id))
    }
    found: dict[str, tuple[int, QueueEntry]] = {}
    for item in items:
        partial = any(m.get("partial") for m in item.matches or [])
        in_cluster = item.cluster_number is not None and not item.split_off
        if in_cluster and int(item.cluster_number) in clusters:
            key = f"cluster:{item.cluster_number}"
            if key in found:
                group, entry = found[key]
                entry.item_ids.append(int(item.id))
                if partial and group == 0:
                    found[key] = (2, _with(entry, partial_video=True))
                continue
            cluster = clusters[int(item.cluster_number)]
            entry = QueueEntry(
                Target(cluster=int(cluster.number)),
                cluster.review_status,
                int(item.rank),
                [int(item.id)],
                item.scan_status,
                list(cluster.reasons or []),
                partial_video=partial,
            )
            found[key] = (2 if partial else 0, entry)
            continue
        if item.scan_status not in (ItemStatus.NEW.value, ItemStatus.KNOWN.value):
            continue  # unreadable, ignorable and other files are not reviewed
        known = item.scan_status == ItemStatus.KNOWN.value
        category = next((m.get("category") for m in item.matches or [] if m.get("category")), None)
        entry = QueueEntry(
            Target(item=int(item.id)),
            item.review_status,
            int(item.rank),
            [int(item.id)],
            item.scan_status,
            list(item.reasons or []),
            list_category=category if known else None,
            partial_video=partial,
        )
        found[str(entry.target)] = (1 if known else 2 if partial else 0, entry)
    ordered = sorted(found.values(), key=lambda pair: (pair[0], pair[1].rank))
    return [entry for _, entry in ordered]


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
