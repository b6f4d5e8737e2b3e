"""Tables of subscriptions: the peers we read, what we read from each, and what waits for review.

Kept apart from :mod:`hashwatch.store.models` (lists) so that :mod:`hashwatch.exchange.peers`
and :mod:`hashwatch.exchange.sync` read and write them without touching the list tables'
module. A peer's token is stored because a sync needs it; it is never printed, logged or
audited. A subscription holds the exchange's checkpoint (JSON), saved in the same
transaction as the page it follows, so a sync resumes from the last applied page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import Base, BigId, table_of, utcnow

__all__ = [
    "PEERS",
    "PEER_QUARANTINE",
    "PEER_SUBSCRIPTIONS",
    "PeerQuarantineRow",
    "PeerRow",
    "PeerSubscriptionRow",
]


class PeerRow(Base):
    """An organisation we subscribe to: where, how (exchange kind), with which key and trust."""

    __tablename__ = "peers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    token: Mapped[str | None] = mapped_column(Text)  # secret: never printed or logged
    key: Mapped[str | None] = mapped_column(Text)  # the publisher's verifier key (text form)
    trust: Mapped[str] = mapped_column(String(16), nullable=False)  # auto | review
    # The peer's category codes -> ours; codes not in it are kept raw and flagged.
    category_map: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), nullable=False)
    # A lease on syncing this peer: one replica at a time (renewed with every page).
    sync_owner: Mapped[str | None] = mapped_column(String(80))
    sync_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PeerSubscriptionRow(Base):
    """One of the peer's lists read into one of ours, and where the reading stands."""

    __tablename__ = "peer_subscriptions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    peer_id: Mapped[int] = mapped_column(ForeignKey("peers.id", ondelete="CASCADE"))
    remote_list: Mapped[str] = mapped_column(String(200), nullable=False)
    local_list: Mapped[str] = mapped_column(String(200), nullable=False)
    origin: Mapped[str | None] = mapped_column(String(400))  # pinned feed origin, if any
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pages: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    upserts: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    revocations: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    quarantined: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("peer_id", "remote_list", name="uq_peer_subscriptions_remote"),
    )


class PeerQuarantineRow(Base):
    """An incoming entry of a ``review`` subscription, not matchable until accepted: the
    peer's latest state of the entry (the feed's entry object), keyed by its entry key."""

    __tablename__ = "peer_quarantine"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("peer_subscriptions.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(160), nullable=False)
    entry: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    seq: Mapped[int | None] = mapped_column(BigInteger)  # the peer's record number
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        UniqueConstraint("subscription_id", "key", name="uq_peer_quarantine_key"),
        Index("ix_peer_quarantine_subscription", "subscription_id", "id"),
    )


PEERS = table_of(PeerRow)
PEER_SUBSCRIPTIONS = table_of(PeerSubscriptionRow)
PEER_QUARANTINE = table_of(PeerQuarantineRow)
