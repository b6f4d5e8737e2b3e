"""The database's own audit trail: every write to lists, keys and webhooks, in the writer's
transaction.

A change and its audit record commit together or not at all, so no write can escape the
audit (a record that cannot be written rolls the change back), and the CLI, the library and
the HTTP API audit alike because they all write through the store. Details are bounded
(long strings cut, long lists shortened) so an oversized detail can never fail a change
after the fact. Details never carry hash values: callers pass counts, names and reasons.

Audit rows are never deleted with what they describe: deleting a list keeps its history.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from hashwatch.store.database import Database
from hashwatch.store.models import AUDIT, utcnow

__all__ = ["AuditEvent", "AuditTrail", "actor_or_user", "record_audit"]

MAX_TEXT = 500  # characters kept of one string in a detail
MAX_ITEMS = 50  # items kept of one list or mapping in a detail
MAX_DEPTH = 4


def actor_or_user(actor: str | None) -> str:
    """The actor as given (an API key's name, a reviewer), else the operating-system user."""
    if actor:
        return actor[:200]
    try:
        return getpass.getuser()[:200]
    except Exception:
        return "unknown"


def _bounded(value: Any, depth: int = 0) -> Any:
    """``value`` made JSON-safe and small: strings cut, lists and mappings shortened."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + f"… ({len(value)} chars)"
    if depth >= MAX_DEPTH:
        return f"<{type(value).__name__}>"
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k)[:100]: _bounded(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["…"] = f"{len(items) - MAX_ITEMS} more"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        kept = [_bounded(v, depth + 1) for v in seq[:MAX_ITEMS]]
        if len(seq) > MAX_ITEMS:
            kept.append(f"… {len(seq) - MAX_ITEMS} more")
        return kept
    return _bounded(str(value), depth)


def record_audit(
    conn: Connection,
    *,
    actor: str | None,
    action: str,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Write one audit record inside ``conn``'s transaction (the change's own)."""
    conn.execute(
        insert(AUDIT).values(
            at=utcnow(),
            actor=actor_or_user(actor),
            action=action[:64],
            target=None if target is None else target[:200],
            details=_bounded(dict(details or {})),
        )
    )


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
        }


class AuditTrail:
    """Reading the audit records of one database, newest first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def events(
        self,
        *,
        action_prefix: str | None = None,
        target: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
        if action_prefix:
            query = query.where(AUDIT.c.action.startswith(action_prefix, autoescape=True))
        if target is not None:
            query = query.where(AUDIT.c.target == target)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [
            AuditEvent(r.id, r.at, r.actor, r.action, r.target, dict(r.details or {})) for r in rows
        ]
