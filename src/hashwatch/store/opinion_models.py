"""Opinions of peers on the entries of published lists (the publisher's side of feedback).

Kept apart from :mod:`hashwatch.store.models` so that the exchange adds them without touching
the list tables. One row is one opinion a peer sent on one entry: confirmed, false positive,
disputed or seen (:class:`hashwatch.exchange.base.Opinion`), with its reason. A peer's newer
opinion on the same entry replaces its current one; the older row is kept and points at it
(``superseded_by``), so the history of what each peer said stays readable. ``entry_key`` is the
entry's key as the feed shares it (a hash value: never logged or audited).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import Base, BigId, table_of

__all__ = ["OPINIONS", "EntryOpinionRow"]


class EntryOpinionRow(Base):
    """One peer's opinion of one entry; current while ``superseded_by`` is NULL."""

    __tablename__ = "entry_opinions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"))
    entry_key: Mapped[str] = mapped_column(String(160), nullable=False)
    # The peer organisation: the name of the API key it sent the opinion with.
    peer: Mapped[str] = mapped_column(String(200), nullable=False)
    opinion: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    superseded_by: Mapped[int | None] = mapped_column(BigId)
    __table_args__ = (
        Index("ix_entry_opinions_entry", "entry_id", "peer"),
        Index("ix_entry_opinions_list_peer", "list_id", "peer"),
    )


OPINIONS = table_of(EntryOpinionRow)
