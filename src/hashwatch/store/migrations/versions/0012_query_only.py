"""query-only grants: per-peer query log and probing flags

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "peer_queries",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("key_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("media", sa.Boolean(), nullable=False),
        sa.Column("signals", sa.Integer(), nullable=False),
        sa.Column("signal_types", sa.JSON(), nullable=False),  # type -> count, no values
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.Column("lists", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_peer_queries_key_at", "peer_queries", ["key_id", "at"])
    op.create_table(
        "key_flags",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("key_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_key_flags_key", "key_flags", ["key_id", "cleared_at"])


def downgrade() -> None:
    op.drop_index("ix_key_flags_key", table_name="key_flags")
    op.drop_table("key_flags")
    op.drop_index("ix_peer_queries_key_at", table_name="peer_queries")
    op.drop_table("peer_queries")
