"""Tables of query-only sharing: the log of every query a peer key makes, and probing flags.

A query row holds who asked (the key), when, how many signals of which types, how many
matches and in which lists — never a hash value, neither the peer's nor the list's. A flag
row holds why a peer key was flagged (counts only) and when and by whom it was cleared; an
open flag (``cleared_at`` NULL) cuts the key's rate until an admin clears it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import Base, BigId, table_of, utcnow

__all__ = ["KEY_FLAGS", "PEER_QUERIES", "KeyFlagRow", "PeerQueryRow"]


class PeerQueryRow(Base):
    """One match request of a peer key, as the publisher keeps it."""

    __tablename__ = "peer_queries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    media: Mapped[bool] = mapped_column(Boolean, nullable=False)  # an upload, or signals
    signals: Mapped[int] = mapped_column(Integer, nullable=False)
    signal_types: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)  # type -> count
    matches: Mapped[int] = mapped_column(Integer, nullable=False)
    lists: Mapped[list[str]] = mapped_column(JSON, nullable=False)  # lists that matched
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # answered, refused
    __table_args__ = (Index("ix_peer_queries_key_at", "key_id", "at"),)


class KeyFlagRow(Base):
    """A key flagged for probing; open until an admin clears it."""

    __tablename__ = "key_flags"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32), nullable=False)  # scan, sweep
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)  # counts only
    flagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_by: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (Index("ix_key_flags_key", "key_id", "cleared_at"),)


PEER_QUERIES = table_of(PeerQueryRow)
KEY_FLAGS = table_of(KeyFlagRow)
