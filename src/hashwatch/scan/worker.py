"""The scan's unit of work: hash every file of a work unit and every member of its archives.

Runs in a worker process (the runner pickles :func:`process_unit` with its options), so it
only hashes and reads metadata; matching happens in the main process, which holds the index.

Evidence is always hashed from the stream the walker opened (never reopened by path, which
could move its access time): the hasher's one digest read keeps a video's bytes in memory (up
to :data:`~hashwatch.signals.hasher.KEEP_IN_MEMORY_MAX`), and its frames (one per
``frame_interval`` seconds) and contact sheet are made from them. A larger video keeps its
digests and gets the error ``video too large to decode``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from hashwatch.scan.archives import ArchiveLimits, Expanded, expand_evidence
from hashwatch.scan.image_read import image_items
from hashwatch.scan.model import ItemRecord
from hashwatch.scan.p2p.scan_records import P2PArtifacts
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.hasher import FileSignals, HashOptions, hash_stream
from hashwatch.signals.query import MediaQuery
from hashwatch.signals.types import SIGNAL_TYPES

__all__ = ["UnitResult", "WorkerOptions", "process_unit"]

# Fields of a hashed file that the record takes from elsewhere (the walk, the error merge).
_NOT_COPIED = frozenset({"path", "size", "error", "hashed_by"})
_RECORD_FIELDS = frozenset(ItemRecord.__dataclass_fields__) - _NOT_COPIED
_SIGNAL_FIELDS = frozenset(f for impl in SIGNAL_TYPES.values() for f in impl.fields)


@dataclass
class UnitResult:
    keys: list[str]  # evidence files covered (for resume)
    records: list[ItemRecord]
    bytes: int  # evidence bytes on disk covered (for progress)
    # What each record is matched with (typed signals and frames), in record order.
    queries: list[MediaQuery] = field(default_factory=list)


def _record(ef: EvidenceFile, item: Expanded[FileSignals]) -> tuple[ItemRecord, MediaQuery]:
    record = ItemRecord(
        path=item.display_path,
        root=ef.root,
        size=item.size,
        mtime=item.mtime,
        is_archive=item.is_archive,
    )
    fs = item.result
    query = MediaQuery()
    if fs is not None:
        query = MediaQuery.of_file(fs)
        for name, value in fs.as_dict().items():
            if name in _RECORD_FIELDS:
                setattr(record, name, value)
            elif name in _SIGNAL_FIELDS:
                record.signals[name] = value  # a registered type without a field of its own
        if fs.digests is not None:
            record.size = fs.digests.size
        record.exif = fs.exif
        record.thumbnail = fs.thumbnail
    errors: list[str] = []
    for error in (item.error, fs.error if fs is not None else None):
        if error and not any(error in seen or seen in error for seen in errors):
            errors.append(error)  # a limit hit while hashing is reported by both: say it once
    record.error = "; ".join(errors) or None
    record.note = item.note
    return record, query


@dataclass(frozen=True)
class WorkerOptions:
    """What a scan worker is given: the scan's hashing options, as the caller built them,
    and the limits on archives. ``local_features``: describe every picture's local features
    from its decode (a list the scan matches uses them), sent back with the unit's queries
    and matched in the main process, which holds the feature index. ``thumbnails``: make each
    picture's small JPEG (a video's contact sheet) from its decode; off, pictures decode in
    luma only and the review makes thumbnails from the evidence when they are shown."""

    hashing: HashOptions = field(default_factory=HashOptions)
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    local_features: bool = False
    thumbnails: bool = True


def process_unit(
    options: WorkerOptions,
    unit: list[EvidenceFile],
    on_file: Callable[[EvidenceFile], None] | None = None,
) -> UnitResult:
    """Hash a work unit. Never raises for bad evidence: every problem becomes a record error.

    ``on_file`` is called as each evidence file (with its archive members) is done, for
    progress finer than a unit.
    """
    # Beyond the scan's options: EXIF leads, thumbnails (a video's contact sheet) unless the
    # scan said none, and the 8 dihedral PDQ hashes, which clustering compares whatever
    # matching does.
    hash_options = replace(
        options.hashing,
        exif=True,
        thumbnail=options.thumbnails,
        dihedral=True,
        local_features=options.local_features,
    )

    # P2P client artifacts: their records are read from the same stream, and become items.
    p2p = P2PArtifacts()

    def handle(stream: BinaryIO, display: str, size: int | None, _mtime: str | None) -> FileSignals:
        return p2p.hash(
            stream, display, size, lambda s: hash_stream(s, display, size, hash_options)
        )

    records: list[ItemRecord] = []
    queries: list[MediaQuery] = []

    def add(record: ItemRecord, query: MediaQuery) -> None:
        records.append(record)
        queries.append(query)
        for item, item_query in p2p.items_of(record):
            records.append(item)
            queries.append(item_query)

    for ef in unit:
        if ef.part is not None:  # a part of a disk image (hashwatch.scan.images)
            for found in image_items(ef, handle, options.limits):
                record, query = _record(ef, found.item)
                record.disk, record.image = found.disk, found.image
                add(record, query)
        else:
            for item in expand_evidence(ef, handle, options.limits):
                add(*_record(ef, item))
        if on_file is not None:
            on_file(ef)
    return UnitResult([ef.key for ef in unit], records, sum(ef.size for ef in unit), queries)
