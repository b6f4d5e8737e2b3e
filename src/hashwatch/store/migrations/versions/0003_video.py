"""video entries: frame facts on entry hashes, per-list video thresholds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entry_hashes") as batch:
        batch.add_column(sa.Column("frame", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("frame_time", sa.Float(), nullable=True))
        batch.add_column(sa.Column("quality", sa.Integer(), nullable=True))
    with op.batch_alter_table("hash_lists") as batch:
        batch.add_column(
            sa.Column("video_min_compared_pct", sa.Float(), nullable=False, server_default="80")
        )
        batch.add_column(
            sa.Column("video_min_query_pct", sa.Float(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("hash_lists") as batch:
        batch.drop_column("video_min_query_pct")
        batch.drop_column("video_min_compared_pct")
    with op.batch_alter_table("entry_hashes") as batch:
        batch.drop_column("quality")
        batch.drop_column("frame_time")
        batch.drop_column("frame")
