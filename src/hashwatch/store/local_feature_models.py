"""Local feature sets of list entries (ORB keypoints and descriptors of the curator's media).

Kept apart from :mod:`hashwatch.store.models`: a feature set is closer to the picture than a
hash is, so it lives in its own table that no export or exchange feed reads. One set per
entry, replaced when the entry's media is added again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import Base, BigId, table_of, utcnow

__all__ = ["ENTRY_FEATURES", "EntryFeatureRow"]


class EntryFeatureRow(Base):
    """The local features of one entry's media: ``data`` is
    :meth:`hashwatch.signals.local_features.FeatureSet.to_bytes` (versioned header)."""

    __tablename__ = "entry_features"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    keypoints: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, default=utcnow
    )
    __table_args__ = (
        UniqueConstraint("entry_id", name="uq_entry_features_entry"),
        Index("ix_entry_features_list", "list_id"),
    )


ENTRY_FEATURES = table_of(EntryFeatureRow)
