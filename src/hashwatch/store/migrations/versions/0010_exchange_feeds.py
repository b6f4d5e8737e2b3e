"""published feeds (append-only Merkle log, signed checkpoints) and peer key grants

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_key_grants",
        sa.Column("key_id", ID, nullable=False),
        sa.Column("list_id", ID, nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),  # feed | query
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["list_id"], ["hash_lists.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_id", "list_id"),
    )
    op.create_table(
        "feeds",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("list_id", ID, nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("org", sa.String(length=200), nullable=False),
        sa.Column("hash_types", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("last_change_seq", sa.BigInteger(), nullable=False),
        sa.Column("scheme", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["hash_lists.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id"),
        sa.UniqueConstraint("origin"),
    )
    op.create_table(
        "feed_records",
        sa.Column("feed_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),  # 1-based
        sa.Column("record", sa.Text(), nullable=False),  # canonical JSON, as hashed
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feed_id", "seq"),
    )
    op.create_table(
        "feed_nodes",
        sa.Column("feed_id", ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),  # >= 1: leaves are their records
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feed_id", "level", "idx"),
        sqlite_with_rowid=False,  # small rows found by their key: one B-tree, not two
    )
    op.create_table(
        "feed_checkpoints",
        sa.Column("feed_id", ID, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),  # the signed note
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feed_id", "size"),
    )
    op.create_table(
        "feed_state",
        sa.Column("feed_id", ID, nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("disputed", sa.Boolean(), nullable=False),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("feed_id", "key"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_entries_list_change_seq", "entries", ["list_id", "change_seq", "id"])


def downgrade() -> None:
    op.drop_index("ix_entries_list_change_seq", table_name="entries")
    for table in ("feed_state", "feed_checkpoints", "feed_nodes", "feed_records", "feeds"):
        op.drop_table(table)
    op.drop_table("api_key_grants")
