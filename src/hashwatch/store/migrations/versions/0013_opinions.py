"""feedback from peers on published entries (opinions)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "entry_opinions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("list_id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("entry_key", sa.String(length=160), nullable=False),
        sa.Column("peer", sa.String(length=200), nullable=False),  # the peer key's name
        # confirmed, false_positive, disputed, seen
        sa.Column("opinion", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by", ID, nullable=True),  # NULL: the peer's current opinion
        sa.ForeignKeyConstraint(["list_id"], ["hash_lists.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_entry_opinions_entry", "entry_opinions", ["entry_id", "peer"])
    op.create_index("ix_entry_opinions_list_peer", "entry_opinions", ["list_id", "peer"])


def downgrade() -> None:
    op.drop_index("ix_entry_opinions_list_peer", table_name="entry_opinions")
    op.drop_index("ix_entry_opinions_entry", table_name="entry_opinions")
    op.drop_table("entry_opinions")
