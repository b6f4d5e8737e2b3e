"""local features of list entries, and the per-list setting that stores and matches them

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("hash_lists") as batch:
        batch.add_column(
            sa.Column("local_features", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "entry_features",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("list_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("keypoints", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["list_id"], ["hash_lists.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_id", name="uq_entry_features_entry"),
    )
    op.create_index("ix_entry_features_list", "entry_features", ["list_id"])


def downgrade() -> None:
    op.drop_index("ix_entry_features_list", table_name="entry_features")
    op.drop_table("entry_features")
    with op.batch_alter_table("hash_lists") as batch:
        batch.drop_column("local_features")
