"""votes and decisions of case review; per-case scheme and agency lists; split items

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Per-case settings: the category scheme votes use, and the agency lists that settled
    # decisions go to (a known list for categorised media, an ignorable one for the rest).
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("scheme", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("known_list", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("ignorable_list", sa.String(length=200), nullable=True))
    # An item split off its cluster is reviewed on its own (the scan's cluster number stays).
    with op.batch_alter_table("case_items") as batch:
        batch.add_column(
            sa.Column("split_off", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "case_votes",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        # The target: a cluster (by its number) or one item (by its id); exactly one is set.
        sa.Column("cluster_number", sa.Integer(), nullable=True),
        sa.Column("item_id", ID, sa.ForeignKey("case_items.id", ondelete="CASCADE"), nullable=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("not_relevant", sa.Boolean(), nullable=False),
        sa.Column("series", sa.Text(), nullable=True),
        sa.Column("victim_identified", sa.Boolean(), nullable=False),
        sa.Column("offender_identified", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        # A changed vote is kept: the old version points at the one that replaced it.
        sa.Column("superseded_by", ID, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_votes_case", "case_votes", ["case_id", "cluster_number", "item_id"])
    op.create_table(
        "case_decisions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("cluster_number", sa.Integer(), nullable=True),
        sa.Column("item_id", ID, sa.ForeignKey("case_items.id", ondelete="CASCADE"), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("not_relevant", sa.Boolean(), nullable=False),
        sa.Column("series", sa.Text(), nullable=True),
        sa.Column("victim_identified", sa.Boolean(), nullable=False),
        sa.Column("offender_identified", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("how", sa.String(length=16), nullable=False),  # consensus, lead
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        # The ids of the votes it was made on, and the list entries it created.
        sa.Column("votes", sa.JSON(), nullable=False),
        sa.Column("list_name", sa.String(length=200), nullable=True),
        sa.Column("entry_ids", sa.JSON(), nullable=False),
        sa.Column("list_error", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_case_decisions_case", "case_decisions", ["case_id", "cluster_number", "item_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_case_decisions_case", table_name="case_decisions")
    op.drop_table("case_decisions")
    op.drop_index("ix_case_votes_case", table_name="case_votes")
    op.drop_table("case_votes")
    with op.batch_alter_table("case_items") as batch:
        batch.drop_column("split_off")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("ignorable_list")
        batch.drop_column("known_list")
        batch.drop_column("scheme")
