"""What a key's matches reveal, its signal budget, content ids on match records, and leases
of webhook deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        # NULL: the server's default (ServeSettings.default_disclosure / signals_per_window).
        batch.add_column(sa.Column("disclosure", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("signals_per_window", sa.Integer(), nullable=True))
    with op.batch_alter_table("match_records") as batch:
        batch.add_column(sa.Column("content_id", sa.String(length=200), nullable=True))
    with op.batch_alter_table("webhook_deliveries") as batch:
        # Who holds the delivery's lease now (renewed while it is being sent).
        batch.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("lease_token")
    with op.batch_alter_table("match_records") as batch:
        batch.drop_column("content_id")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("signals_per_window")
        batch.drop_column("disclosure")
