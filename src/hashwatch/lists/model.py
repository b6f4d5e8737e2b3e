"""What a hash list is made of, independent of file formats and of the database.

A list holds *entries*. An entry describes one piece of media by one or more hashes (a VICS
Media record carries MD5, SHA-1 and, as AlternativeHashes, SHA-256 and PDQ), plus the
curator's facts about it: raw category code, series, victim identified, tags, comment, date,
and where the record came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hashwatch.signals.types import HashType

__all__ = [
    "CategoryScheme",
    "EntryRecord",
    "EntryStatus",
    "ListHeader",
    "ListKind",
    "ParsedList",
]


class ListKind(StrEnum):
    """What a match against the list means."""

    KNOWN = "known"  # a match is an alert
    IGNORABLE = "ignorable"  # known files (e.g. NSRL): kept out of the "new" queue, never graded
    NEGATIVE = "negative"  # known false positives: suppress matches


class EntryStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"  # kept as a record, never matched
    DISPUTED = "disputed"  # still matched, flagged in every match
    WITHDRAWN = "withdrawn"  # absent from a later import of the list; kept for provenance


class CategoryScheme(StrEnum):
    US = "US"  # VICS/DHS 0..5
    UK = "UK"  # CAID A/B/C and non-indecent
    CUSTOM = "CUSTOM"
    NONE = "NONE"  # the list carries no categories


@dataclass(frozen=True)
class EntryRecord:
    """One record read from (or written to) a list file.

    ``hashes`` holds normalised values (see :func:`hashwatch.signals.types.normalize_hash`),
    the first one being the record's key hash. ``extra`` keeps format-specific fields (VICS
    MediaFiles, OffenderIdentified, ...) so that export re-creates them.
    """

    hashes: tuple[tuple[HashType, str], ...]
    category: str | None = None
    series: str | None = None
    victim_identified: bool | None = None
    tags: tuple[str, ...] = ()
    comment: str | None = None
    date: str | None = None
    status: EntryStatus = EntryStatus.ACTIVE
    source: str = ""  # "line 12", "record 5", "Media[3]"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def hash_of(self, hash_type: HashType) -> str | None:
        for htype, value in self.hashes:
            if htype is hash_type:
                return value
        return None


@dataclass(frozen=True)
class ListHeader:
    """What a file says about the list as a whole."""

    format: str  # "vics1", "vics2", "csv", "text", "nsrl"
    scheme: CategoryScheme | None = None
    suggested_kind: ListKind | None = None  # NSRL -> ignorable
    metadata: dict[str, Any] = field(default_factory=dict)  # VICS case fields etc.


@dataclass
class ParsedList:
    """A list file being read: its header, and its records as a stream (constant memory)."""

    header: ListHeader
    records: Iterator[EntryRecord]
