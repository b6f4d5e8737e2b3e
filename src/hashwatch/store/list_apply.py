"""Applying a peer's changes to a list inside the caller's transaction.

A subscriber (:mod:`hashwatch.exchange.sync`) saves each page's checkpoint in the same
transaction as the page's changes, so the changes cannot go through :class:`ListStore`'s own
transactions. :func:`apply_changes` runs inside a connection the caller opened with
``Database.write(list_lock(name))`` and reuses the import's machinery
(:class:`~hashwatch.store.list_import.ImportContext`): upserts are reconciled by entry key
exactly as an import in ``append`` mode reconciles records (new entries added, changed ones
updated, equal ones left alone; hashes into the PDQ index by the change sequence), and
revocations become status changes with an event naming who revoked them.

A page costs work in proportion to its own size, never to the list's: nothing here counts
or scans the list (a list of a million entries settles a page as fast as an empty one).

Rules beyond an import's:

* a revocation by a peer is an ``revoked`` entry with the event reason given (``"revoked by
  peer NAME"``); when the same peer lists the entry again, it is reinstated. A revocation by
  anyone else (a local curator) outlives the peer's upserts, as it outlives imports;
* a record whose status is ``disputed`` disputes the entry (reason ``"disputed by peer
  NAME"``); the dispute is lifted when that peer lists the entry undisputed again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from hashwatch.lists.model import EntryRecord, EntryStatus
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_import import ImportContext, batches, finish_import
from hashwatch.store.list_status import list_row
from hashwatch.store.lists import ImportReport
from hashwatch.store.models import ENTRIES, EVENTS, HASHES, IMPORTS, LISTS, utcnow

__all__ = ["AppliedChanges", "apply_changes", "entry_key"]

E = ENTRIES
H = HASHES
L = LISTS
I = IMPORTS  # noqa: E741
EV = EVENTS
_CHUNK = 1000


def entry_key(record: EntryRecord) -> str:
    """The key an entry of ``record`` has in a list: its first hash as ``type:value``."""
    htype, value = record.hashes[0]
    return f"{htype.value}:{value}"


@dataclass
class AppliedChanges:
    """What one call changed in the list (``version``: the list's version afterwards)."""

    list_name: str
    version: int
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    revoked: int = 0
    reinstated: int = 0
    disputed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.revoked or self.reinstated or self.disputed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_changes(
    db: Database,
    conn: Connection,
    name: str,
    upserts: Sequence[EntryRecord],
    revocations: Sequence[str] = (),
    *,
    actor: str | None,
    source: str,
    revoke_reason: str,
    dispute_reason: str,
    action: str = "entries.synced",
    details: dict[str, Any] | None = None,
) -> AppliedChanges:
    """Upsert ``upserts`` and revoke the entries keyed ``revocations`` in list ``name``, as
    one new list version, inside ``conn`` (which holds the list's writer lock).

    ``source`` names where the changes came from (the import record's file name, e.g.
    ``"peer agency seq 1-500"``). The audit record (``action``, target the list) carries the
    counts and ``details``; nothing is recorded, and the version stays, when nothing changed.
    """
    who = actor_or_user(actor)
    row = list_row(conn, name)
    version = int(row.version) + 1
    seq = db.next_change_seq(conn)
    digest = hashlib.sha256(source.encode()).hexdigest()
    import_id = conn.execute(
        insert(I).values(
            list_id=row.id,
            version=version,
            file_name=source,
            file_sha256=digest,
            format="peer",
            mode="append",
            imported_by=who,
            started_at=utcnow(),
            header={"format": "peer", "source": source},
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    report = ImportReport(
        list_name=name, file=source, file_sha256=digest, format="peer", mode="append", version=0
    )
    ctx = ImportContext(conn, row.id, version, seq, import_id, who, report, track_statuses=True)
    for batch in batches(upserts, _CHUNK):
        ctx.apply(batch)
    out = AppliedChanges(
        name, version, added=report.added, updated=report.updated, unchanged=report.unchanged
    )
    step = _Step(conn, int(row.id), version, seq, who)
    if upserts:
        disputed = {entry_key(r) for r in upserts if r.status is EntryStatus.DISPUTED}
        out.reinstated, out.disputed = step.settle_statuses(
            ctx.statuses or {}, disputed, revoke_reason, dispute_reason
        )
    if revocations:
        out.revoked = step.revoke(revocations, revoke_reason)
    if not out.changed:
        conn.execute(delete(I).where(I.c.id == import_id))
        out.version = int(row.version)
        return out
    finish_import(conn, import_id, report, records=report.records + len(revocations))
    conn.execute(update(L).where(L.c.id == row.id).values(version=version, updated_at=utcnow()))
    record_audit(
        conn,
        actor=who,
        action=action,
        target=name,
        details={k: v for k, v in out.as_dict().items() if k != "list_name"}
        | {"source": source}
        | (details or {}),
    )
    return out


class _Step:
    """Status changes of one :func:`apply_changes` call (one version, one change number)."""

    def __init__(self, conn: Connection, list_id: int, version: int, seq: int, who: str) -> None:
        self.conn = conn
        self.list_id = list_id
        self.version = version
        self.seq = seq
        self.who = who

    def _set(self, changes: list[tuple[int, str, str, str]]) -> None:
        """Apply (entry id, old status, new status, reason) with an event each."""
        for start in range(0, len(changes), _CHUNK):
            chunk = changes[start : start + _CHUNK]
            by_status: dict[str, list[int]] = {}
            for entry_id, _old, new, _why in chunk:
                by_status.setdefault(new, []).append(entry_id)
            for new, ids in by_status.items():
                self.conn.execute(
                    update(E)
                    .where(E.c.id.in_(ids))
                    .values(status=new, change_seq=self.seq, updated_version=self.version)
                )
            self.conn.execute(
                insert(EV),
                [
                    {
                        "entry_id": entry_id,
                        "at": utcnow(),
                        "old_status": old,
                        "new_status": new,
                        "actor": self.who,
                        "reason": why,
                        "version": self.version,
                    }
                    for entry_id, old, new, why in chunk
                ],
            )

    def _last_reasons(self, ids: list[int]) -> dict[int, str | None]:
        last: dict[int, str | None] = {}
        for start in range(0, len(ids), _CHUNK):
            for ev in self.conn.execute(
                select(EV.c.entry_id, EV.c.reason)
                .where(EV.c.entry_id.in_(ids[start : start + _CHUNK]))
                .order_by(EV.c.id)
            ):
                last[int(ev.entry_id)] = ev.reason
        return last

    def settle_statuses(
        self,
        statuses: Mapping[str, tuple[int, str]],
        disputed: set[str],
        revoke_reason: str,
        dispute_reason: str,
    ) -> tuple[int, int]:
        """Reinstate entries this peer revoked and now lists again; dispute or undispute as
        the peer says. ``statuses``: entry key -> (id, status) of the entries just upserted
        (the import read them: no second lookup). Returns (reinstated, disputed)."""
        active = EntryStatus.ACTIVE.value
        flagged = [
            (key, entry_id, status)
            for key, (entry_id, status) in statuses.items()
            if status != active or key in disputed
        ]
        if not flagged:
            return 0, 0
        reasons = self._last_reasons([i for _, i, status in flagged if status != active])
        changes: list[tuple[int, str, str, str]] = []
        reinstated = newly_disputed = 0
        for key, entry_id, status in flagged:
            why = reasons.get(entry_id)
            wanted = status
            if status == EntryStatus.REVOKED.value and why == revoke_reason:
                wanted = EntryStatus.ACTIVE.value
                reinstated += 1
            elif status == EntryStatus.DISPUTED.value and why == dispute_reason:
                wanted = EntryStatus.ACTIVE.value
            if wanted == EntryStatus.ACTIVE.value and key in disputed:
                wanted = EntryStatus.DISPUTED.value
            if wanted == status:
                continue
            reason = dispute_reason if wanted == EntryStatus.DISPUTED.value else "listed again"
            if wanted == EntryStatus.DISPUTED.value:
                newly_disputed += 1
            changes.append((entry_id, status, wanted, reason))
        self._set(changes)
        return reinstated, newly_disputed

    def revoke(self, keys: Sequence[str], reason: str) -> int:
        """Revoke the entries keyed ``keys`` (a key not in the list: nothing to revoke)."""
        changes: list[tuple[int, str, str, str]] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            for r in self.conn.execute(
                select(E.c.id, E.c.status).where(
                    and_(E.c.list_id == self.list_id, E.c.key.in_(chunk))
                )
            ):
                if r.status != EntryStatus.REVOKED.value:
                    changes.append((int(r.id), r.status, EntryStatus.REVOKED.value, reason))
        self._set(changes)
        return len(changes)
