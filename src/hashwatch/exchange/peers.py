"""Peers we subscribe to, their subscriptions, and the quarantine of ``review`` peers.

A peer is an organisation whose lists we read: its URL, the kind of exchange it speaks
(:func:`~hashwatch.exchange.base.exchange_of`), our token there, its public key, our trust in
it (``auto``: its entries apply at once; ``review``: they wait in quarantine for a person),
and how its category codes map onto ours. Each subscription reads one of its lists into one
of ours and keeps the exchange's checkpoint (:mod:`hashwatch.exchange.sync` saves it with each
page). The token is a secret: :class:`PeerInfo` never shows it (``as_dict`` gives a prefix),
and no message, log line or audit record holds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from hashwatch.errors import ConfigError, ExchangeError, InvalidHashError, PeerNotFoundError
from hashwatch.exchange.base import PeerConfig, RemoteEntry, SharedHash, exchange_of
from hashwatch.lists.model import EntryRecord, EntryStatus, VideoFrameHash, check_list_name
from hashwatch.signals.types import HashType, normalize_hash
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_import import check_category_map
from hashwatch.store.models import utcnow
from hashwatch.store.peer_models import PEER_QUARANTINE, PEER_SUBSCRIPTIONS, PEERS

__all__ = [
    "TRUSTS",
    "UNMAPPED_TAG",
    "PeerInfo",
    "PeerStore",
    "Subscription",
    "dispute_reason",
    "map_category",
    "parse_list_pairs",
    "parse_map",
    "remote_from_json",
    "remote_to_json",
    "revoke_reason",
    "to_record",
]

P = PEERS
S = PEER_SUBSCRIPTIONS
Q = PEER_QUARANTINE
TRUSTS = ("auto", "review")


def peer_lock(name: str) -> str:
    return f"peer:{name}"


def parse_list_pairs(items: Sequence[str]) -> list[tuple[str, str]]:
    """``REMOTE:LOCAL`` (or ``REMOTE``: the same name here) as (remote, local) pairs."""
    pairs = []
    for item in items:
        remote, _, local = item.partition(":")
        remote, local = remote.strip(), (local.strip() or remote.strip())
        if not remote:
            raise ConfigError("--list takes REMOTE:LOCAL, e.g. --list agency-known:from-agency")
        check_list_name(local)
        pairs.append((remote, local))
    if not pairs:
        raise ConfigError("a peer needs at least one --list REMOTE:LOCAL")
    if len({r for r, _ in pairs}) != len(pairs):
        raise ConfigError("each of the peer's lists can be read once")
    return pairs


def parse_map(items: Sequence[str]) -> dict[str, str]:
    """``REMOTE=LOCAL`` category codes as a mapping."""
    mapping: dict[str, str] = {}
    for item in items:
        remote, sep, local = item.partition("=")
        if not sep or not remote.strip() or not local.strip():
            raise ConfigError("--map takes REMOTE=LOCAL category codes, e.g. --map A=1")
        mapping[remote.strip()] = local.strip()
    check_category_map(mapping)
    return mapping


@dataclass(frozen=True)
class Subscription:
    id: int
    remote_list: str
    local_list: str
    origin: str | None
    checkpoint: dict[str, Any] | None
    pages: int = 0
    upserts: int = 0
    revocations: int = 0
    quarantined: int = 0
    pending: int = 0  # entries now waiting in quarantine
    last_sync_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        at = self.last_sync_at.isoformat() if self.last_sync_at else None
        err_at = self.last_error_at.isoformat() if self.last_error_at else None
        return {
            "remote_list": self.remote_list,
            "local_list": self.local_list,
            "origin": self.origin,
            "applied_records": int((self.checkpoint or {}).get("after", 0) or 0),
            "pages": self.pages,
            "upserts": self.upserts,
            "revocations": self.revocations,
            "quarantined": self.quarantined,
            "pending_review": self.pending,
            "last_sync_at": at,
            "last_error": self.last_error,
            "last_error_at": err_at,
        }


@dataclass(frozen=True)
class PeerInfo:
    """A peer. ``token`` is a secret: never printed, logged or audited (``repr`` hides it)."""

    id: int
    name: str
    url: str
    kind: str
    token: str | None = field(repr=False)
    key: str | None
    trust: str
    category_map: dict[str, str]
    options: dict[str, str]
    subscriptions: list[Subscription]

    @property
    def token_hint(self) -> str | None:
        """The first characters of the token, enough to tell two tokens apart."""
        return None if not self.token else self.token[:6] + "…"

    def subscription(self, remote_list: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.remote_list == remote_list:
                return sub
        raise PeerNotFoundError(f"peer {self.name!r} has no subscription to {remote_list!r}")

    def config(self, remote_list: str) -> PeerConfig:
        """What an exchange needs to read ``remote_list`` of this peer."""
        sub = self.subscription(remote_list)
        options = dict(self.options)
        if self.key:
            options["key"] = self.key
        if sub.origin:
            options["origin"] = sub.origin
        return PeerConfig(self.name, self.url, self.token, remote_list, options)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "kind": self.kind,
            "token": self.token_hint,
            "key": self.key,
            "trust": self.trust,
            "category_map": self.category_map,
            "subscriptions": [s.as_dict() for s in self.subscriptions],
        }


class PeerStore:
    """The peers of one database (``hashwatch peers``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        name: str,
        url: str,
        *,
        lists: Sequence[tuple[str, str]],
        token: str | None = None,
        key: str | None = None,
        kind: str = "hashwatch",
        trust: str = "auto",
        category_map: Mapping[str, str] | None = None,
        options: Mapping[str, str] | None = None,
        origins: Mapping[str, str] | None = None,
        checkpoints: Mapping[str, dict[str, Any]] | None = None,
        actor: str | None = None,
        conn: Connection | None = None,
    ) -> None:
        """Record a peer and its subscriptions (``origins`` and ``checkpoints`` per remote
        list: what subscribing found). Use :func:`hashwatch.exchange.sync.subscribe`,
        which also checks the peer and creates the local lists."""
        if not name or len(name) > 200 or any(c.isspace() or c == "/" for c in name):
            raise ConfigError("a peer name is 1 to 200 characters without spaces or '/'")
        if trust not in TRUSTS:
            raise ConfigError(f"--trust is one of {', '.join(TRUSTS)}")
        if not url.startswith(("http://", "https://")):
            raise ConfigError("a peer URL starts with http:// or https://")
        exchange_of(kind)  # an unknown kind is refused here, naming the known ones
        mapping = check_category_map(dict(category_map or {})) or {}
        opened = self.db.write(peer_lock(name)) if conn is None else nullcontext(conn)
        with opened as c:
            self._add(
                c,
                name,
                url,
                lists,
                token,
                key,
                kind,
                trust,
                mapping,
                options,
                origins,
                checkpoints,
                actor,
            )

    def _add(
        self,
        conn: Connection,
        name: str,
        url: str,
        lists: Sequence[tuple[str, str]],
        token: str | None,
        key: str | None,
        kind: str,
        trust: str,
        mapping: dict[str, str],
        options: Mapping[str, str] | None,
        origins: Mapping[str, str] | None,
        checkpoints: Mapping[str, dict[str, Any]] | None,
        actor: str | None,
    ) -> None:
        if conn.execute(select(P.c.id).where(P.c.name == name)).first() is not None:
            raise ExchangeError(f"a peer named {name!r} exists already (peers remove it first)")

        peer_id = conn.execute(
            insert(P).values(
                name=name,
                url=url,
                kind=kind,
                token=token,
                key=key,
                trust=trust,
                category_map=mapping,
                options=dict(options or {}),
                created_at=utcnow(),
                created_by=actor_or_user(actor),
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        for remote, local in lists:
            conn.execute(
                insert(S).values(
                    peer_id=peer_id,
                    remote_list=remote,
                    local_list=local,
                    origin=(origins or {}).get(remote),
                    checkpoint=(checkpoints or {}).get(remote),
                    pages=0,
                    upserts=0,
                    revocations=0,
                    quarantined=0,
                )
            )
        record_audit(
            conn,
            actor=actor,
            action="peer.added",
            target=name,
            details={
                "url": url,
                "kind": kind,
                "trust": trust,
                "lists": [f"{r}:{loc}" for r, loc in lists],
                "category_map": mapping,
            },
        )

    def get(self, name: str) -> PeerInfo:
        with self.db.read() as conn:
            return self.info(conn, name)

    def info(self, conn: Connection, name: str) -> PeerInfo:
        row = conn.execute(select(P).where(P.c.name == name)).first()
        if row is None:
            raise PeerNotFoundError(f"no peer named {name!r} (see `hashwatch peers list`)")
        return self._info(conn, row)

    def _info(self, conn: Connection, row: Any) -> PeerInfo:
        subs = conn.execute(select(S).where(S.c.peer_id == row.id).order_by(S.c.id)).all()
        pending: dict[int, int] = dict(
            conn.execute(
                select(Q.c.subscription_id, func.count())
                .where(Q.c.subscription_id.in_([s.id for s in subs]))
                .group_by(Q.c.subscription_id)
            ).all()
        )
        return PeerInfo(
            id=int(row.id),
            name=row.name,
            url=row.url,
            kind=row.kind,
            token=row.token,
            key=row.key,
            trust=row.trust,
            category_map=dict(row.category_map or {}),
            options={str(k): str(v) for k, v in (row.options or {}).items()},
            subscriptions=[
                Subscription(
                    id=int(s.id),
                    remote_list=s.remote_list,
                    local_list=s.local_list,
                    origin=s.origin,
                    checkpoint=dict(s.checkpoint) if s.checkpoint is not None else None,
                    pages=int(s.pages),
                    upserts=int(s.upserts),
                    revocations=int(s.revocations),
                    quarantined=int(s.quarantined),
                    pending=int(pending.get(s.id, 0)),
                    last_sync_at=s.last_sync_at,
                    last_error=s.last_error,
                    last_error_at=s.last_error_at,
                )
                for s in subs
            ],
        )

    def all(self) -> list[PeerInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(P).order_by(P.c.name)).all()
            return [self._info(conn, row) for row in rows]

    def remove(self, name: str, *, actor: str | None = None) -> None:
        """Forget a peer, its subscriptions and its quarantine. The local lists stay (their
        entries keep their provenance); delete them with ``lists delete`` if wanted."""
        with self.db.write(peer_lock(name)) as conn:
            info = self.info(conn, name)
            ids = [s.id for s in info.subscriptions]
            conn.execute(delete(Q).where(Q.c.subscription_id.in_(ids)))
            conn.execute(delete(S).where(S.c.peer_id == info.id))
            conn.execute(delete(P).where(P.c.id == info.id))
            record_audit(
                conn,
                actor=actor,
                action="peer.removed",
                target=name,
                details={
                    "lists": [f"{s.remote_list}:{s.local_list}" for s in info.subscriptions],
                    "pending_review_dropped": sum(s.pending for s in info.subscriptions),
                },
            )

    def record_error(self, name: str, remote_list: str | None, message: str) -> None:
        """Note a failed sync on the subscription (all of the peer's when ``remote_list`` is
        None) and audit it."""
        with self.db.write(peer_lock(name)) as conn:
            info = self.info(conn, name)
            ids = [s.id for s in info.subscriptions if remote_list in (None, s.remote_list)]
            conn.execute(
                update(S)
                .where(S.c.id.in_(ids))
                .values(last_error=message[:2000], last_error_at=utcnow())
            )
            record_audit(
                conn,
                actor=None,
                action="peer.sync_failed",
                target=name,
                details={"list": remote_list, "error": message},
            )


# -- a peer's entries as ours --------------------------------------------------------

UNMAPPED_TAG = "category-unmapped"
_FIELDS = ("series", "victim_identified", "tags", "comment", "date")
_HASH_TYPES = {t.value: t for t in HashType}


def revoke_reason(peer: str) -> str:
    return f"revoked by peer {peer}"


def dispute_reason(peer: str) -> str:
    return f"disputed by peer {peer}"


def remote_to_json(entry: RemoteEntry) -> dict[str, Any]:
    """A remote entry as the quarantine keeps it (the feed's entry object plus its key)."""
    return {
        "key": entry.key,
        "hashes": [h.as_json() for h in entry.hashes],
        "category": entry.category,
        "scheme": entry.scheme,
        "disputed": entry.disputed,
        "fields": dict(entry.fields),
        "provenance": dict(entry.provenance),
    }


def remote_from_json(data: Mapping[str, Any]) -> RemoteEntry:
    return RemoteEntry(
        key=str(data["key"]),
        hashes=tuple(SharedHash.from_json(h) for h in data.get("hashes", [])),
        category=data.get("category"),
        scheme=data.get("scheme"),
        disputed=bool(data.get("disputed", False)),
        fields=dict(data.get("fields") or {}),
        provenance=dict(data.get("provenance") or {}),
    )


def map_category(
    entry: RemoteEntry, category_map: Mapping[str, str], local_scheme: str
) -> tuple[str | None, bool]:
    """Our code for the entry's category, and whether it is unmapped (kept raw, flagged)."""
    code = entry.category
    if code is None:
        return None, False
    if code in category_map:
        return category_map[code], False
    if entry.scheme is not None and entry.scheme == local_scheme:
        return code, False
    return None, True


def to_record(
    entry: RemoteEntry, peer: str, category_map: Mapping[str, str], local_scheme: str
) -> EntryRecord | None:
    """The local entry for a peer's entry; None when none of its hashes can be read here."""
    hashes: list[tuple[HashType, str]] = []
    frames: list[VideoFrameHash] = []
    for shared in entry.hashes:
        htype = _HASH_TYPES.get(shared.hash_type)
        if htype is None:
            continue  # a hash type this version does not know
        try:
            value = normalize_hash(htype, shared.value)
        except InvalidHashError:
            continue  # a malformed value
        if shared.frame is not None and htype is HashType.PDQ:
            frame = VideoFrameHash(
                int(shared.frame), float(shared.frame_time or 0.0), value, int(shared.quality or 0)
            )
            frames.append(frame)
        elif shared.frame is None:
            hashes.append((htype, value))
    if not hashes:
        return None
    # The feed's key first, so that the local entry is keyed as the peer keys it.
    if f"{hashes[0][0].value}:{hashes[0][1]}" != entry.key:
        hashes.sort(key=lambda h: f"{h[0].value}:{h[1]}" != entry.key)
    category, unmapped = map_category(entry, category_map, local_scheme)
    fields = dict(entry.fields)
    tags = [str(t) for t in fields.pop("tags", None) or []]
    if unmapped:
        tags.append(UNMAPPED_TAG)
    prov = entry.provenance
    extra: dict[str, Any] = {
        "peer": {
            "name": peer,
            "key": entry.key,
            **{k: prov.get(k) for k in ("origin", "seq", "org", "list", "version", "date")},
        }
    }
    if unmapped:
        extra["category_raw"] = {"code": entry.category, "scheme": entry.scheme}
    rest = {k: v for k, v in fields.items() if k not in _FIELDS}
    if rest:
        extra["fields"] = rest
    victim = fields.get("victim_identified")
    return EntryRecord(
        hashes=tuple(hashes),
        category=category,
        series=None if fields.get("series") is None else str(fields["series"]),
        victim_identified=None if victim is None else bool(victim),
        tags=tuple(tags),
        comment=None if fields.get("comment") is None else str(fields["comment"]),
        date=None if fields.get("date") is None else str(fields["date"]),
        status=EntryStatus.DISPUTED if entry.disputed else EntryStatus.ACTIVE,
        source=f"peer {peer} seq {prov.get('seq', '?')}",
        extra=extra,
        frames=tuple(frames),
    )
