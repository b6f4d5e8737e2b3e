"""case review: "needs a second look" marks on targets

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_second_looks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("cluster_number", sa.Integer(), nullable=True),  # a cluster target, or
        sa.Column("item_id", ID, nullable=True),  # an item target
        sa.Column("user_id", ID, nullable=False),
        sa.Column("marked_by", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["case_items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_case_second_looks_case",
        "case_second_looks",
        ["case_id", "cleared_at", "cluster_number", "item_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_case_second_looks_case", table_name="case_second_looks")
    op.drop_table("case_second_looks")
