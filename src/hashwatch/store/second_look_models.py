"""The "needs a second look" marks of case review: a reviewer flags a target (a cluster or an
item) for another look, with an optional note; clearing the mark keeps the row.

Kept apart from :mod:`hashwatch.store.models` so that the review service adds them without
touching the case tables. A mark never holds a picture or a hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import Base, BigId, table_of

__all__ = ["SECOND_LOOKS", "SecondLookRow"]


class SecondLookRow(Base):
    """One reviewer's mark on a target; ``cleared_*`` set once it is cleared."""

    __tablename__ = "case_second_looks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    cluster_number: Mapped[int | None] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    marked_by: Mapped[str] = mapped_column(String(200), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_by: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (
        Index("ix_case_second_looks_case", "case_id", "cleared_at", "cluster_number", "item_id"),
    )


SECOND_LOOKS = table_of(SecondLookRow)
