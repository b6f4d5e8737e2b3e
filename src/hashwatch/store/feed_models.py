"""Tables of publishing: peer keys' grants and the published feeds (issue 11, docs/exchange.md).

Kept apart from :mod:`hashwatch.store.models` so that the key store and the feed publisher
(:mod:`hashwatch.exchange.feed`) read and write them without touching the list tables' module.

A feed is an append-only log of records about one list. Its Merkle tree is kept as every
*perfect* subtree hash (:mod:`hashwatch.exchange.merkle`) above the leaves in ``feed_nodes``
(a leaf hash is the hash of its record in ``feed_records``, so it is not stored twice), so a
root or a proof of any size reads a few dozen rows. ``feed_nodes`` and ``feed_state`` are
``WITHOUT ROWID`` on SQLite: their rows are small and always found by their primary key, so
one B-tree each rather than a table and its key's index (a catch-up writes about two rows of
them per record). ``feed_state`` remembers, per entry key, what the feed last said of it (a
digest of the shared hashes and fields, the category, whether it was disputed, whether it is
gone), so a catch-up appends a record only when what leaves actually changed, and says which
kind of change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import ENTRIES, Base, BigId, table_of, utcnow

__all__ = [
    "FEEDS",
    "FEED_CHECKPOINTS",
    "FEED_NODES",
    "FEED_RECORDS",
    "FEED_STATE",
    "GRANTS",
    "ApiKeyGrant",
    "FeedCheckpointRow",
    "FeedNodeRow",
    "FeedRecordRow",
    "FeedRow",
    "FeedStateRow",
]


class ApiKeyGrant(Base):
    """What a peer key may do with one list: ``feed`` (read its feed) or ``query`` (match
    against it without reading it)."""

    __tablename__ = "api_key_grants"
    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("hash_lists.id", ondelete="CASCADE"), primary_key=True
    )
    access: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedRow(Base):
    """A published list: what may leave it, and where its log stands."""

    __tablename__ = "feeds"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(
        ForeignKey("hash_lists.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    origin: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    org: Mapped[str] = mapped_column(String(200), nullable=False)  # the signing key's name
    hash_types: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    fields: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    frontier: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, default=b"")
    # The highest change_seq of the list's entries the log has taken in.
    last_change_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    scheme: Mapped[str] = mapped_column(String(16), nullable=False)  # the list's, as shared
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedRecordRow(Base):
    """Record ``seq`` (1-based) of a feed: the exact canonical JSON text its leaf hashes."""

    __tablename__ = "feed_records"
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    record: Mapped[str] = mapped_column(Text, nullable=False)


class FeedNodeRow(Base):
    """A perfect subtree hash: leaves ``[index * 2**level, (index + 1) * 2**level)``,
    ``level`` >= 1."""

    __tablename__ = "feed_nodes"
    __table_args__ = ({"sqlite_with_rowid": False},)
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class FeedCheckpointRow(Base):
    """A signed checkpoint (C2SP signed note) of a feed at ``size``."""

    __tablename__ = "feed_checkpoints"
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedStateRow(Base):
    """What the feed last said of one entry key."""

    __tablename__ = "feed_state"
    __table_args__ = ({"sqlite_with_rowid": False},)
    feed_id: Mapped[int] = mapped_column(
        ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    # SHA-256 of the shared hashes, scheme and fields (not the category or dispute flag).
    digest: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    category: Mapped[str | None] = mapped_column(String(64))
    disputed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    gone: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # revoked
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)  # the record that said so


GRANTS = table_of(ApiKeyGrant)
FEEDS = table_of(FeedRow)
FEED_RECORDS = table_of(FeedRecordRow)
FEED_NODES = table_of(FeedNodeRow)
FEED_CHECKPOINTS = table_of(FeedCheckpointRow)
FEED_STATE = table_of(FeedStateRow)

# A feed catches up with ``list_id = L AND change_seq > N`` in (change_seq, id) order: one
# range of this index, however busy the other lists have been (``ix_entries_change_seq`` alone
# would scan their changes too), and a batch boundary inside one import's change is a seek.
_ENTRY_CHANGES: Any = Index(
    "ix_entries_list_change_seq", ENTRIES.c.list_id, ENTRIES.c.change_seq, ENTRIES.c.id
)
