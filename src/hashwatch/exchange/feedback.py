"""Feedback on the subscriber's side: tell a peer what we think of one of its entries.

``hashwatch peers opinion PEER KEY --false-positive --reason TEXT`` finds the subscription
that brought the entry — the entry of one of the peer's local lists whose provenance names
the peer (``extra["peer"]``, written by :func:`~hashwatch.exchange.peers.to_record`), or an
entry of the peer still waiting in quarantine — and sends the opinion through the peer's
exchange (:meth:`~hashwatch.exchange.base.SignalExchange.report_opinion`; for a hashwatch
peer, ``POST /v1/feeds/{list}/opinions``). What was sent, or why sending failed, is kept in
our audit trail (``peer.opinion_sent``, ``peer.opinion_failed``): the peer, its list, our
list and entry, the opinion and the reason — never the key, a hash value.

The entry is named to the peer by the peer's own key for it and described by the hashes and
provenance we hold, which is what every exchange needs to find it on its side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select

from hashwatch.errors import EntryNotFoundError, ExchangeError, HashwatchError
from hashwatch.exchange.base import Opinion, RemoteEntry, SharedHash, SignalExchange, exchange_of
from hashwatch.exchange.opinions import checked_opinion
from hashwatch.exchange.peers import PeerInfo, PeerStore, Subscription, remote_from_json
from hashwatch.signals.types import normalize_hash, parse_hash_type
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.models import ENTRIES, HASHES, LISTS
from hashwatch.store.peer_models import PEER_QUARANTINE

__all__ = ["ExchangeFactory", "Feedback", "SentOpinion"]

E = ENTRIES
H = HASHES
Q = PEER_QUARANTINE

# Builds the exchange that reaches one of a peer's lists (tests pass a loopback transport).
ExchangeFactory = Callable[[PeerInfo, str], SignalExchange[Any]]


def _exchange(peer: PeerInfo, remote_list: str) -> SignalExchange[Any]:
    return exchange_of(peer.kind)(peer.config(remote_list))


@dataclass(frozen=True)
class SentOpinion:
    """An opinion sent to a peer: on which of its lists, about which of our entries."""

    peer: str
    remote_list: str
    local_list: str
    entry_id: int | None  # our entry; None while the entry waits in quarantine
    key: str  # the peer's key of the entry
    opinion: Opinion
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "remote_list": self.remote_list,
            "local_list": self.local_list,
            "entry_id": self.entry_id,
            "quarantined": self.entry_id is None,
            "key": self.key,
            "opinion": self.opinion.value,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class _Found:
    sub: Subscription
    entry_id: int | None
    entry: RemoteEntry


def _normal(key: str) -> str:
    htype, sep, value = key.strip().partition(":")
    try:
        parsed = parse_hash_type(htype)
        return f"{parsed.value}:{normalize_hash(parsed, value)}" if sep else key
    except HashwatchError:
        return key


def _local_entry(conn: Connection, peer: str, sub: Subscription, key: str) -> _Found | None:
    """The entry of ``sub``'s local list keyed ``key`` that came from ``peer``."""
    row = conn.execute(
        select(E.c.id, E.c.key, E.c.category, E.c.extra)
        .join(LISTS, LISTS.c.id == E.c.list_id)
        .where(and_(LISTS.c.name == sub.local_list, E.c.key == key))
    ).first()
    provenance = dict((row.extra or {}).get("peer") or {}) if row is not None else {}
    if row is None or provenance.get("name") != peer:
        return None
    hashes = tuple(
        SharedHash(h.hash_type, h.value, h.frame, h.frame_time, h.quality)
        for h in conn.execute(
            select(H.c.hash_type, H.c.value, H.c.frame, H.c.frame_time, H.c.quality)
            .where(and_(H.c.entry_id == row.id, H.c.active))
            .order_by(H.c.position)
        )
    )
    remote = RemoteEntry(
        key=str(provenance.get("key") or row.key),
        hashes=hashes,
        category=row.category,
        provenance=provenance,
    )
    return _Found(sub, int(row.id), remote)


def _quarantined(conn: Connection, sub: Subscription, key: str) -> _Found | None:
    row = conn.execute(
        select(Q.c.entry).where(and_(Q.c.subscription_id == sub.id, Q.c.key == key))
    ).first()
    return None if row is None else _Found(sub, None, remote_from_json(row.entry))


class Feedback:
    """Opinions we send to the peers we subscribe to."""

    def __init__(self, db: Database, *, factory: ExchangeFactory | None = None) -> None:
        self.db = db
        self.peers = PeerStore(db)
        self.factory = factory or _exchange

    def _find(self, peer: PeerInfo, key: str) -> _Found:
        """Where the peer's entry ``key`` is here: in one of its subscriptions' lists, or
        in quarantine; :class:`EntryNotFoundError` (not naming the key) when nowhere."""
        wanted = _normal(key)
        if wanted.isprintable() and len(wanted) <= 160:
            with self.db.read() as conn:
                for sub in peer.subscriptions:
                    found = _local_entry(conn, peer.name, sub, wanted)
                    found = found or _quarantined(conn, sub, wanted)
                    if found is not None:
                        return found
        raise EntryNotFoundError(
            f"no entry from peer {peer.name!r} has the key given (in "
            f"{', '.join(s.local_list for s in peer.subscriptions) or 'no list'} or quarantine)"
        )

    def send(
        self,
        peer_name: str,
        key: str,
        opinion: Opinion | str,
        reason: str | None = None,
        *,
        actor: str | None = None,
    ) -> SentOpinion:
        """Send our opinion on the peer's entry ``key`` to the peer and audit it here.

        A false positive needs a reason. Raises :class:`PeerNotFoundError` for an unknown
        peer, :class:`EntryNotFoundError` for a key none of its entries has here, and
        :class:`ExchangeError` when the peer cannot be reached or refuses (then audited as
        failed)."""
        opinion, reason = checked_opinion(opinion, reason)
        peer = self.peers.get(peer_name)
        found = self._find(peer, key)
        sent = SentOpinion(
            peer.name,
            found.sub.remote_list,
            found.sub.local_list,
            found.entry_id,
            found.entry.key,
            opinion,
            reason,
        )
        try:
            self.factory(peer, found.sub.remote_list).report_opinion(found.entry, opinion, reason)
        except ExchangeError as exc:
            self._audit(sent, actor, error=str(exc))
            raise
        self._audit(sent, actor)
        return sent

    def _audit(self, sent: SentOpinion, actor: str | None, error: str | None = None) -> None:
        details = {k: v for k, v in sent.as_dict().items() if k != "key"}
        with self.db.begin() as conn:
            record_audit(
                conn,
                actor=actor_or_user(actor),
                action="peer.opinion_failed" if error else "peer.opinion_sent",
                target=sent.peer,
                details=details | ({"error": error} if error else {}),
            )
