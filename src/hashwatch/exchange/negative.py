"""A false positive that peers reported leaves its list for a negative list.

The curator's step after feedback (:mod:`~hashwatch.exchange.opinions`): the entry is revoked
in its list (with its event, as :meth:`~hashwatch.store.lists.ListStore.set_status` writes
one) and its hashes — a video's frames too — become an entry of a ``negative`` list, whose
matches suppress every other match of the same media (docs/lists.md). Both happen in one
transaction that holds both lists' writer locks, each list audited (``entries.revoked``,
``entries.added``), the negative entry's provenance naming the list, the entry and the
peers' opinions. Moving an entry that is there already changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from hashwatch.errors import ConfigError
from hashwatch.exchange.base import Opinion
from hashwatch.exchange.opinions import (
    PeerOpinion,
    clean_reason,
    find_entry,
    opinion_rows,
    peer_opinion,
)
from hashwatch.lists.model import (
    EntryRecord,
    EntryStatus,
    ListHeader,
    ListKind,
    VideoFrameHash,
    check_list_name,
)
from hashwatch.signals.types import HashType
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_import import LIVE, ImportContext, finish_import, jsonable_header
from hashwatch.store.list_status import change_status, list_lock, list_row
from hashwatch.store.lists import ImportReport
from hashwatch.store.models import ENTRIES, EVENTS, HASHES, IMPORTS, LISTS, utcnow

__all__ = ["NegativeMove", "move_to_negative"]

E = ENTRIES
H = HASHES
L = LISTS
EV = EVENTS


@dataclass(frozen=True)
class NegativeMove:
    """A false positive moved to a negative list (:meth:`OpinionStore.move_to_negative`)."""

    list_name: str
    entry_id: int
    status: str  # the entry's status in its list afterwards (revoked)
    negative_list: str
    negative_entry_id: int
    negative_version: int
    created_list: bool
    peers: tuple[str, ...]  # who reported it as a false positive
    changed: bool = True
    hashes: int = field(default=0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "entry_id": self.entry_id,
            "status": self.status,
            "negative_list": self.negative_list,
            "negative_entry_id": self.negative_entry_id,
            "negative_version": self.negative_version,
            "created_list": self.created_list,
            "peers": list(self.peers),
            "hashes": self.hashes,
            "changed": self.changed,
        }


def move_to_negative(
    db: Database,
    list_name: str,
    key: str,
    negative_list: str,
    *,
    reason: str | None = None,
    actor: str | None = None,
) -> NegativeMove:
    """Revoke a reported false positive in ``list_name`` and add its hashes to
    ``negative_list`` (kind ``negative``; created when missing) as one entry whose
    provenance names the list, the entry and the peers' opinions — one transaction over
    both lists, audited on each.

    Refused (:class:`ConfigError`) when no peer's current opinion calls the entry a false
    positive, when ``negative_list`` is the list itself or a list of another kind."""
    if negative_list == list_name:
        raise ConfigError("the negative list must be another list")
    reason = clean_reason(reason)
    who = actor_or_user(actor)
    with _write_lists(db, list_name, negative_list) as conn:
        row = list_row(conn, list_name)
        entry = find_entry(conn, row.id, list_name, key)
        current = [
            peer_opinion(r) for r in opinion_rows(conn, [entry.id], history=False, peer=None)
        ]
        reporters = sorted(o.peer for o in current if o.opinion is Opinion.FALSE_POSITIVE)
        if not reporters:
            raise ConfigError(
                f"no peer calls entry {entry.id} of {list_name!r} a false positive; revoke "
                "it with `hashwatch lists revoke` if it is one"
            )
        why = reason or f"false positive reported by {', '.join(reporters)}"
        revoked = entry.status in LIVE and bool(
            change_status(
                db,
                conn,
                row,
                [int(entry.id)],
                EntryStatus.REVOKED,
                actor=who,
                reason=why,
                details={"moved_to": negative_list},
            )
        )
        seq = db.next_change_seq(conn)
        if not revoked and (done := _negative_entry(conn, negative_list, entry.key)):
            conn.rollback()  # moved before: nothing to change
            return NegativeMove(
                list_name=list_name,
                entry_id=int(entry.id),
                status=str(entry.status),
                negative_list=negative_list,
                negative_entry_id=done[0],
                negative_version=done[1],
                created_list=False,
                peers=tuple(reporters),
                changed=False,
            )
        record = _negative_record(conn, row, entry, current, why, who)
        report, created = _add_negative(
            conn, negative_list, record, seq, who, int(row.pdq_threshold)
        )
        neg_row = list_row(conn, negative_list)
        neg_id = conn.execute(
            select(E.c.id).where(and_(E.c.list_id == neg_row.id, E.c.key == entry.key))
        ).scalar_one()
        if report.changed:
            record_audit(
                conn,
                actor=who,
                action="entries.added",
                target=negative_list,
                details={
                    k: v for k, v in report.as_dict().items() if k not in ("list_name", "file")
                }
                | {"from_list": list_name, "from_entry": int(entry.id), "peers": reporters},
            )
        return NegativeMove(
            list_name=list_name,
            entry_id=int(entry.id),
            status=EntryStatus.REVOKED.value if revoked else str(entry.status),
            negative_list=negative_list,
            negative_entry_id=int(neg_id),
            negative_version=int(report.version),
            created_list=created,
            peers=tuple(reporters),
            changed=revoked or report.changed,
            hashes=len(record.hashes) + len(record.frames),
        )


@contextmanager
def _write_lists(db: Database, first: str, second: str) -> Iterator[Connection]:
    """One write transaction holding the writer locks of two lists.

    SQLite has one writer lock (``BEGIN IMMEDIATE``). On PostgreSQL a list's lock is an
    advisory lock of its writer's transaction: the first lock's transaction holds it while the
    second's, which takes the other lock, makes every change — so all changes commit together
    and no other writer of either list runs in between. Locks are taken in name order, so two
    moves over the same pair of lists cannot wait on each other."""
    if db.is_sqlite:
        with db.write() as only:
            yield only
        return
    with ExitStack() as stack:
        conns = [stack.enter_context(db.write(list_lock(n))) for n in sorted((first, second))]
        yield conns[-1]


def _negative_entry(conn: Connection, name: str, key: str) -> tuple[int, int] | None:
    """(entry id, list version) of the live entry keyed ``key`` in negative list ``name``."""
    row = conn.execute(
        select(E.c.id, L.c.version)
        .join(L, L.c.id == E.c.list_id)
        .where(
            and_(
                L.c.name == name,
                L.c.kind == ListKind.NEGATIVE.value,
                E.c.key == key,
                E.c.status.in_(LIVE),
            )
        )
    ).first()
    return None if row is None else (int(row.id), int(row.version))


def _negative_record(
    conn: Connection, row: Any, entry: Any, opinions: list[PeerOpinion], why: str, who: str
) -> EntryRecord:
    """The negative list's entry for ``entry``: every hash it holds (a video's frames too),
    and where it came from."""
    hashes: list[tuple[HashType, str]] = []
    frames: list[VideoFrameHash] = []
    for h in conn.execute(
        select(H.c.hash_type, H.c.value, H.c.frame, H.c.frame_time, H.c.quality)
        .where(and_(H.c.entry_id == entry.id, H.c.active))
        .order_by(H.c.position)
    ):
        if h.frame is not None:
            frames.append(VideoFrameHash(h.frame, h.frame_time or 0.0, h.value, h.quality or 0))
        else:
            hashes.append((HashType(h.hash_type), h.value))
    provenance = {
        "list": row.name,
        "entry_id": int(entry.id),
        "list_version": int(row.version),
        "moved_by": who,
        "reason": why,
        "opinions": [
            {"peer": o.peer, "opinion": o.opinion.value, "reason": o.reason, "at": o.at.isoformat()}
            for o in opinions
        ],
    }
    return EntryRecord(
        hashes=tuple(hashes),
        comment=why,
        source=f"false positive of {row.name}"[:64],
        extra={"false_positive": provenance},
        frames=tuple(frames),
    )


def _add_negative(
    conn: Connection, name: str, record: EntryRecord, seq: int, who: str, threshold: int
) -> tuple[ImportReport, bool]:
    """Add ``record`` to negative list ``name`` (created when missing, with PDQ threshold
    ``threshold``) as its next version, the way an appending import does, inside the caller's
    transaction."""
    row = conn.execute(select(L).where(L.c.name == name)).first()
    created = row is None
    if row is None:
        check_list_name(name)
        conn.execute(
            insert(L).values(
                name=name,
                kind=ListKind.NEGATIVE.value,
                scheme="NONE",
                pdq_threshold=threshold,
                version=0,
                category_map={},
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        row = list_row(conn, name)
    elif row.kind != ListKind.NEGATIVE.value:
        raise ConfigError(f"list {name!r} is of kind {row.kind!r}, not negative")
    version = int(row.version) + 1
    header = ListHeader(format="media", scheme=None)
    htype, value = record.hashes[0]
    sha = hashlib.sha256(f"{htype.value}:{value}\n".encode()).hexdigest()
    import_id = conn.execute(
        insert(IMPORTS).values(
            list_id=row.id,
            version=version,
            file_name=record.source,
            file_sha256=sha,
            format=header.format,
            mode="append",
            imported_by=who,
            started_at=utcnow(),
            header=jsonable_header(header),
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    report = ImportReport(
        list_name=name,
        file=record.source,
        file_sha256=sha,
        format=header.format,
        mode="append",
        version=version,
        created_list=created,
    )
    ImportContext(conn, row.id, version, seq, import_id, who, report).apply([record])
    report.changed = bool(report.added or report.updated or report.reactivated or created)
    if not report.changed:
        conn.execute(IMPORTS.delete().where(IMPORTS.c.id == import_id))
        report.version = int(row.version)
        return report, created
    finish_import(conn, import_id, report)
    conn.execute(update(L).where(L.c.id == row.id).values(version=version, updated_at=utcnow()))
    return report, created
