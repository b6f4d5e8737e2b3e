"""subscriptions to peers' feeds, sync state, quarantine

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "peers",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("token", sa.Text(), nullable=True),  # secret: never printed or logged
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("trust", sa.String(length=16), nullable=False),
        sa.Column("category_map", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("sync_owner", sa.String(length=80), nullable=True),
        sa.Column("sync_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "peer_subscriptions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("peer_id", ID, nullable=False),
        sa.Column("remote_list", sa.String(length=200), nullable=False),
        sa.Column("local_list", sa.String(length=200), nullable=False),
        sa.Column("origin", sa.String(length=400), nullable=True),
        sa.Column("checkpoint", sa.JSON(), nullable=True),
        sa.Column("pages", sa.BigInteger(), nullable=False),
        sa.Column("upserts", sa.BigInteger(), nullable=False),
        sa.Column("revocations", sa.BigInteger(), nullable=False),
        sa.Column("quarantined", sa.BigInteger(), nullable=False),
        sa.Column("last_sync_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["peer_id"], ["peers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("peer_id", "remote_list", name="uq_peer_subscriptions_remote"),
    )
    op.create_table(
        "peer_quarantine",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("subscription_id", ID, nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["peer_subscriptions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "key", name="uq_peer_quarantine_key"),
    )
    op.create_index("ix_peer_quarantine_subscription", "peer_quarantine", ["subscription_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_peer_quarantine_subscription", table_name="peer_quarantine")
    op.drop_table("peer_quarantine")
    op.drop_table("peer_subscriptions")
    op.drop_table("peers")
