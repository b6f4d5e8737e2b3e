"""Webhooks and their delivery queue, kept in the database.

A match inserts one ``pending`` delivery per interested webhook in the same transaction as its
match records, and the request returns; a delivery loop (in every server process) claims due
rows and sends them. Because the queue is a table, deliveries survive restarts, and several
replicas share the work: on PostgreSQL a claim takes rows ``FOR UPDATE SKIP LOCKED`` and leases
them, so two replicas never send the same row at once.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from hashwatch.errors import ConfigError, WebhookNotFoundError
from hashwatch.store.database import Database
from hashwatch.store.models import table_of, utcnow
from hashwatch.store.service import MATCH_RECORDS, WebhookDeliveryRow, WebhookRow

__all__ = [
    "DELIVERIES",
    "SIGNATURE_HEADER",
    "WEBHOOKS",
    "Delivery",
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
    """A claimed delivery: what to send, where, and with which secret."""

    id: int
    webhook_id: int
    url: str
    secret: str
    event: dict[str, Any]
    attempts: int


def _webhook_dict(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "url": row.url,
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


class WebhookStore:
    """Webhooks, match records with their deliveries, and the delivery queue."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- webhooks ------------------------------------------------------------------------

    def add(
        self, url: str, *, list_name: str | None = None, category: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """Register a webhook; returns it and its signing secret (shown once)."""
        if not url.startswith(("http://", "https://")):
            raise ConfigError("a webhook URL starts with http:// or https://")
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
        return _webhook_dict(row), secret

    def all(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [_webhook_dict(r) for r in conn.execute(select(W).order_by(W.c.id))]

    def disable(self, webhook_id: int) -> dict[str, Any]:
        with self.db.begin() as conn:
            row = conn.execute(select(W).where(W.c.id == webhook_id)).first()
            if row is None:
                raise WebhookNotFoundError(f"no webhook {webhook_id}")
            conn.execute(update(W).where(W.c.id == webhook_id).values(disabled_at=utcnow()))
            return _webhook_dict(conn.execute(select(W).where(W.c.id == webhook_id)).one())

    # -- matches -------------------------------------------------------------------------

    def record_matches(self, records: list[dict[str, Any]], events: list[dict[str, Any]]) -> int:
        """Store match records and queue one delivery per interested webhook, in one
        transaction. ``events[i]`` is the webhook payload of ``records[i]``; its ``list`` and
        ``category`` select the webhooks. Returns the number of deliveries queued."""
        if not records:
            return 0
        now = utcnow()
        with self.db.begin() as conn:
            conn.execute(insert(MATCH_RECORDS), [{"at": now, **r} for r in records])
            hooks = conn.execute(select(W).where(W.c.disabled_at.is_(None))).all()
            rows = [
                {
                    "webhook_id": h.id,
                    "event": event,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event in events
                for h in hooks
                if (h.list_name is None or h.list_name == event.get("list"))
                and (h.category is None or h.category == event.get("category"))
            ]
            if rows:
                conn.execute(insert(D), rows)
        return len(rows)

    # -- the queue -----------------------------------------------------------------------

    def claim_due(
        self, limit: int = 20, lease: timedelta = timedelta(seconds=30)
    ) -> list[Delivery]:
        """Take up to ``limit`` due deliveries, leased so no other process sends them now."""
        now = utcnow()
        with self.db.begin() as conn:
            query = (
                select(D.c.id, D.c.webhook_id, D.c.event, D.c.attempts, W.c.url, W.c.secret)
                .join(W, W.c.id == D.c.webhook_id)
                .where(and_(D.c.status == "pending", D.c.next_attempt_at <= now))
                .order_by(D.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=D)
            )
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(D)
                    .where(D.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + lease)
                )
        return [
            Delivery(int(r.id), int(r.webhook_id), r.url, r.secret, dict(r.event), int(r.attempts))
            for r in rows
        ]

    def delivered(self, delivery_id: int) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(D)
                .where(D.c.id == delivery_id)
                .values(status="delivered", delivered_at=utcnow(), last_error=None)
            )

    def failed(self, delivery: Delivery, error: str, *, max_attempts: int, backoff_s: float) -> str:
        """Record a failed attempt: retry after ``backoff_s * 2**(attempts-1)``, or move the
        delivery to the dead letters after ``max_attempts``. Returns the new status."""
        attempts = delivery.attempts + 1
        status = "dead" if attempts >= max_attempts else "pending"
        wait = timedelta(seconds=backoff_s * 2 ** (attempts - 1))
        with self.db.begin() as conn:
            conn.execute(
                update(D)
                .where(D.c.id == delivery.id)
                .values(
                    status=status,
                    attempts=attempts,
                    last_error=error[:500],
                    next_attempt_at=utcnow() + wait,
                )
            )
        return status

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(D).order_by(D.c.id.desc()).limit(limit)
        if status:
            query = query.where(D.c.status == status)
        with self.db.read() as conn:
            return [_delivery_dict(r) for r in conn.execute(query)]

    def resend(self, delivery_id: int) -> dict[str, Any]:
        """Queue a delivery (typically a dead letter) again, with a fresh attempt count."""
        with self.db.begin() as conn:
            row = conn.execute(select(D).where(D.c.id == delivery_id)).first()
            if row is None:
                raise WebhookNotFoundError(f"no webhook delivery {delivery_id}")
            conn.execute(
                update(D)
                .where(D.c.id == delivery_id)
                .values(status="pending", attempts=0, next_attempt_at=utcnow())
            )
            return _delivery_dict(conn.execute(select(D).where(D.c.id == delivery_id)).one())

    def resend_dead(self) -> int:
        with self.db.begin() as conn:
            return int(
                conn.execute(
                    update(D)
                    .where(or_(D.c.status == "dead"))
                    .values(status="pending", attempts=0, next_attempt_at=utcnow())
                ).rowcount
                or 0
            )

    def pending_since(self, cutoff: datetime) -> int:
        with self.db.read() as conn:
            return len(
                conn.execute(
                    select(D.c.id).where(and_(D.c.status == "pending", D.c.created_at < cutoff))
                ).all()
            )
