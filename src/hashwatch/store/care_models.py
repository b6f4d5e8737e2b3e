"""Tables of reviewer care: each reviewer's viewing settings and every media view they made.

Kept apart from :mod:`hashwatch.store.models` (cases) and :mod:`hashwatch.store.user_models`
(accounts) so that the review service reads and writes them without touching either. A view
row holds who saw which item when, how (thumbnail or full size) and whether it was revealed
(shown unblurred): what exposure is measured from. It never holds the picture or a hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import Base, BigId, table_of, utcnow

__all__ = ["MEDIA_VIEWS", "REVIEWER_SETTINGS", "MediaViewRow", "ReviewerSettingsRow"]


class ReviewerSettingsRow(Base):
    """One reviewer's viewing aids and exposure limits; a reviewer without a row has the
    defaults (:class:`hashwatch.review.exposure.CareSettings`). NULL limits are off."""

    __tablename__ = "reviewer_settings"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    blur: Mapped[bool] = mapped_column(Boolean, nullable=False)
    blur_strength: Mapped[int] = mapped_column(Integer, nullable=False)
    greyscale: Mapped[bool] = mapped_column(Boolean, nullable=False)
    view_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    reveals_per_session: Mapped[int | None] = mapped_column(Integer)
    reveals_per_day: Mapped[int | None] = mapped_column(Integer)
    minutes_per_day: Mapped[int | None] = mapped_column(Integer)
    break_after_minutes: Mapped[int | None] = mapped_column(Integer)
    # Nullable in the schema (migration 0009); every writer sets it.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=True
    )


class MediaViewRow(Base):
    """One media view: a thumbnail or full-size picture served to a reviewer."""

    __tablename__ = "media_views"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # the sign-in session's stored id, or "key:<id>" for a reviewer's API key
    session: Mapped[str] = mapped_column(String(80), nullable=False)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # thumbnail, media
    revealed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    __table_args__ = (
        Index("ix_media_views_user_at", "user_id", "at"),
        Index("ix_media_views_case_at", "case_id", "at"),
    )


REVIEWER_SETTINGS = table_of(ReviewerSettingsRow)
MEDIA_VIEWS = table_of(MediaViewRow)
