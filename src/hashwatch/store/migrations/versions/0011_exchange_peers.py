"""subscriptions to peers' feeds, sync state, quarantine

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

def upgrade() -> None:
    # Filled in by the change that introduces these tables (chain reserved in advance).
    pass


def downgrade() -> None:
    pass
