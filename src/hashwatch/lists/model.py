"""What a hash list is made of, independent of file formats and of the database.

A list holds *entries*. An entry describes one piece of media by one or more hashes (a VICS
Media record carries MD5, SHA-1 and, as AlternativeHashes, SHA-256 and PDQ) and, for a video,
the PDQ hashes of its sampled frames, plus the curator's facts about it: raw category code,
series, victim identified, tags, comment, date, and where the record came from.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from hashwatch.errors import ConfigError
from hashwatch.signals.types import HashType

__all__ = [
    "MAX_LIST_NAME",
    "MIN_FRAME_QUALITY",
    "CategoryScheme",
    "EntryRecord",
    "EntryStatus",
    "ListHeader",
    "ListKind",
    "ParsedList",
    "VideoFrameHash",
    "check_list_name",
    "frame_set_digest",
    "matchable_frames",
]

# The length of the database column holding a list's name.
MAX_LIST_NAME = 200
# Control characters (CR, LF, NUL, ESC ...), format characters and line/paragraph separators:
# a name with them breaks log lines, terminal output and headers.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})

# vPDQ never matches frames of lower quality (Meta's rule, the same as for images).
MIN_FRAME_QUALITY = 50


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


def check_list_name(name: str) -> str:
    """``name`` if it is a valid list name, else :class:`ConfigError` saying why.

    One rule for every way a list comes to exist (create, import, add-media, HTTP): 1 to
    200 characters, no control or format characters, no ``/`` (a name must fit one segment
    of ``/v1/lists/{name}``), no space at either end. Messages never repeat the name.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("a list needs a name")
    if len(name) > MAX_LIST_NAME:
        raise ConfigError(f"a list name has at most {MAX_LIST_NAME} characters, got {len(name)}")
    for pos, char in enumerate(name, 1):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ConfigError(
                f"a list name cannot hold control characters (U+{ord(char):04X} at {pos})"
            )
    if "/" in name:
        raise ConfigError(
            f"a list name cannot hold '/' (at {name.index('/') + 1}): it could not be reached "
            "over HTTP"
        )
    if name != name.strip():
        raise ConfigError("a list name cannot start or end with a space")
    return name


@dataclass(frozen=True)
class VideoFrameHash:
    """One hashed frame of a video: number among decoded frames, time in seconds, PDQ, quality.

    The fields of a vPDQ line (``frame,quality,hex,timestamp``)."""

    frame: int
    timestamp: float
    pdq: str
    quality: int


def matchable_frames(
    frames: Iterable[VideoFrameHash], min_quality: int = MIN_FRAME_QUALITY
) -> list[VideoFrameHash]:
    """The frames vPDQ matches with: quality >= ``min_quality``, the first of exact duplicates."""
    seen: set[str] = set()
    out = []
    for f in frames:
        if f.quality >= min_quality and f.pdq not in seen:
            seen.add(f.pdq)
            out.append(f)
    return out


def frame_set_digest(frames: Iterable[VideoFrameHash]) -> str:
    """SHA-256 of the canonical vPDQ lines of ``frames`` (the key of a frames-only entry)."""
    digest = hashlib.sha256()
    for f in sorted(frames, key=lambda f: (f.frame, f.pdq)):
        digest.update(f"{f.frame},{f.quality},{f.pdq}\n".encode("ascii"))
    return digest.hexdigest()


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
    # A video's frame hashes (vPDQ): matched like PDQ hashes of images, counted per video.
    frames: tuple[VideoFrameHash, ...] = ()

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
