"""The "needs a second look" lane of case review.

A reviewer marks a target (a cluster or an item) for a second look, with an optional note,
instead of voting or as well as voting; the marked targets form a lane of their own on the
case's queue page, for every reviewer and the lead, in the scan's rank order. A reviewer has
one mark per target (marking again changes the note); a reviewer clears their own mark, a
lead clears every mark on the target. A cleared mark keeps its row (who cleared it, when).
Every mark and clearing is audited (``case.second_look``, ``case.second_look.cleared``) in
its own transaction with the person as the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from hashwatch.errors import CaseNotFoundError, ConfigError
from hashwatch.review.cases import CaseStore
from hashwatch.review.rows import require_cluster, target_of, where_target
from hashwatch.review.votes import MAX_NOTE, Target
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.models import CASE_CLUSTERS, CASE_ITEMS, utcnow
from hashwatch.store.second_look_models import SECOND_LOOKS
from hashwatch.store.user_models import UserRole
from hashwatch.store.users import Actor, allowed

__all__ = ["Mark", "SecondLook", "SecondLooks"]

S = SECOND_LOOKS
IT = CASE_ITEMS


@dataclass(frozen=True)
class Mark:
    """One reviewer's current mark on a target."""

    id: int
    marked_by: str
    note: str | None
    marked_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "marked_by": self.marked_by,
            "note": self.note,
            "marked_at": self.marked_at.isoformat(),
        }


@dataclass(frozen=True)
class SecondLook:
    """A target in the lane: its review state, the scan's rank, its items and its marks."""

    target: Target
    state: str
    rank: int
    item_ids: list[int]
    marks: list[Mark]

    def as_json(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "state": self.state,
            "rank": self.rank,
            "item_ids": self.item_ids,
            "marks": [m.as_json() for m in self.marks],
        }


def _person(actor: Actor) -> int:
    if not actor.is_person or actor.user_id is None:
        raise ConfigError("only a signed-in person (or a person's key) reviews a case")
    if not allowed(actor, UserRole.REVIEWER):
        raise ConfigError("this needs the reviewer role")
    return actor.user_id


def _mark_of(row: Any) -> Mark:
    return Mark(int(row.id), row.marked_by, row.note, row.marked_at)


class SecondLooks:
    """Marks and the lane of the cases of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cases = CaseStore(db)

    def mark(
        self, ref: str, target: Target, *, actor: Actor, note: str | None = None
    ) -> SecondLook:
        """Mark ``target`` for a second look (a mark of the actor's own is updated)."""
        user_id = _person(actor)
        note = (note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE:
            raise ConfigError(f"a note is at most {MAX_NOTE} characters")
        if note is not None and "\x00" in note:  # PostgreSQL text holds no NUL
            raise ConfigError("a note holds no NUL character")
        with self.db.write(lock="cases") as conn:
            case = self._cases.row_of(conn, ref)
            self._members(conn, case, target)
            mine = conn.execute(
                select(S.c.id).where(
                    and_(where_target(S, case.id, target), S.c.user_id == user_id, _live())
                )
            ).first()
            if mine is None:
                conn.execute(
                    insert(S).values(
                        case_id=case.id,
                        cluster_number=target.cluster,
                        item_id=target.item,
                        user_id=user_id,
                        marked_by=actor.name,
                        note=note,
                        marked_at=utcnow(),
                    )
                )
            else:
                conn.execute(update(S).where(S.c.id == mine.id).values(note=note))
            record_audit(
                conn,
                actor=actor.name,
                action="case.second_look",
                target=f"case:{case.case_uid}:{target}",
                details={"note": note, "changed": mine is not None},
            )
            return self._entry(conn, case, target)

    def clear(self, ref: str, target: Target, *, actor: Actor) -> int:
        """Clear the actor's mark on ``target`` (a lead: every mark on it); how many."""
        user_id = _person(actor)
        lead = allowed(actor, UserRole.LEAD)
        with self.db.write(lock="cases") as conn:
            case = self._cases.row_of(conn, ref)
            self._members(conn, case, target)
            where = and_(where_target(S, case.id, target), _live())
            if not lead:
                where = and_(where, S.c.user_id == user_id)
            ids = [int(r.id) for r in conn.execute(select(S.c.id).where(where))]
            if ids:
                conn.execute(
                    update(S)
                    .where(S.c.id.in_(ids))
                    .values(cleared_at=utcnow(), cleared_by=actor.name)
                )
                record_audit(
                    conn,
                    actor=actor.name,
                    action="case.second_look.cleared",
                    target=f"case:{case.case_uid}:{target}",
                    details={"marks": len(ids)},
                )
        return len(ids)

    def marks(self, ref: str, target: Target) -> list[Mark]:
        """The current marks on ``target``, the oldest first."""
        with self.db.read() as conn:
            case = self._cases.row_of(conn, ref)
            return self._marks(conn, int(case.id), target)

    def lane(self, ref: str) -> list[SecondLook]:
        """Every marked target of the case, in the scan's rank order."""
        with self.db.read() as conn:
            case = self._cases.row_of(conn, ref)
            rows = conn.execute(
                select(S.c.cluster_number, S.c.item_id)
                .where(and_(S.c.case_id == case.id, _live()))
                .distinct()
            ).all()
            entries = [self._entry(conn, case, target_of(r)) for r in rows]
        return sorted(entries, key=lambda e: (e.rank, str(e.target)))

    def count(self, ref: str) -> int:
        return len(self.lane(ref))

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _marks(conn: Connection, case_id: int, target: Target) -> list[Mark]:
        rows = conn.execute(
            select(S).where(and_(where_target(S, case_id, target), _live())).order_by(S.c.id)
        )
        return [_mark_of(r) for r in rows]

    @staticmethod
    def _members(conn: Connection, case: Any, target: Target) -> list[Any]:
        """The target's items in rank order (:class:`CaseNotFoundError` when there is no
        such cluster or item in the case)."""
        if target.item is not None:
            rows = conn.execute(
                select(IT.c.id, IT.c.rank, IT.c.review_status).where(
                    and_(IT.c.id == target.item, IT.c.case_id == case.id)
                )
            ).all()
            if not rows:
                raise CaseNotFoundError(f"case {case.case_uid} has no item {target.item}")
            return list(rows)
        assert target.cluster is not None
        require_cluster(conn, case, target.cluster)
        rows = conn.execute(
            select(IT.c.id, IT.c.rank, IT.c.review_status).where(
                and_(
                    IT.c.case_id == case.id,
                    IT.c.cluster_number == target.cluster,
                    IT.c.split_off.is_(False),
                )
            )
        ).all()
        return sorted(rows, key=lambda r: int(r.rank))

    def _entry(self, conn: Connection, case: Any, target: Target) -> SecondLook:
        members = self._members(conn, case, target)
        if target.cluster is not None:
            state = conn.execute(
                select(CASE_CLUSTERS.c.review_status).where(
                    and_(
                        CASE_CLUSTERS.c.case_id == case.id,
                        CASE_CLUSTERS.c.number == target.cluster,
                    )
                )
            ).scalar_one()
        else:
            state = members[0].review_status
        rank = int(members[0].rank) if members else 2**62
        return SecondLook(
            target,
            str(state),
            rank,
            [int(m.id) for m in members],
            self._marks(conn, int(case.id), target),
        )


def _live() -> Any:
    return S.c.cleared_at.is_(None)
