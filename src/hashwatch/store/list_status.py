"""Curators' decisions on entries: revoke, dispute, reinstate (see :mod:`.lists`).

A status change keeps the record and adds an event (who, when, why); it runs under the list's
writer lock and writes its audit record in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from hashwatch.errors import EntryNotFoundError, ListNotFoundError
from hashwatch.lists.model import EntryStatus
from hashwatch.signals.types import HashType, normalize_hash
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_import import check_text
from hashwatch.store.models import ENTRIES, EVENTS, HASHES, LISTS, utcnow

__all__ = ["ListStatusMixin", "StatusChange", "change_status", "list_lock", "list_row"]

E = ENTRIES
H = HASHES
L = LISTS
EV = EVENTS


def list_lock(name: str) -> str:
    """The name of list ``name``'s writer lock (:meth:`Database.write`)."""
    return f"list:{name}"


def list_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(L).where(L.c.name == name)).first()
    if row is None:
        raise ListNotFoundError(f"no hash list named {name!r}")
    return row


@dataclass(frozen=True)
class StatusChange:
    entry_id: int
    key: str
    old_status: str
    new_status: str


_ACTIONS = {
    EntryStatus.REVOKED: "revoked",
    EntryStatus.DISPUTED: "disputed",
    EntryStatus.ACTIVE: "reinstated",
    EntryStatus.WITHDRAWN: "withdrawn",
}


def change_status(
    db: Database,
    conn: Connection,
    row: Any,
    entry_ids: Iterable[int],
    status: EntryStatus,
    *,
    actor: str,
    reason: str | None,
    details: dict[str, Any] | None = None,
) -> list[StatusChange]:
    """Set ``status`` on entries of list ``row`` inside the caller's transaction (which must
    hold the list's writer lock): a change number, an event per entry, one audit record
    (``details`` added to it). Entries already in ``status`` are left as they are."""
    status = EntryStatus(status)
    seq = db.next_change_seq(conn)
    changes: list[StatusChange] = []
    for entry_id in entry_ids:
        entry = conn.execute(select(E.c.status, E.c.key).where(E.c.id == entry_id)).one()
        if entry.status == status.value:
            continue
        conn.execute(
            update(E).where(E.c.id == entry_id).values(status=status.value, change_seq=seq)
        )
        conn.execute(
            insert(EV).values(
                entry_id=entry_id,
                at=utcnow(),
                old_status=entry.status,
                new_status=status.value,
                actor=actor,
                reason=reason,
                version=row.version,
            )
        )
        changes.append(StatusChange(entry_id, entry.key, entry.status, status.value))
    if changes:
        conn.execute(update(L).where(L.c.id == row.id).values(updated_at=utcnow()))
        record_audit(
            conn,
            actor=actor,
            action=f"entries.{_ACTIONS[status]}",
            target=row.name,
            details={
                "entries": len(changes),
                "entry_ids": [c.entry_id for c in changes],
                "reason": reason,
                "version": int(row.version),
            }
            | (details or {}),
        )
    return changes


class ListStatusMixin:
    """The status methods of :class:`~hashwatch.store.lists.ListStore`."""

    db: Database

    def set_status(
        self,
        name: str,
        hashes: Iterable[tuple[HashType, str]] = (),
        *,
        entry_ids: Iterable[int] = (),
        status: EntryStatus = EntryStatus.REVOKED,
        actor: str | None = None,
        reason: str | None = None,
    ) -> list[StatusChange]:
        """Revoke, dispute or reinstate entries named by any of their hashes or by id.

        The record is kept; only its status changes, with an event saying who, when and why.
        Raises :class:`EntryNotFoundError` naming the hashes that are not in the list.
        """
        status = EntryStatus(status)
        wanted = [(t, normalize_hash(t, v)) for t, v in hashes]
        ids = [int(i) for i in entry_ids]
        reason = check_text("reason", reason, None, limit=10_000)
        who = actor_or_user(actor)
        with self.db.write(list_lock(name)) as conn:
            row = list_row(conn, name)
            found: dict[int, str] = {}
            missing: list[str] = []
            for htype, value in wanted:
                hit = conn.execute(
                    select(H.c.entry_id).where(
                        and_(
                            H.c.list_id == row.id, H.c.hash_type == htype.value, H.c.value == value
                        )
                    )
                ).first()
                if hit is None:
                    missing.append(f"{htype.value} {value}")
                else:
                    found[int(hit.entry_id)] = f"{htype.value} {value}"
            for entry_id in ids:
                hit = conn.execute(
                    select(E.c.id).where(and_(E.c.list_id == row.id, E.c.id == entry_id))
                ).first()
                if hit is None:
                    missing.append(f"entry {entry_id}")
                else:
                    found[entry_id] = f"entry {entry_id}"
            if missing:
                raise EntryNotFoundError(f"not in list {name!r}: {', '.join(missing)}")
            return change_status(self.db, conn, row, found, status, actor=who, reason=reason)

    def events(self, name: str, entry_id: int) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            list_row(conn, name)
            rows = conn.execute(
                select(EV).where(EV.c.entry_id == entry_id).order_by(EV.c.id)
            ).mappings()
            return [dict(r) for r in rows]
