"""What a scan produces: one record per file (archive members included) and clusters of new media.

These plain records are what every output is written from: ``results.jsonl`` (one
:meth:`ItemRecord.as_json` a line), ``report.html``, ``case.vics.json`` and the summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from hashwatch.matching.match import Match

__all__ = ["ARCHIVE_SEPARATOR", "Cluster", "ItemRecord", "ItemStatus", "ScanSummary"]

# A member of an archive is written ``outer.zip!/inner/dir/file.jpg`` (nested: ``a.zip!/b.tar!/c``).
ARCHIVE_SEPARATOR = "!/"


class ItemStatus(StrEnum):
    KNOWN = "known"  # matches a known list: an alert
    IGNORABLE = "ignorable"  # only in ignorable lists (e.g. NSRL)
    NEW = "new"  # an image or video that matches no list: review first
    OTHER = "other"  # not media, no match
    ERROR = "error"  # could not be read or decoded: see ``error``


@dataclass
class ItemRecord:
    """One file of the evidence, or one member of an archive, after hashing and matching."""

    path: str  # display path, archive members as outer.zip!/inner/file
    root: str  # the evidence root it was found under
    size: int | None = None
    mtime: str | None = None  # ISO-8601 UTC, from the file system or the archive entry
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    ed2k: str | None = None
    ed2k_red: str | None = None
    sha1_base32: str | None = None
    media_type: str | None = None  # "image", "video", ...
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_dihedral: list[str] | None = None
    pdq_policy: str | None = None
    duration: float | None = None  # a video's announced duration, seconds
    fps: float | None = None  # a video's average frame rate
    sampling: str | None = None  # how a video's frames were chosen ("fast", "exact")
    status: ItemStatus = ItemStatus.OTHER
    # Typed inside the process; JSON (Match.as_dict) only in results.jsonl.
    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)
    cluster: int | None = None  # number of the new-media cluster (1 = review first)
    exif: dict[str, Any] | None = None  # leads: make, model, serial, capture time, GPS, software
    error: str | None = None
    note: str | None = None  # e.g. "unsafe member name" (read and hashed all the same)
    is_archive: bool = False
    # A file inside a disk image: partition, file system, inode (metadata address), created,
    # modified, accessed, changed, allocated (False: deleted); for a carved item its offset
    # in the media (hashwatch.scan.image_read). None for every other file.
    disk: dict[str, Any] | None = None
    # A disk image's own record: format, segments, volumes, media digests, the E01's stored
    # hashes and whether they were verified. None for every other file.
    image: dict[str, Any] | None = None
    # A video's (or an animated image's) sampled frames, ``{frame, timestamp, pdq, quality}``
    # each (vPDQ's fields), so that a case can be matched again later; None for other files.
    frames: list[dict[str, Any]] | None = field(default=None, repr=False)
    # Small JPEG (an image's thumbnail, a video's contact sheet), never in JSON.
    thumbnail: bytes | None = field(default=None, repr=False)
    # Values of registered signal types that have no field above, by field name: written
    # into the JSON object beside the others, so a new hash type needs no field here.
    signals: dict[str, str] = field(default_factory=dict)
    # A record of a P2P client artifact (hashwatch.scan.p2p.scan_records): client, artifact,
    # artifact path, record index, name, size, dates, completeness, ...; None for files.
    p2p: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``results.jsonl`` object: every field but the thumbnail; absent values omitted
        except the ones the format promises (status, matches, cluster, exif, error)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key in ("thumbnail", "signals"):
                continue
            if value is None and key not in ("cluster", "exif", "error"):
                continue
            if key == "pdq_dihedral" and not value:
                continue
            if key == "suppressed" and not value:
                continue
            if key in ("is_archive", "note") and not value:
                continue
            if key == "frames":
                value = [dict(f) for f in value]
            if key in ("matches", "suppressed"):
                value = [m.as_dict() for m in value]
            out[key] = value.value if isinstance(value, ItemStatus) else value
        for key, value in self.signals.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known.pop("signals", None)
        for key in ("matches", "suppressed"):
            known[key] = [Match.from_dict(m) for m in known.get(key, ())]
        record = cls(**known)
        signal_fields = _signal_fields()
        record.signals = {k: v for k, v in data.items() if k in signal_fields}
        record.status = ItemStatus(record.status)
        return record


@cache
def _signal_fields() -> frozenset[str]:
    """JSON keys of registered signal types that are not fields of :class:`ItemRecord`
    (computed once: it was computed again for every key of every record read back)."""
    from hashwatch.signals.types import SIGNAL_TYPES

    every = {f for impl in SIGNAL_TYPES.values() for f in impl.fields}
    return frozenset(every - set(ItemRecord.__dataclass_fields__))


@dataclass(slots=True)  # one per new item at worst: a million at a million
class Cluster:
    """Near-duplicate new media (within the PDQ threshold, dihedral aware), reviewed once."""

    number: int  # 1 = reviewed first
    members: list[str]  # display paths, the representative first
    representative: str
    priority: float
    reasons: list[str]  # why it ranks where it does, in words
    nearest_known_distance: int | None = None  # a near miss to known material, if any

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class ScanSummary:
    files: int = 0
    bytes: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    new_clusters: int = 0
    known_by_list: dict[str, int] = field(default_factory=dict)
    known_by_category: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    camera_serials: dict[str, int] = field(default_factory=dict)  # new images per serial
    videos_by_status: dict[str, int] = field(default_factory=dict)
    videos_partial: int = 0  # new videos that share frames with a known video (partial match)
    # Records of P2P client artifacts, counted apart from files (hashwatch.scan.p2p).
    p2p_records: int = 0
    p2p_by_status: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)
