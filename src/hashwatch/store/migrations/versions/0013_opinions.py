"""feedback from peers on published entries (opinions)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

def upgrade() -> None:
    # Filled in by the change that introduces these tables (chain reserved in advance).
    pass


def downgrade() -> None:
    pass
