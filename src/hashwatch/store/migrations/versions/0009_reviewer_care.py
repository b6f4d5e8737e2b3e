"""reviewer care: per-reviewer viewing settings and every media view (exposure)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reviewer_settings",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("blur", sa.Boolean(), nullable=False),
        sa.Column("blur_strength", sa.Integer(), nullable=False),  # thousandths of the side
        sa.Column("greyscale", sa.Boolean(), nullable=False),
        sa.Column("view_seconds", sa.Integer(), nullable=False),
        sa.Column("reveals_per_session", sa.Integer(), nullable=True),  # NULL: no limit
        sa.Column("reveals_per_day", sa.Integer(), nullable=True),
        sa.Column("minutes_per_day", sa.Integer(), nullable=True),
        sa.Column("break_after_minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "media_views",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("session", sa.String(length=80), nullable=False),  # session id or key:<id>
        sa.Column("case_id", ID, nullable=False),
        sa.Column("item_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),  # thumbnail, media
        sa.Column("revealed", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["case_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_media_views_user_at", "media_views", ["user_id", "at"])
    op.create_index("ix_media_views_case_at", "media_views", ["case_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_media_views_case_at", table_name="media_views")
    op.drop_index("ix_media_views_user_at", table_name="media_views")
    op.drop_table("media_views")
    op.drop_table("reviewer_settings")
