"""published feeds (append-only Merkle log, signed checkpoints) and peer key grants

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

def upgrade() -> None:
    # Filled in by the change that introduces these tables (chain reserved in advance).
    pass


def downgrade() -> None:
    pass
