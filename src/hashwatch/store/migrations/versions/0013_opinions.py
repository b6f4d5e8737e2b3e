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
    # Filled in by the change that introduces these tables (chain reserved in advance).
    del sa, op


def downgrade() -> None:
    pass
