"""cases: a scan's output recorded for review (items, clusters, thumbnails, review states)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        # The scan's own case id (manifest ``case.case_id``): a case is imported once.
        sa.Column("case_uid", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=200), nullable=True),
        sa.Column("agency", sa.String(length=200), nullable=True),
        sa.Column("examiner", sa.String(length=200), nullable=True),
        sa.Column("case_dir", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        # Operator, host, hashwatch version, started/finished, lists and settings of the scan.
        sa.Column("scan", sa.JSON(), nullable=False),
        sa.Column("consensus_k", sa.Integer(), nullable=False, server_default="3"),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_uid", name="uq_cases_case_uid"),
    )
    op.create_table(
        "case_clusters",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("representative", sa.Text(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("nearest_known_distance", sa.Integer(), nullable=True),
        sa.Column("review_status", sa.String(length=16), nullable=False, server_default="pending"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "number", name="uq_case_clusters_number"),
    )
    op.create_table(
        "case_items",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        # Every digest and signal of the file (md5, sha1, ed2k, pdq, video frames, ...).
        sa.Column("digests", sa.JSON(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=True),
        sa.Column("mime", sa.String(length=200), nullable=True),
        sa.Column("scan_status", sa.String(length=16), nullable=False),
        sa.Column("cluster_number", sa.Integer(), nullable=True),
        # Position in the scan's priority order (1 = reviewed first) and why, in words.
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("exif", sa.JSON(), nullable=True),
        sa.Column("matches", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("review_status", sa.String(length=16), nullable=False, server_default="pending"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "root", "path", name="uq_case_items_path"),
    )
    op.create_index("ix_case_items_rank", "case_items", ["case_id", "rank"])
    op.create_index("ix_case_items_cluster", "case_items", ["case_id", "cluster_number"])
    op.create_table(
        "case_thumbnails",
        sa.Column(
            "item_id", ID, sa.ForeignKey("case_items.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("jpeg", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("item_id"),
    )


def downgrade() -> None:
    op.drop_table("case_thumbnails")
    op.drop_index("ix_case_items_cluster", table_name="case_items")
    op.drop_index("ix_case_items_rank", table_name="case_items")
    op.drop_table("case_items")
    op.drop_table("case_clusters")
    op.drop_table("cases")
