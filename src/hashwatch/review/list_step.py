"""The list step of a decision: which standing decisions still wait for their list entries.

A settled decision's items become entries of the case's agency list right after the decision
is committed (:meth:`hashwatch.review.consensus.ReviewStore.apply_entries`). When that step
fails — no list chosen for the case, a list of the other kind, the list store refusing the
write — or never ran (the process stopped in between), the decision stands and its list step
is *pending*: it has no entries, is not revoked, and says why in ``list_error`` (or has no
list at all). Pending steps are retried by the case's next decision, by
``hashwatch cases apply CASE`` and by ``hashwatch cases set``; ``hashwatch cases status``
counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from hashwatch.lists.model import EntryStatus
from hashwatch.store.database import Database
from hashwatch.store.lists import ListStore
from hashwatch.store.models import CASE_DECISIONS, ENTRIES, LISTS

__all__ = ["entry_ids_of", "pending_count", "pending_ids", "pending_where"]

D = CASE_DECISIONS


def pending_where(case_id: int) -> Any:
    """Decisions of the case that stand and have no list entries yet because their list
    step failed or did not run."""
    return and_(
        D.c.case_id == case_id,
        D.c.revoked_at.is_(None),
        or_(D.c.list_error.is_not(None), D.c.list_name.is_(None)),
    )


def pending_count(conn: Connection, case_id: int) -> int:
    return int(conn.execute(select(func.count()).where(pending_where(case_id))).scalar_one())


def pending_ids(conn: Connection, case: Any, *, listed_only: bool = False) -> list[int]:
    """The pending decisions of ``case`` (a ``cases`` row) in order; ``listed_only``: only
    those whose list (known, or ignorable for "not relevant") the case has chosen."""
    where = pending_where(int(case.id))
    if listed_only:
        chosen = []
        if case.known_list is not None:
            chosen.append(D.c.not_relevant.is_(False))
        if case.ignorable_list is not None:
            chosen.append(D.c.not_relevant.is_(True))
        if not chosen:
            return []
        where = and_(where, or_(*chosen))
    return [int(r.id) for r in conn.execute(select(D.c.id).where(where).order_by(D.c.id))]


def entry_ids_of(
    db: Database, lists: ListStore, list_name: str, records: Sequence[Any], actor: str
) -> list[int]:
    """The ids of the entries ``records`` became; an entry a revoked decision left revoked
    is reinstated (an import would leave a curator's revocation standing)."""
    keys = [f"{r.hashes[0][0].value}:{r.hashes[0][1]}" for r in records]
    with db.read() as conn:
        list_id = conn.execute(select(LISTS.c.id).where(LISTS.c.name == list_name)).scalar()
        rows = conn.execute(
            select(ENTRIES.c.id, ENTRIES.c.status).where(
                and_(ENTRIES.c.list_id == list_id, ENTRIES.c.key.in_(keys))
            )
        ).all()
    revoked = [int(r.id) for r in rows if r.status == EntryStatus.REVOKED.value]
    if revoked:
        lists.set_status(
            list_name,
            entry_ids=revoked,
            status=EntryStatus.ACTIVE,
            actor=actor,
            reason="settled again in case review",
        )
    return sorted(int(r.id) for r in rows)
