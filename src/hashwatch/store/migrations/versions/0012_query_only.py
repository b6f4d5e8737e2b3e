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
    # Filled in by the change that introduces these tables (chain reserved in advance).
    del sa, op


def downgrade() -> None:
    pass
