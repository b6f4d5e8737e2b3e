"""Tables of people: user accounts and their server-side sign-in sessions.

Kept apart from :mod:`hashwatch.store.models` so that :mod:`hashwatch.store.service` (API keys,
which may belong to a user) and :mod:`hashwatch.store.users` (the accounts' store) can both
import them without importing each other.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hashwatch.store.models import Base, BigId, table_of, utcnow

__all__ = ["SESSIONS", "USERS", "SessionRow", "UserRole", "UserRow"]


class UserRole(StrEnum):
    """What a person may do in the review workspace. Each role includes the ones before it:
    a lead reviews and settles disagreements, an admin also manages accounts."""

    REVIEWER = "reviewer"
    LEAD = "lead"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(UserRole).index(self)

    def allows(self, needed: UserRole) -> bool:
        return self.rank >= needed.rank


class UserRow(Base):
    """A person's account. Only the argon2id hash of the password is stored (its parameters
    are written in the hash itself, so they can be raised later without a migration)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Nullable in the schema since migration 0007; every writer sets both.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, nullable=True
    )


class SessionRow(Base):
    """A signed-in browser. ``id`` is the SHA-256 of the cookie's token and ``csrf_sha256``
    that of the session's CSRF token: neither token is stored."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    __table_args__ = (Index("ix_sessions_user_id", "user_id"),)


USERS = table_of(UserRow)
SESSIONS = table_of(SessionRow)
