"""Feedback on the publisher's side: what peers think of the entries of a published list.

A peer (a subscriber's API key; its name is the peer organisation) sends an opinion on one
entry of a list it reads: confirmed, false positive (with a reason), disputed or seen
(:class:`~hashwatch.exchange.base.Opinion`). A peer's newer opinion on an entry replaces its
current one; the older stays in the history (``entry_opinions.superseded_by``).

pytx's rule decides when the opinions of several peers contest an entry (:func:`contested`):
a positive opinion (confirmed) beside a negative one (false positive), or any peer saying
disputed. An active entry that becomes contested is disputed through the list store's own
status change (:meth:`~hashwatch.store.lists.ListStore.set_status`, as ``lists dispute``), so
it has its event and audit record and the feed publishes a ``dispute`` record. The opinion
commits first; the dispute follows at once in its own transaction, and every later opinion on
the entry applies the rule again, so a dispute lost to a crash in between is made by the next
one (or by the same opinion sent again).

A false positive the curator confirms leaves the list for a negative list
(:meth:`OpinionStore.move_to_negative`): the entry is revoked and its hashes become an entry of
the negative list, with the opinions as provenance, in one transaction over both lists.

Audit records name the list, the entry's id and the peer — never the entry's key (a hash).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from hashwatch.errors import ConfigError, EntryNotFoundError, HashwatchError
from hashwatch.exchange.base import Opinion
from hashwatch.lists.model import (
    EntryRecord,
    EntryStatus,
    ListHeader,
    ListKind,
    VideoFrameHash,
    check_list_name,
)
from hashwatch.signals.types import HashType, normalize_hash, parse_hash_type
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_import import LIVE, ImportContext, check_text, jsonable_header
from hashwatch.store.list_status import list_lock, list_row
from hashwatch.store.lists import ImportReport, ListStore
from hashwatch.store.models import ENTRIES, EVENTS, HASHES, IMPORTS, LISTS, utcnow
from hashwatch.store.opinion_models import OPINIONS

__all__ = [
    "MAX_REASON",
    "EntryOpinions",
    "NegativeMove",
    "OpinionReceipt",
    "OpinionStore",
    "PeerOpinion",
    "contested",
]

E = ENTRIES
H = HASHES
L = LISTS
EV = EVENTS
O = OPINIONS  # noqa: E741

MAX_REASON = 2000  # characters of an opinion's reason
_PEER_SIZE: int = O.c.peer.type.length  # type: ignore[attr-defined]
_KEY_SIZE: int = E.c.key.type.length  # type: ignore[attr-defined]


def contested(opinions: Iterable[Opinion]) -> bool:
    """pytx's rule: the current opinions of an entry contest it when a positive one and a
    negative one stand side by side, or when any says disputed."""
    seen = set(opinions)
    return Opinion.DISPUTED in seen or (
        Opinion.CONFIRMED in seen and Opinion.FALSE_POSITIVE in seen
    )


@dataclass(frozen=True)
class PeerOpinion:
    """One opinion as stored: ``current`` is False once the peer sent a newer one."""

    peer: str
    opinion: Opinion
    reason: str | None
    at: datetime
    current: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "opinion": self.opinion.value,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "current": self.current,
        }


@dataclass(frozen=True)
class EntryOpinions:
    """The opinions on one entry: counts of the current ones by opinion, and each opinion."""

    entry_id: int
    key: str
    status: str
    opinions: tuple[PeerOpinion, ...]

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(o.opinion.value for o in self.opinions if o.current)
        return {o.value: counted.get(o.value, 0) for o in Opinion}

    @property
    def contested(self) -> bool:
        return contested(o.opinion for o in self.opinions if o.current)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "key": self.key,
            "status": self.status,
            "counts": self.counts,
            "contested": self.contested,
            "opinions": [o.as_dict() for o in self.opinions],
        }


@dataclass(frozen=True)
class OpinionReceipt:
    """What a peer is told after sending an opinion: its own opinion and the entry's status
    (never what other peers said)."""

    key: str
    opinion: Opinion
    entry_status: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "opinion": self.opinion.value, "entry_status": self.entry_status}


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


def _normal_key(key: str) -> str:
    """An entry key as the list stores it (``md5:<lower hex>``); a key whose type or value
    does not parse is kept as given (it then names no entry)."""
    htype, sep, value = key.strip().partition(":")
    if not sep:
        return key
    try:
        parsed = parse_hash_type(htype)
        return f"{parsed.value}:{normalize_hash(parsed, value)}"
    except HashwatchError:
        return key


def _reason(reason: str | None) -> str | None:
    """A reason as kept: stripped, None when empty, at most :data:`MAX_REASON` characters,
    without NUL (which PostgreSQL text cannot hold)."""
    reason = (reason or "").strip() or None
    if reason is not None and "\x00" in reason:
        raise ConfigError("a reason cannot hold NUL characters")
    return check_text("reason", reason, None, limit=MAX_REASON)


def _entry(conn: Connection, list_id: int, name: str, key: str) -> Any:
    """The entry of list ``list_id`` keyed ``key`` (or ``entry:ID``, as ``lists revoke``
    takes it)."""
    kind, _, number = key.partition(":")
    row = None
    if kind == "entry" and number.isascii() and number.isdigit() and len(number) <= 18:
        which = E.c.id == int(number)
    else:
        which = E.c.key == _normal_key(key)
    if key.isprintable() and len(key) <= _KEY_SIZE:  # else no entry has it (NUL: not in SQL)
        row = conn.execute(
            select(E.c.id, E.c.key, E.c.status).where(and_(E.c.list_id == list_id, which))
        ).first()
    if row is None:
        # The key is a hash: not repeated in a message that may reach a log.
        raise EntryNotFoundError(f"list {name!r} has no entry with the key given")
    return row


def _opinions(conn: Connection, entry_ids: list[int], *, history: bool, peer: str | None) -> Any:
    query = select(O).where(O.c.entry_id.in_(entry_ids))
    if not history:
        query = query.where(O.c.superseded_by.is_(None))
    if peer is not None:
        query = query.where(O.c.peer == peer)
    return conn.execute(query.order_by(O.c.entry_id, O.c.peer, O.c.id)).all()


def _peer_opinion(row: Any) -> PeerOpinion:
    return PeerOpinion(
        row.peer, Opinion(row.opinion), row.reason, row.at, current=row.superseded_by is None
    )


def _why_disputed(opinions: Iterable[PeerOpinion]) -> str:
    """The dispute's reason: who said what (peers' names, never a hash)."""
    by: dict[Opinion, list[str]] = {}
    for o in opinions:
        by.setdefault(o.opinion, []).append(o.peer)
    words = {
        Opinion.CONFIRMED: "confirmed by",
        Opinion.FALSE_POSITIVE: "false positive according to",
        Opinion.DISPUTED: "disputed by",
    }
    parts = [f"{words[op]} {', '.join(sorted(by[op]))}" for op in words if op in by]
    return "peers' opinions contest the entry: " + "; ".join(parts)


class OpinionStore:
    """The opinions peers sent on the entries of this database's lists."""

    def __init__(self, db: Database, lists: ListStore) -> None:
        self.db = db
        self.lists = lists

    # -- receiving -------------------------------------------------------------------------

    def record(
        self,
        list_name: str,
        key: str,
        peer: str,
        opinion: Opinion | str,
        reason: str | None = None,
    ) -> OpinionReceipt:
        """Record ``peer``'s opinion on the entry of ``list_name`` keyed ``key``, replacing
        the peer's current one, and dispute the entry when the opinions now contest it.

        A false positive needs a reason. Raises :class:`EntryNotFoundError` for a key the
        list does not hold and :class:`ConfigError` for an opinion that is not one."""
        try:
            opinion = Opinion(opinion)
        except ValueError:
            raise ConfigError(
                f"an opinion is one of {', '.join(o.value for o in Opinion)}"
            ) from None
        reason = _reason(reason)
        if opinion is Opinion.FALSE_POSITIVE and reason is None:
            raise ConfigError("a false positive needs a reason (what the media really is)")
        if not peer or len(peer) > _PEER_SIZE:
            raise ConfigError(f"a peer's name has 1 to {_PEER_SIZE} characters")
        with self.db.write(list_lock(list_name)) as conn:
            row = list_row(conn, list_name)
            entry = _entry(conn, row.id, list_name, key)
            new_id = conn.execute(
                insert(O).values(
                    list_id=row.id,
                    entry_id=entry.id,
                    entry_key=entry.key,
                    peer=peer,
                    opinion=opinion.value,
                    reason=reason,
                    at=utcnow(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                update(O)
                .where(
                    and_(
                        O.c.entry_id == entry.id,
                        O.c.peer == peer,
                        O.c.superseded_by.is_(None),
                        O.c.id != new_id,
                    )
                )
                .values(superseded_by=new_id)
            )
            record_audit(
                conn,
                actor=peer,
                action="entries.opinion",
                target=list_name,
                details={"entry_id": int(entry.id), "opinion": opinion.value, "reason": reason},
            )
            current = [
                _peer_opinion(r) for r in _opinions(conn, [entry.id], history=False, peer=None)
            ]
        status = str(entry.status)
        if status == EntryStatus.ACTIVE.value and contested(o.opinion for o in current):
            changes = self.lists.set_status(
                list_name,
                entry_ids=[int(entry.id)],
                status=EntryStatus.DISPUTED,
                actor=peer,
                reason=_why_disputed(current),
            )
            if changes:
                status = changes[0].new_status
        return OpinionReceipt(str(entry.key), opinion, status)

    # -- reading ---------------------------------------------------------------------------

    def entry(self, list_name: str, key: str, *, history: bool = False) -> EntryOpinions:
        """The opinions on one entry (``history``: the replaced ones too, oldest first)."""
        with self.db.read() as conn:
            row = list_row(conn, list_name)
            entry = _entry(conn, row.id, list_name, key)
            rows = _opinions(conn, [entry.id], history=history, peer=None)
        return EntryOpinions(
            int(entry.id), str(entry.key), str(entry.status), tuple(map(_peer_opinion, rows))
        )

    def entries(
        self,
        list_name: str,
        *,
        peer: str | None = None,
        history: bool = False,
        after: int = 0,
        limit: int = 1000,
    ) -> list[EntryOpinions]:
        """The entries of ``list_name`` that have opinions (of ``peer`` only, when given), in
        entry order from entry id ``after``, at most ``limit`` of them."""
        if not 1 <= limit <= 10_000:
            raise ConfigError("limit must be between 1 and 10000")
        if peer is not None and not peer.isprintable():
            return []  # no peer's name holds control characters
        with self.db.read() as conn:
            row = list_row(conn, list_name)
            wanted = select(O.c.entry_id).where(and_(O.c.list_id == row.id, O.c.entry_id > after))
            if peer is not None:
                wanted = wanted.where(O.c.peer == peer)
            entries = conn.execute(
                select(E.c.id, E.c.key, E.c.status)
                .where(E.c.id.in_(wanted.distinct()))
                .order_by(E.c.id)
                .limit(limit)
            ).all()
            if not entries:
                return []
            by_entry: dict[int, list[PeerOpinion]] = {}
            for r in _opinions(conn, [e.id for e in entries], history=history, peer=peer):
                by_entry.setdefault(int(r.entry_id), []).append(_peer_opinion(r))
        return [
            EntryOpinions(int(e.id), str(e.key), str(e.status), tuple(by_entry.get(e.id, ())))
            for e in entries
        ]

    def summary(self, list_name: str) -> dict[str, Any]:
        """Counts of the current opinions on ``list_name``: entries with opinions, contested
        entries, by opinion, and by peer and opinion."""
        with self.db.read() as conn:
            row = list_row(conn, list_name)
            rows = conn.execute(
                select(O.c.entry_id, O.c.peer, O.c.opinion).where(
                    and_(O.c.list_id == row.id, O.c.superseded_by.is_(None))
                )
            ).all()
        by_entry: dict[int, set[Opinion]] = {}
        by_opinion: Counter[str] = Counter()
        by_peer: dict[str, Counter[str]] = {}
        for r in rows:
            by_entry.setdefault(int(r.entry_id), set()).add(Opinion(r.opinion))
            by_opinion[r.opinion] += 1
            by_peer.setdefault(r.peer, Counter())[r.opinion] += 1
        return {
            "list": list_name,
            "entries": len(by_entry),
            "contested": sum(1 for ops in by_entry.values() if contested(ops)),
            "opinions": {o.value: by_opinion.get(o.value, 0) for o in Opinion},
            "peers": {p: dict(sorted(c.items())) for p, c in sorted(by_peer.items())},
        }

    # -- false positives to a negative list --------------------------------------------------

    def move_to_negative(
        self,
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
        reason = _reason(reason)
        who = actor_or_user(actor)
        with _write_lists(self.db, list_name, negative_list) as conn:
            row = list_row(conn, list_name)
            entry = _entry(conn, row.id, list_name, key)
            current = [
                _peer_opinion(r) for r in _opinions(conn, [entry.id], history=False, peer=None)
            ]
            reporters = sorted(o.peer for o in current if o.opinion is Opinion.FALSE_POSITIVE)
            if not reporters:
                raise ConfigError(
                    f"no peer calls entry {entry.id} of {list_name!r} a false positive; revoke "
                    "it with `hashwatch lists revoke` if it is one"
                )
            why = reason or f"false positive reported by {', '.join(reporters)}"
            seq = self.db.next_change_seq(conn)
            revoked = _revoke(conn, row, entry, who, why, seq)
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
            if revoked:
                record_audit(
                    conn,
                    actor=who,
                    action="entries.revoked",
                    target=list_name,
                    details={
                        "entries": 1,
                        "entry_ids": [int(entry.id)],
                        "reason": why,
                        "version": int(row.version),
                        "moved_to": negative_list,
                    },
                )
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


def _revoke(conn: Connection, row: Any, entry: Any, who: str, why: str, seq: int) -> bool:
    """Revoke ``entry`` as :meth:`ListStore.set_status` does (status, change number, event),
    inside the caller's transaction; False when it is revoked or withdrawn already."""
    if entry.status not in LIVE:
        return False
    conn.execute(
        update(E).where(E.c.id == entry.id).values(status=EntryStatus.REVOKED.value, change_seq=seq)
    )
    conn.execute(
        insert(EV).values(
            entry_id=entry.id,
            at=utcnow(),
            old_status=entry.status,
            new_status=EntryStatus.REVOKED.value,
            actor=who,
            reason=why,
            version=row.version,
        )
    )
    conn.execute(update(L).where(L.c.id == row.id).values(updated_at=utcnow()))
    return True


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
    conn.execute(
        update(IMPORTS)
        .where(IMPORTS.c.id == import_id)
        .values(
            finished_at=utcnow(),
            records=report.records,
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
        )
    )
    conn.execute(update(L).where(L.c.id == row.id).values(version=version, updated_at=utcnow()))
    return report, created
