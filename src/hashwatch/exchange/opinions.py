"""Feedback on the publisher's side: what peers think of the entries of a published list.

A peer (a subscriber's API key; its name is the peer organisation) sends an opinion on one
entry of a list it reads: confirmed, false positive (with a reason), disputed or seen
(:class:`~hashwatch.exchange.base.Opinion`). A peer's newer opinion on an entry replaces its
current one; the older stays in the history (``entry_opinions.superseded_by``).

pytx's rule decides when the opinions of several peers contest an entry (:func:`contested`):
a positive opinion (confirmed) beside a negative one (false positive), or any peer saying
disputed. An active entry that becomes contested is disputed through the list store's own
status change (:func:`~hashwatch.store.list_status.change_status`, as ``lists dispute``), so
it has its event and audit record and the feed publishes a ``dispute`` record; the opinion and
the dispute it makes commit in one transaction.

A false positive the curator confirms leaves the list for a negative list
(:mod:`~hashwatch.exchange.negative`).

Audit records name the list, the entry's id and the peer — never the entry's key (a hash).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, insert, select, update

from hashwatch.errors import ConfigError, EntryNotFoundError, HashwatchError
from hashwatch.exchange.base import Opinion
from hashwatch.lists.model import EntryStatus
from hashwatch.signals.types import normalize_hash, parse_hash_type
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_import import check_text
from hashwatch.store.list_status import change_status, list_lock, list_row
from hashwatch.store.lists import ListStore
from hashwatch.store.models import ENTRIES, utcnow
from hashwatch.store.opinion_models import OPINIONS

if TYPE_CHECKING:
    from hashwatch.exchange.negative import NegativeMove

__all__ = [
    "MAX_REASON",
    "EntryOpinions",
    "OpinionReceipt",
    "OpinionStore",
    "PeerOpinion",
    "checked_opinion",
    "clean_reason",
    "contested",
    "find_entry",
    "opinion_rows",
    "peer_opinion",
]

E = ENTRIES
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


def clean_reason(reason: str | None) -> str | None:
    """A reason as kept: stripped, None when empty, at most :data:`MAX_REASON` characters,
    without NUL (which PostgreSQL text cannot hold)."""
    reason = (reason or "").strip() or None
    if reason is not None and "\x00" in reason:
        raise ConfigError("a reason cannot hold NUL characters")
    return check_text("reason", reason, None, limit=MAX_REASON)


def checked_opinion(opinion: Opinion | str, reason: str | None) -> tuple[Opinion, str | None]:
    """An opinion and its reason as kept, whichever side records or sends it: a known
    opinion (else :class:`ConfigError` naming them), a clean reason, required for a false
    positive."""
    try:
        opinion = Opinion(opinion)
    except ValueError:
        raise ConfigError(f"an opinion is one of {', '.join(o.value for o in Opinion)}") from None
    reason = clean_reason(reason)
    if opinion is Opinion.FALSE_POSITIVE and reason is None:
        raise ConfigError("a false positive needs a reason (what the media really is)")
    return opinion, reason


def find_entry(conn: Connection, list_id: int, name: str, key: str) -> Any:
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


def opinion_rows(conn: Connection, entry_ids: list[int], *, history: bool, peer: str | None) -> Any:
    """The opinion rows of ``entry_ids`` (current ones unless ``history``; of ``peer`` only
    when given), by entry, peer and age."""
    query = select(O).where(O.c.entry_id.in_(entry_ids))
    if not history:
        query = query.where(O.c.superseded_by.is_(None))
    if peer is not None:
        query = query.where(O.c.peer == peer)
    return conn.execute(query.order_by(O.c.entry_id, O.c.peer, O.c.id)).all()


def peer_opinion(row: Any) -> PeerOpinion:
    """An opinion row as a :class:`PeerOpinion`."""
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
        opinion, reason = checked_opinion(opinion, reason)
        if not peer or len(peer) > _PEER_SIZE:
            raise ConfigError(f"a peer's name has 1 to {_PEER_SIZE} characters")
        with self.db.write(list_lock(list_name)) as conn:
            row = list_row(conn, list_name)
            entry = find_entry(conn, row.id, list_name, key)
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
                peer_opinion(r) for r in opinion_rows(conn, [entry.id], history=False, peer=None)
            ]
            status = str(entry.status)
            if status == EntryStatus.ACTIVE.value and contested(o.opinion for o in current):
                # In the opinion's transaction: the opinion and the dispute it makes are one
                # change, never one without the other.
                changes = change_status(
                    self.db,
                    conn,
                    row,
                    [int(entry.id)],
                    EntryStatus.DISPUTED,
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
            entry = find_entry(conn, row.id, list_name, key)
            rows = opinion_rows(conn, [entry.id], history=history, peer=None)
        return EntryOpinions(
            int(entry.id), str(entry.key), str(entry.status), tuple(map(peer_opinion, rows))
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
            for r in opinion_rows(conn, [e.id for e in entries], history=history, peer=peer):
                by_entry.setdefault(int(r.entry_id), []).append(peer_opinion(r))
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

    def move_to_negative(
        self,
        list_name: str,
        key: str,
        negative_list: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
    ) -> NegativeMove:
        """Move a reported false positive to a negative list
        (:func:`hashwatch.exchange.negative.move_to_negative`)."""
        from hashwatch.exchange.negative import move_to_negative  # it builds on this module

        return move_to_negative(self.db, list_name, key, negative_list, reason=reason, actor=actor)
