"""Webhooks and their delivery queue, kept in the database.

A match inserts one ``pending`` delivery per interested webhook in the same transaction as its
match records, and the request returns; a delivery loop (in every server process) claims due
rows and sends them. Because the queue is a table, deliveries survive restarts, and several
replicas share the work: a sender claims one row at a time (on PostgreSQL ``FOR UPDATE SKIP
LOCKED``) and leases it under a token of its own, renewing the lease while the request is in
flight (:meth:`WebhookStore.renew`), so a slow receiver cannot make a lease run out and another
replica send the same event again. A disabled or removed webhook is sent nothing more: its
queued deliveries are cancelled and cannot be resent.

One match request makes one event per webhook, whatever the number of matches: the event lists
the matches of that content (the caller's ``content_id``) that the webhook is interested in.

Every webhook request (the service's deliveries, ``hashwatch watch --webhook``) is signed the
same way, as Stripe signs its webhooks::

    Hashwatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

the receiver recomputes the HMAC over the timestamp and the raw body with the secret it was
given, compares in constant time and rejects old timestamps (:func:`verify_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, insert, select, update

from hashwatch.errors import ConfigError, WebhookNotFoundError
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database, DurableWriter, dbapi_call
from hashwatch.store.models import table_of, utcnow
from hashwatch.store.service import MATCH_RECORDS, WebhookDeliveryRow, WebhookRow
from hashwatch.store.webhook_http import TargetPolicy, redact_url

__all__ = [
    "DELIVERIES",
    "SIGNATURE_HEADER",
    "WEBHOOKS",
    "Delivery",
    "TestTarget",
    "WebhookStore",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "Hashwatch-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Hashwatch-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does (shown in docs/serve.md, used by the tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


WEBHOOKS = table_of(WebhookRow)
DELIVERIES = table_of(WebhookDeliveryRow)
W = WEBHOOKS
D = DELIVERIES


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery: what to send, where, with which secret, under which lease."""

    id: int
    webhook_id: int
    url: str
    secret: str
    event: dict[str, Any]
    attempts: int
    lease_token: str = ""


@dataclass(frozen=True)
class TestTarget:
    """A webhook's URL and secret, to send it a test event."""

    id: int
    url: str
    secret: str
    active: bool


def _webhook_dict(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "url": redact_url(row.url),
        "list": row.list_name,
        "category": row.category,
        "created_at": row.created_at.isoformat(),
        "active": row.disabled_at is None,
    }


def _delivery_dict(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "webhook_id": int(row.webhook_id),
        "status": row.status,
        "attempts": int(row.attempts),
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "last_error": row.last_error,
        "created_at": row.created_at.isoformat(),
        "delivered_at": row.delivered_at.isoformat() if row.delivered_at else None,
        "event": row.event,
    }


def _wants(hook: Any, match: dict[str, Any]) -> bool:
    return (hook.list_name is None or hook.list_name == match.get("list")) and (
        hook.category is None or hook.category == match.get("category")
    )


def event_for(hook: Any, event: dict[str, Any]) -> dict[str, Any] | None:
    """``event`` as ``hook`` receives it: a grouped event (``matches``) keeps only the matches
    the webhook is interested in (None if none is); a single alert (``list``, ``category`` at
    the top, as ``hashwatch watch`` queues) is sent whole or not at all."""
    if "matches" in event:
        wanted = [m for m in event["matches"] if _wants(hook, m)]
        return {**event, "matches": wanted} if wanted else None
    return event if _wants(hook, event) else None


class WebhookStore:
    """Webhooks, match records with their deliveries, and the delivery queue."""

    def __init__(
        self,
        db: Database,
        *,
        policy: TargetPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.policy = policy or TargetPolicy()
        self.clock = clock

    # -- webhooks ------------------------------------------------------------------------

    def add(
        self,
        url: str,
        *,
        list_name: str | None = None,
        category: str | None = None,
        actor: str | None = None,
    ) -> tuple[dict[str, Any], str]:
        """Register a webhook; returns it and its signing secret (shown once). A target the
        policy refuses (loopback, private, ...) is a :class:`ConfigError`."""
        if len(url) > 2000:
            raise ConfigError("a webhook URL has at most 2,000 characters")
        self.policy.check_url(url)
        secret = "whsec_" + secrets.token_urlsafe(32)
        with self.db.begin() as conn:
            wid = conn.execute(
                insert(W).values(
                    url=url,
                    secret=secret,
                    list_name=list_name or None,
                    category=category or None,
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            row = conn.execute(select(W).where(W.c.id == wid)).one()
            hook = _webhook_dict(row)
            record_audit(
                conn,
                actor=actor,
                action="webhook.added",
                target=f"webhook:{wid}",
                details={"url": hook["url"], "list": list_name, "category": category},
            )
        return hook, secret

    def all(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [_webhook_dict(r) for r in conn.execute(select(W).order_by(W.c.id))]

    def _row(self, conn: Connection, webhook_id: int) -> Any:
        row = conn.execute(select(W).where(W.c.id == webhook_id)).first()
        if row is None:
            raise WebhookNotFoundError(f"no webhook {webhook_id}")
        return row

    def _cancel_pending(self, conn: Connection, webhook_id: int) -> int:
        return int(
            conn.execute(
                update(D)
                .where(and_(D.c.webhook_id == webhook_id, D.c.status == "pending"))
                .values(status="cancelled", lease_token=None)
            ).rowcount
            or 0
        )

    def disable(self, webhook_id: int, *, actor: str | None = None) -> dict[str, Any]:
        """Stop sending to a webhook: it gets no new events and its queued deliveries are
        cancelled (kept, with status ``cancelled``)."""
        with self.db.begin() as conn:
            row = self._row(conn, webhook_id)
            cancelled = self._cancel_pending(conn, webhook_id)
            if row.disabled_at is None:
                conn.execute(update(W).where(W.c.id == webhook_id).values(disabled_at=utcnow()))
            record_audit(
                conn,
                actor=actor,
                action="webhook.disabled",
                target=f"webhook:{webhook_id}",
                details={"cancelled_deliveries": cancelled},
            )
            return _webhook_dict(conn.execute(select(W).where(W.c.id == webhook_id)).one())

    def remove(self, webhook_id: int, *, actor: str | None = None) -> dict[str, Any]:
        """Delete a webhook, its secret and its deliveries (the audit trail keeps the fact)."""
        with self.db.begin() as conn:
            hook = _webhook_dict(self._row(conn, webhook_id))
            deleted = conn.execute(delete(D).where(D.c.webhook_id == webhook_id)).rowcount
            conn.execute(delete(W).where(W.c.id == webhook_id))
            record_audit(
                conn,
                actor=actor,
                action="webhook.removed",
                target=f"webhook:{webhook_id}",
                details={"url": hook["url"], "deliveries_deleted": int(deleted or 0)},
            )
        return hook

    def test_target(self, webhook_id: int) -> TestTarget:
        with self.db.read() as conn:
            row = self._row(conn, webhook_id)
        return TestTarget(int(row.id), row.url, row.secret, row.disabled_at is None)

    # -- matches -------------------------------------------------------------------------

    def record_matches(
        self,
        records: list[dict[str, Any]],
        events: list[dict[str, Any]],
        *,
        before_commit: Callable[[], object] | None = None,
        writer: DurableWriter | None = None,
    ) -> int:
        """Store match records and queue, in one transaction, each event for every active
        webhook interested in it (:func:`event_for`). Returns the number of deliveries.
        ``before_commit`` runs last inside the transaction (the server's audit lines): if
        it raises, nothing is stored. ``writer``: the transaction is a durable one on the
        writer's kept connection (:class:`DurableWriter`, one caller at a time): the commit
        survives a power cut before this returns."""
        if not records and not events:
            return 0
        now = self.clock()
        with writer.begin() if writer is not None else self.db.begin() as conn:
            if records:
                insert_many(conn, MATCH_RECORDS, [{"at": now, **r} for r in records])
            # The webhooks are read only when there are events for them, and only when some
            # webhook is active in full (a server's usual flush has none to find).
            hooks = (
                conn.execute(select(W).where(W.c.disabled_at.is_(None))).all()
                if events and _any_active_hook(conn)
                else []
            )
            rows = [
                {
                    "webhook_id": h.id,
                    "event": sent,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event in events
                for h in hooks
                if (sent := event_for(h, event)) is not None
            ]
            if rows:
                conn.execute(insert(D), rows)
            if before_commit is not None:
                before_commit()
        return len(rows)

    # -- the queue -----------------------------------------------------------------------

    def claim(self, lease: timedelta = timedelta(seconds=30)) -> Delivery | None:
        """Take the next due delivery of an active webhook, leased to a fresh token."""
        now = self.clock()
        token = secrets.token_hex(16)
        with self.db.begin() as conn:
            query = (
                select(D.c.id, D.c.webhook_id, D.c.event, D.c.attempts, W.c.url, W.c.secret)
                .join(W, W.c.id == D.c.webhook_id)
                .where(
                    and_(
                        D.c.status == "pending",
                        D.c.next_attempt_at <= now,
                        W.c.disabled_at.is_(None),
                    )
                )
                .order_by(D.c.next_attempt_at, D.c.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=D)
            )
            row = conn.execute(query).first()
            if row is None:
                return None
            taken = conn.execute(
                update(D)
                .where(and_(D.c.id == row.id, D.c.status == "pending", D.c.next_attempt_at <= now))
                .values(next_attempt_at=now + lease, lease_token=token)
            ).rowcount
            if not taken:  # another sender took it between our read and write (SQLite)
                return None
        return Delivery(
            int(row.id),
            int(row.webhook_id),
            row.url,
            row.secret,
            dict(row.event),
            int(row.attempts),
            token,
        )

    def renew(self, delivery: Delivery, lease: timedelta) -> bool:
        """Extend the lease of a delivery being sent; False if it is no longer ours."""
        with self.db.begin() as conn:
            return bool(
                conn.execute(
                    update(D)
                    .where(
                        and_(
                            D.c.id == delivery.id,
                            D.c.status == "pending",
                            D.c.lease_token == delivery.lease_token,
                        )
                    )
                    .values(next_attempt_at=self.clock() + lease)
                ).rowcount
            )

    def delivered(self, delivery: Delivery) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(D)
                .where(D.c.id == delivery.id)
                .values(
                    status="delivered", delivered_at=self.clock(), last_error=None, lease_token=None
                )
            )

    def failed(self, delivery: Delivery, error: str, *, max_attempts: int, backoff_s: float) -> str:
        """Record a failed attempt: retry after ``backoff_s * 2**(attempts-1)``, or move the
        delivery to the dead letters after ``max_attempts``. Returns the new status.
        ``error`` is a reason class (see :class:`hashwatch.store.webhook_http.Outcome`)."""
        attempts = delivery.attempts + 1
        status = "dead" if attempts >= max_attempts else "pending"
        wait = timedelta(seconds=backoff_s * 2 ** (attempts - 1))
        with self.db.begin() as conn:
            conn.execute(
                update(D)
                .where(and_(D.c.id == delivery.id, D.c.status == "pending"))
                .values(
                    status=status,
                    attempts=attempts,
                    last_error=error[:500],
                    next_attempt_at=self.clock() + wait,
                    lease_token=None,
                )
            )
        return status

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(D).order_by(D.c.id.desc()).limit(limit)
        if status:
            query = query.where(D.c.status == status)
        with self.db.read() as conn:
            return [_delivery_dict(r) for r in conn.execute(query)]

    def resend(self, delivery_id: int, *, actor: str | None = None) -> dict[str, Any]:
        """Queue a delivery (typically a dead letter) again, with a fresh attempt count. A
        delivery of a disabled webhook is not resent (:class:`ConfigError`)."""
        with self.db.begin() as conn:
            row = conn.execute(select(D).where(D.c.id == delivery_id)).first()
            if row is None:
                raise WebhookNotFoundError(f"no webhook delivery {delivery_id}")
            if self._row(conn, row.webhook_id).disabled_at is not None:
                raise ConfigError(f"webhook {row.webhook_id} is disabled: nothing is sent to it")
            conn.execute(
                update(D)
                .where(D.c.id == delivery_id)
                .values(status="pending", attempts=0, next_attempt_at=utcnow(), lease_token=None)
            )
            record_audit(
                conn,
                actor=actor,
                action="webhook.resent",
                target=f"webhook:{row.webhook_id}",
                details={"deliveries": [delivery_id]},
            )
            return _delivery_dict(conn.execute(select(D).where(D.c.id == delivery_id)).one())

    def resend_dead(self, *, actor: str | None = None) -> int:
        """Queue every dead letter of an active webhook again; returns how many."""
        active = select(W.c.id).where(W.c.disabled_at.is_(None))
        with self.db.begin() as conn:
            count = int(
                conn.execute(
                    update(D)
                    .where(and_(D.c.status == "dead", D.c.webhook_id.in_(active)))
                    .values(status="pending", attempts=0, next_attempt_at=utcnow())
                ).rowcount
                or 0
            )
            record_audit(
                conn, actor=actor, action="webhook.resent", details={"dead_letters": count}
            )
        return count

    def pending_since(self, cutoff: datetime) -> int:
        with self.db.read() as conn:
            return len(
                conn.execute(
                    select(D.c.id).where(and_(D.c.status == "pending", D.c.created_at < cutoff))
                ).all()
            )


# -- the flush's statements on the driver's cursor --------------------------------------------
#
# A server's group commit runs these for every flush; through SQLAlchemy's execution (cache
# key, execution context, result) they cost ~0.2 ms of CPU more than on the DBAPI cursor.

# (SQL, parameter order, bind processors) by dialect, table and columns given; None where the
# statement needs more than the values given (a column's default computed by SQLAlchemy)
_Compiled = tuple[str, tuple[str, ...], tuple[Any, ...]]
_INSERT_SQL: dict[tuple[str, str, tuple[str, ...]], _Compiled | None] = {}


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``conn.execute(insert(table), rows)`` on the DBAPI cursor (one ``executemany``): the
    statement compiled once per dialect, table and set of columns, each value through its
    column type's bind processor as SQLAlchemy would (a timestamp as SQLite stores it)."""
    if not rows:
        return
    dialect = conn.dialect
    keys = tuple(rows[0])
    cache_key = (dialect.name, table.name, keys)
    if cache_key not in _INSERT_SQL:
        # As SQLAlchemy compiles it for executemany (PostgreSQL: no RETURNING of the ids)
        compiled = dialect.statement_compiler(
            dialect, insert(table), column_keys=list(keys), for_executemany=True
        )
        order = tuple(compiled.positiontup or ()) if dialect.positional else tuple(compiled.params)
        procs = tuple(table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in order)
        ok = sorted(order) == sorted(keys)
        _INSERT_SQL[cache_key] = (compiled.string, order, procs) if ok else None
    found = _INSERT_SQL[cache_key]
    if found is None or any(tuple(row) != keys for row in rows):
        conn.execute(insert(table), rows)
        return
    sql, order, procs = found
    params: list[Any]
    if dialect.positional:
        params = [
            tuple(p(row[k]) if p is not None else row[k] for k, p in zip(order, procs, strict=True))
            for row in rows
        ]
    else:
        params = [
            {k: p(row[k]) if p is not None else row[k] for k, p in zip(order, procs, strict=True)}
            for row in rows
        ]
    dbapi_call(conn, sql, params, lambda cursor: cursor.executemany(sql, params), many=True)


_ANY_HOOK_SQL = f"SELECT 1 FROM {W.name} WHERE {W.c.disabled_at.name} IS NULL LIMIT 1"


def _any_active_hook(conn: Connection) -> bool:
    def call(cursor: Any) -> list[Any]:
        cursor.execute(_ANY_HOOK_SQL)
        return list(cursor.fetchall())

    return bool(dbapi_call(conn, _ANY_HOOK_SQL, (), call))
