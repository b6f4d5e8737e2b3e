"""query-only grants: per-peer query log and probing flags

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

def upgrade() -> None:
    # Filled in by the change that introduces these tables (chain reserved in advance).
    pass


def downgrade() -> None:
    pass
