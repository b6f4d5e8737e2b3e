"""Database tables (SQLAlchemy 2 declarative). The schema changes only through Alembic.

Every fact keeps its provenance: entries point at the import (file, line or record) that
brought them, every status change is an :class:`EntryEvent` with who, when and why, and every
import is a :class:`ListImport` row with the file's SHA-256 and the resulting list version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AUDIT",
    "CASES",
    "CASE_CLUSTERS",
    "CASE_DECISIONS",
    "CASE_ITEMS",
    "CASE_THUMBNAILS",
    "CASE_VOTES",
    "ENTRIES",
    "EVENTS",
    "HASHES",
    "IMPORTS",
    "LISTS",
    "AuditRecord",
    "Base",
    "CaseClusterRow",
    "CaseDecisionRow",
    "CaseItemRow",
    "CaseRow",
    "CaseThumbnail",
    "CaseVoteRow",
    "Entry",
    "EntryEvent",
    "EntryHash",
    "HashListRow",
    "ListImport",
    "Meta",
    "table_of",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Small key/value facts about the database, e.g. the change sequence the index follows."""

    __tablename__ = "hw_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class HashListRow(Base):
    __tablename__ = "hash_lists"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    source_org: Mapped[str | None] = mapped_column(String(200))
    scheme: Mapped[str] = mapped_column(String(16), nullable=False, default="NONE")
    category_map: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    pdq_threshold: Mapped[int] = mapped_column(Integer, nullable=False, default=31)
    # A video matches an entry of this list as known when at least this share of the entry's
    # frames is found (compared %) and this share of the query's frames matched (query %).
    video_min_compared_pct: Mapped[float] = mapped_column(
        Float, nullable=False, default=80.0, server_default="80"
    )
    video_min_query_pct: Mapped[float] = mapped_column(
        Float, nullable=False, default=0.0, server_default="0"
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Local features (ORB keypoints) of media added to this list are stored and matched
    # (store/local_feature_models.py): finds cropped and turned copies PDQ misses.
    local_features: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )


class ListImport(Base):
    """One import of a file into a list: what came in, from where, and what it changed."""

    __tablename__ = "list_imports"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    file_name: Mapped[str] = mapped_column(Text, nullable=False)
    file_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    format: Mapped[str] = mapped_column(String(16), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    imported_by: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    records: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    header: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class Entry(Base):
    """One piece of media described by a list: one or more hashes plus the curator's facts."""

    __tablename__ = "entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(
        String(160), nullable=False
    )  # "<type>:<value>" of the key hash
    category: Mapped[str | None] = mapped_column(String(64))
    series: Mapped[str | None] = mapped_column(Text)
    victim_identified: Mapped[bool | None] = mapped_column(Boolean)
    tags: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    comment: Mapped[str | None] = mapped_column(Text)
    date: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("list_imports.id"))
    source: Mapped[str | None] = mapped_column(String(64))  # "line 12", "record 5"
    added_version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_version: Mapped[int] = mapped_column(Integer, nullable=False)
    seen_version: Mapped[int] = mapped_column(Integer, nullable=False)
    change_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    __table_args__ = (
        UniqueConstraint("list_id", "key", name="uq_entries_list_key"),
        Index("ix_entries_change_seq", "change_seq"),
    )


class EntryHash(Base):
    """A hash of an entry. PDQ rows are mirrored into the persisted index under their id."""

    __tablename__ = "entry_hashes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id", ondelete="CASCADE"))
    hash_type: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[str] = mapped_column(String(128), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # A hash replaced by a later import is kept inactive (never deleted), so the index can
    # learn about the removal from the change sequence alone.
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    change_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # A frame of a known video (PDQ rows only): its number, time in seconds, and quality.
    # Frames share the PDQ index with images; NULL for hashes of whole files and images.
    frame: Mapped[int | None] = mapped_column(Integer)
    frame_time: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[int | None] = mapped_column(Integer)
    __table_args__ = (
        Index("ix_entry_hashes_lookup", "hash_type", "value"),
        Index("ix_entry_hashes_entry", "entry_id"),
        Index("ix_entry_hashes_change_seq", "change_seq"),
    )


class EntryEvent(Base):
    """A status change of an entry: revoked, disputed, reinstated, withdrawn by an import."""

    __tablename__ = "entry_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    old_status: Mapped[str] = mapped_column(String(16), nullable=False)
    new_status: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class AuditRecord(Base):
    """One write to the database (list, entry, key, webhook): who, what, on which target.

    Written in the same transaction as the change (:mod:`hashwatch.store.audit`); never
    deleted with its target. ``details`` holds counts, names and reasons, never hash values.
    """

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    __table_args__ = (Index("ix_audit_events_target", "target"),)


class CaseRow(Base):
    """A scan's output directory recorded for review, keyed by the scan's own case id."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_uid: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    case_number: Mapped[str | None] = mapped_column(String(200))
    agency: Mapped[str | None] = mapped_column(String(200))
    examiner: Mapped[str | None] = mapped_column(String(200))
    case_dir: Mapped[str] = mapped_column(Text, nullable=False)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    scan: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    # Reviewers who must agree before a category is settled.
    consensus_k: Mapped[int] = mapped_column(Integer, nullable=False, default=3, server_default="3")
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(200), nullable=False)
    # The category scheme votes use (None: the known list's), and the agency lists that
    # settled decisions go to.
    scheme: Mapped[str | None] = mapped_column(String(16))
    known_list: Mapped[str | None] = mapped_column(String(200))
    ignorable_list: Mapped[str | None] = mapped_column(String(200))


class CaseClusterRow(Base):
    """A cluster of near-duplicate new media of a case: reviewed once for all its members."""

    __tablename__ = "case_clusters"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    priority: Mapped[float] = mapped_column(Float, nullable=False)
    reasons: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    representative: Mapped[str] = mapped_column(Text, nullable=False)
    members: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    nearest_known_distance: Mapped[int | None] = mapped_column(Integer)
    review_status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="pending", server_default="pending"
    )
    __table_args__ = (UniqueConstraint("case_id", "number", name="uq_case_clusters_number"),)


class CaseItemRow(Base):
    """One file (or archive member) of a case, as the scan recorded it, and its review state."""

    __tablename__ = "case_items"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    root: Mapped[str] = mapped_column(Text, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    digests: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    media_type: Mapped[str | None] = mapped_column(String(32))
    mime: Mapped[str | None] = mapped_column(String(200))
    scan_status: Mapped[str] = mapped_column(String(16), nullable=False)
    cluster_number: Mapped[int | None] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    priority: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    exif: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    matches: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    review_status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="pending", server_default="pending"
    )
    # Split off its cluster by a reviewer: reviewed on its own (cluster_number stays).
    split_off: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    __table_args__ = (
        UniqueConstraint("case_id", "root", "path", name="uq_case_items_path"),
        Index("ix_case_items_rank", "case_id", "rank"),
        Index("ix_case_items_cluster", "case_id", "cluster_number"),
        # Case status counts items by both states from this index alone.
        Index("ix_case_items_status", "case_id", "review_status", "scan_status"),
    )


class CaseThumbnail(Base):
    """An item's small JPEG (a video's contact sheet); full-size media stays in the evidence."""

    __tablename__ = "case_thumbnails"
    item_id: Mapped[int] = mapped_column(
        ForeignKey("case_items.id", ondelete="CASCADE"), primary_key=True
    )
    jpeg: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class CaseVoteRow(Base):
    """A reviewer's vote on a cluster (``cluster_number``) or an item (``item_id``). A changed
    vote is a new row; the old one is kept and points at it (``superseded_by``)."""

    __tablename__ = "case_votes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    cluster_number: Mapped[int | None] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    user_name: Mapped[str] = mapped_column(String(200), nullable=False)
    category: Mapped[str | None] = mapped_column(String(64))
    not_relevant: Mapped[bool] = mapped_column(Boolean, nullable=False)
    series: Mapped[str | None] = mapped_column(Text)
    victim_identified: Mapped[bool] = mapped_column(Boolean, nullable=False)
    offender_identified: Mapped[bool] = mapped_column(Boolean, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    superseded_by: Mapped[int | None] = mapped_column(BigId)
    __table_args__ = (Index("ix_case_votes_case", "case_id", "cluster_number", "item_id"),)


class CaseDecisionRow(Base):
    """A settled target: by consensus or by a lead, with the votes it was made on and the
    list entries it created; revoking it keeps the row (``revoked_*``)."""

    __tablename__ = "case_decisions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    cluster_number: Mapped[int | None] = mapped_column(Integer)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("case_items.id", ondelete="CASCADE"))
    category: Mapped[str | None] = mapped_column(String(64))
    not_relevant: Mapped[bool] = mapped_column(Boolean, nullable=False)
    series: Mapped[str | None] = mapped_column(Text)
    victim_identified: Mapped[bool] = mapped_column(Boolean, nullable=False)
    offender_identified: Mapped[bool] = mapped_column(Boolean, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    how: Mapped[str] = mapped_column(String(16), nullable=False)
    decided_by: Mapped[str] = mapped_column(String(200), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    votes: Mapped[list[int]] = mapped_column(JSON, nullable=False, default=list)
    list_name: Mapped[str | None] = mapped_column(String(200))
    entry_ids: Mapped[list[int]] = mapped_column(JSON, nullable=False, default=list)
    list_error: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_case_decisions_case", "case_id", "cluster_number", "item_id"),)


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed as such (for bulk Core statements)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


# Core handles for bulk statements (imports move hundreds of thousands of rows).
LISTS = table_of(HashListRow)
IMPORTS = table_of(ListImport)
ENTRIES = table_of(Entry)
HASHES = table_of(EntryHash)
EVENTS = table_of(EntryEvent)
AUDIT = table_of(AuditRecord)
CASES = table_of(CaseRow)
CASE_CLUSTERS = table_of(CaseClusterRow)
CASE_ITEMS = table_of(CaseItemRow)
CASE_THUMBNAILS = table_of(CaseThumbnail)
CASE_VOTES = table_of(CaseVoteRow)
CASE_DECISIONS = table_of(CaseDecisionRow)
