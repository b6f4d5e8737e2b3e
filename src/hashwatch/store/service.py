"""Tables and stores of the HTTP matching service: API keys, match records, webhooks.

They live in the same database as the lists so that every replica of ``hashwatch serve`` sees
the same keys, records and delivery queue. Uploaded media never reaches this module: a match
record holds when, which key, which list, which entry and the distance — no content and no
hash of the upload.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.errors import ConfigError, KeyNotFoundError, UserNotFoundError
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.feed_models import GRANTS
from hashwatch.store.models import LISTS, Base, BigId, table_of, utcnow
from hashwatch.store.user_models import USERS

__all__ = [
    "KEYS",
    "MATCH_RECORDS",
    "ApiKey",
    "Disclosure",
    "GrantAccess",
    "KeyInfo",
    "KeyStore",
    "MatchRecord",
    "MatchRecordStore",
    "NewKey",
    "Role",
    "WebhookDeliveryRow",
    "WebhookRow",
    "hash_token",
]


class Role(StrEnum):
    """What a key may do. Matcher, curator and admin each include the rights of the ones
    before them. A peer key (another organisation) stands below them all: it passes only
    routes that ask for :attr:`PEER` (any key), and there its grants decide
    (:class:`GrantAccess`)."""

    MATCHER = "matcher"  # hash and match
    CURATOR = "curator"  # + lists
    ADMIN = "admin"  # + keys, webhooks, settings
    PEER = "peer"  # only what its grants allow, list by list

    @property
    def rank(self) -> int:
        return -1 if self is Role.PEER else list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class GrantAccess(StrEnum):
    """What a peer key may do with one list."""

    FEED = "feed"  # read the list's published feed
    QUERY = "query"  # match against the list, never read it


class Disclosure(StrEnum):
    """What a match tells the key that asked (docs/serve.md, "What a match reveals").

    An exact PDQ distance leaks the list's hash: flip each of the 256 bits of a near query and
    watch the distance move by one. ``banded`` answers with the band the distance falls in
    (0-8, 9-16, 17-24, 25-threshold by default), ``hidden`` with the match and the list's and
    entry's facts only."""

    EXACT = "exact"
    BANDED = "banded"
    HIDDEN = "hidden"


class ApiKey(Base):
    """An API key, stored as the SHA-256 of its token: the token itself is shown once."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # to recognise a key
    rate_per_s: Mapped[int | None] = mapped_column(Integer)  # None: the server's default
    # What this key's matches reveal (exact, banded, hidden); None: the server's default.
    disclosure: Mapped[str | None] = mapped_column(String(16))
    signals_per_window: Mapped[int | None] = mapped_column(Integer)  # None: the server's
    # The person the key acts as (a reviewer's automation); None: a service key of ``role``.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MatchRecord(Base):
    """One match served: kept for the configured retention, then purged."""

    __tablename__ = "match_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    key_name: Mapped[str] = mapped_column(String(200), nullable=False)
    list_name: Mapped[str] = mapped_column(String(200), nullable=False)
    entry_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash_type: Mapped[str] = mapped_column(String(16), nullable=False)
    distance: Mapped[int] = mapped_column(Integer, nullable=False)
    content_id: Mapped[str | None] = mapped_column(String(200))  # the caller's id of the upload
    __table_args__ = (Index("ix_match_records_at", "at"),)


class WebhookRow(Base):
    """Where match events go: every match, or only one list's or one category's."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    secret: Mapped[str] = mapped_column(String(128), nullable=False)  # needed to sign
    list_name: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDeliveryRow(Base):
    """One event for one webhook: ``pending`` until sent, ``dead`` after too many failures."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_token: Mapped[str | None] = mapped_column(String(32))  # the sender holding it now
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


KEYS = table_of(ApiKey)
MATCH_RECORDS = table_of(MatchRecord)
K = KEYS
MR = MATCH_RECORDS


def hash_token(token: str) -> str:
    """What is stored of a key: SHA-256 of the token (the token has 256 random bits, so a
    slow password hash would add nothing)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    role: Role
    prefix: str
    rate_per_s: int | None
    created_at: datetime
    revoked_at: datetime | None
    disclosure: Disclosure | None = None  # None: the server's default
    signals_per_window: int | None = None  # None: the server's default
    user: str | None = None  # the user the key acts as (None: a service key)
    user_role: str | None = None  # that user's role (reviewer, lead, admin)
    user_id: int | None = None
    grants: Mapping[str, str] = field(default_factory=dict)  # a peer's: list name -> access

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "prefix": self.prefix,
            "rate_per_s": self.rate_per_s,
            "disclosure": self.disclosure.value if self.disclosure else None,
            "signals_per_window": self.signals_per_window,
            "user": self.user,
            "grants": dict(sorted(self.grants.items())),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``token`` is shown once and never stored."""

    info: KeyInfo
    token: str


def _key_info(row: Any, user: Any = None, grants: Mapping[str, str] | None = None) -> KeyInfo:
    return KeyInfo(
        int(row.id),
        row.name,
        Role(row.role),
        row.prefix,
        row.rate_per_s,
        row.created_at,
        row.revoked_at,
        Disclosure(row.disclosure) if row.disclosure else None,
        row.signals_per_window,
        user.name if user is not None else None,
        user.role if user is not None else None,
        int(user.id) if user is not None else None,
        dict(grants or {}),
    )


def _grants_of(conn: Any, key_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each key's grants, list name -> access (keys without any are absent)."""
    out: dict[int, dict[str, str]] = {}
    if not key_ids:
        return out
    rows = conn.execute(
        select(GRANTS.c.key_id, GRANTS.c.access, LISTS.c.name)
        .join(LISTS, LISTS.c.id == GRANTS.c.list_id)
        .where(GRANTS.c.key_id.in_(key_ids))
    )
    for r in rows:
        out.setdefault(int(r.key_id), {})[r.name] = r.access
    return out


def _full_info(conn: Any, row: Any) -> KeyInfo:
    return _key_info(row, _user_of(conn, row), _grants_of(conn, [int(row.id)]).get(int(row.id)))


def _check_grants(role: Role, grants: Mapping[str, str] | None) -> dict[str, str]:
    if not grants:
        return {}
    if role is not Role.PEER:
        raise ConfigError("only a peer key has grants on lists (--role peer)")
    return {name: GrantAccess(access).value for name, access in grants.items()}


def _user_of(conn: Any, row: Any) -> Any:
    if row.user_id is None:
        return None
    return conn.execute(select(USERS).where(USERS.c.id == row.user_id)).first()


def _check_limits(rate_per_s: int | None, signals_per_window: int | None) -> None:
    if rate_per_s is not None and rate_per_s <= 0:
        raise ConfigError("a key's rate limit must be positive")
    if signals_per_window is not None and signals_per_window < 0:
        raise ConfigError("a key's signal budget is 0 (no cap) or positive")


class KeyStore:
    """API keys of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        role: Role,
        *,
        rate_per_s: int | None = None,
        disclosure: Disclosure | str | None = None,
        signals_per_window: int | None = None,
        actor: str | None = None,
        user: str | None = None,
        grants: Mapping[str, GrantAccess | str] | None = None,
    ) -> NewKey:
        """A new key of ``role``; with ``user``, a key that acts as that user (a reviewer's
        key votes as the reviewer, with the user's role; ``role`` is then stored as the
        lowest, matcher, and grants nothing of its own). A peer key's ``grants`` map list
        names to what it may do with them (``feed`` or ``query``)."""
        if not name.strip() or len(name) > 200:
            raise ConfigError("a key needs a name of 1 to 200 characters")
        _check_limits(rate_per_s, signals_per_window)
        granted = _check_grants(Role(role), grants)
        if granted and user is not None:
            raise ConfigError("a key acting as a user has no grants of its own")
        shown = Disclosure(disclosure).value if disclosure else None
        token = "hw_" + secrets.token_urlsafe(32)
        with self.db.begin() as conn:
            if conn.execute(select(K.c.id).where(K.c.name == name)).first() is not None:
                raise ConfigError(f"a key named {name!r} exists already")
            owner = None
            if user is not None:
                owner = conn.execute(select(USERS).where(USERS.c.name == user)).first()
                if owner is None:
                    raise UserNotFoundError(f"no user named {user!r}")
                if owner.disabled:
                    raise ConfigError(f"the user {user!r} is disabled")
                role = Role.MATCHER
            conn.execute(
                insert(K).values(
                    name=name,
                    role=Role(role).value,
                    token_sha256=hash_token(token),
                    prefix=token[:10],
                    rate_per_s=rate_per_s,
                    disclosure=shown,
                    signals_per_window=signals_per_window,
                    user_id=None if owner is None else owner.id,
                    created_at=utcnow(),
                )
            )
            row = conn.execute(select(K).where(K.c.name == name)).one()
            self._grant(conn, int(row.id), granted)
            record_audit(
                conn,
                actor=actor,
                action="key.created",
                target=f"key:{name}",
                details={
                    "role": Role(role).value,
                    "prefix": row.prefix,
                    "disclosure": shown,
                    "user": user,
                    **({"grants": granted} if granted else {}),
                },
            )
        return NewKey(_key_info(row, owner, granted), token)

    @staticmethod
    def _grant(conn: Any, key_id: int, grants: Mapping[str, str]) -> None:
        if not grants:
            return
        names = sorted(grants)
        ids = {
            r.name: int(r.id)
            for r in conn.execute(select(LISTS.c.id, LISTS.c.name).where(LISTS.c.name.in_(names)))
        }
        missing = [n for n in names if n not in ids]
        if missing:
            raise ConfigError(f"no hash list named {', '.join(map(repr, missing))} to grant")
        conn.execute(
            insert(GRANTS),
            [
                {"key_id": key_id, "list_id": ids[n], "access": grants[n], "created_at": utcnow()}
                for n in names
            ],
        )

    def update(
        self,
        name: str,
        *,
        disclosure: Disclosure | str | None = None,
        rate_per_s: int | None = None,
        signals_per_window: int | None = None,
        actor: str | None = None,
    ) -> KeyInfo:
        """Change what a key's matches reveal or its limits (None: left as it is)."""
        _check_limits(rate_per_s, signals_per_window)
        changes: dict[str, Any] = {}
        if disclosure is not None:
            changes["disclosure"] = Disclosure(disclosure).value
        if rate_per_s is not None:
            changes["rate_per_s"] = rate_per_s
        if signals_per_window is not None:
            changes["signals_per_window"] = signals_per_window
        with self.db.begin() as conn:
            row = conn.execute(select(K).where(K.c.name == name)).first()
            if row is None:
                raise KeyNotFoundError(f"no API key named {name!r}")
            if changes:
                conn.execute(update(K).where(K.c.id == row.id).values(**changes))
            record_audit(
                conn, actor=actor, action="key.updated", target=f"key:{name}", details=changes
            )
            fresh = conn.execute(select(K).where(K.c.id == row.id)).one()
            return _full_info(conn, fresh)

    def get(self, key_id: int) -> KeyInfo | None:
        with self.db.read() as conn:
            row = conn.execute(select(K).where(K.c.id == key_id)).first()
            return None if row is None else _full_info(conn, row)

    def authenticate(self, token: str) -> KeyInfo | None:
        """The live key whose token this is, or None. The stored digest is compared in
        constant time (the database lookup narrows by digest, which reveals nothing). A key
        of a disabled user is refused like a revoked one."""
        digest = hash_token(token)
        with self.db.read() as conn:
            row = conn.execute(select(K).where(K.c.token_sha256 == digest)).first()
            owner = None if row is None else _user_of(conn, row)
            grants = {} if row is None else _grants_of(conn, [int(row.id)])
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        if row.revoked_at is not None:
            return None
        if row.user_id is not None and (owner is None or owner.disabled):
            return None
        return _key_info(row, owner, grants.get(int(row.id)))

    def all(self) -> list[KeyInfo]:
        with self.db.read() as conn:
            names = {int(u.id): u for u in conn.execute(select(USERS))}
            rows = conn.execute(select(K).order_by(K.c.id)).all()
            grants = _grants_of(conn, [int(r.id) for r in rows if r.role == Role.PEER.value])
        return [
            _key_info(r, names.get(r.user_id) if r.user_id else None, grants.get(int(r.id)))
            for r in rows
        ]

    def revoke(self, name: str, *, actor: str | None = None) -> KeyInfo:
        with self.db.begin() as conn:
            row = conn.execute(select(K).where(K.c.name == name)).first()
            if row is None:
                raise KeyNotFoundError(f"no API key named {name!r}")
            if row.revoked_at is None:
                conn.execute(update(K).where(K.c.id == row.id).values(revoked_at=utcnow()))
                record_audit(
                    conn,
                    actor=actor,
                    action="key.revoked",
                    target=f"key:{name}",
                    details={"prefix": row.prefix},
                )
            fresh = conn.execute(select(K).where(K.c.id == row.id)).one()
            return _full_info(conn, fresh)


class MatchRecordStore:
    """The record of matches served (time, key, list, entry, distance, the caller's
    ``content_id``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.db.begin() as conn:
                conn.execute(insert(MR), [{"at": utcnow(), **r} for r in rows])

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(select(MR).order_by(MR.c.id.desc()).limit(limit)).mappings()
            return [{**r, "at": r["at"].isoformat()} for r in rows]

    def count(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(MR)).scalar_one())

    def purge(self, retention: timedelta, now: datetime | None = None) -> int:
        """Delete records older than ``retention``; returns how many were deleted."""
        cutoff = (now or utcnow()) - retention
        with self.db.begin() as conn:
            return int(conn.execute(delete(MR).where(MR.c.at < cutoff)).rowcount or 0)
