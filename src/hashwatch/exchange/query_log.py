"""The publisher's log of what query-only peers asked: one row per match request of a peer key.

A row holds the key, the time, how many signals of which types (never their values), how many
matches and in which lists, and whether the request was answered or refused (a flagged peer
over its cut rate, or the request that got it flagged). ``GET /v1/admin/peer-queries`` and the
audit of a peer read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, select

from hashwatch.store.database import Database
from hashwatch.store.models import utcnow
from hashwatch.store.query_models import PEER_QUERIES
from hashwatch.store.service import KEYS

__all__ = ["PeerQueryLog"]

Q = PEER_QUERIES
K = KEYS


class PeerQueryLog:
    """Peer queries of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        key_id: int,
        *,
        media: bool,
        signal_types: Mapping[str, int],
        matches: int,
        lists: Sequence[str],
        outcome: str = "answered",
    ) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(Q).values(
                    key_id=key_id,
                    at=utcnow(),
                    media=media,
                    signals=sum(signal_types.values()),
                    signal_types=dict(signal_types),
                    matches=matches,
                    lists=sorted(set(lists)),
                    outcome=outcome,
                )
            )

    def recent(self, key: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest queries, of one key or of all, newest first."""
        query = select(Q, K.c.name).join(K, K.c.id == Q.c.key_id)
        if key is not None:
            query = query.where(K.c.name == key)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(Q.c.id.desc()).limit(limit)).all()
        return [
            {
                "key": r.name,
                "at": r.at.isoformat(),
                "media": bool(r.media),
                "signals": int(r.signals),
                "signal_types": dict(r.signal_types),
                "matches": int(r.matches),
                "lists": list(r.lists),
                "outcome": r.outcome,
            }
            for r in rows
        ]

    def count(self, key: str | None = None) -> int:
        query = select(func.count()).select_from(Q.join(K, K.c.id == Q.c.key_id))
        if key is not None:
            query = query.where(K.c.name == key)
        with self.db.read() as conn:
            return int(conn.execute(query).scalar_one())
