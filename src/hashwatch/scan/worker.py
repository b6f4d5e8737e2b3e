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

from dataclasses import dataclass, field
from typing import BinaryIO

from hashwatch.scan.archives import ArchiveLimits, Expanded, expand_evidence
from hashwatch.scan.model import ItemRecord
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.hasher import FileSignals, HashOptions, hash_stream

__all__ = ["UnitResult", "WorkerOptions", "process_unit"]

_FIELDS = (
    "md5", "sha1", "sha256", "ed2k", "ed2k_red", "sha1_base32", "media_type", "mime",
    "width", "height", "pdq", "pdq_quality", "pdq_dihedral", "pdq_policy",
    "duration", "fps", "sampling", "frames",
)  # fmt: skip


@dataclass(frozen=True)
class WorkerOptions:
    dihedral: bool = True
    pdq_policy: str = "fast"
    max_image_pixels: int | None = None
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    # Seconds between hashed video frames (vPDQ samples one a second); None: videos are
    # hashed as byte files only (no frames, no contact sheet).
    frame_interval: float | None = 1.0
    sampling: str = "fast"

    def __post_init__(self) -> None:
        if self.frame_interval is not None and not self.frame_interval > 0:
            raise ValueError("frame_interval must be positive (or None)")

    @property
    def hash_options(self) -> HashOptions:
        return HashOptions(
            dihedral=self.dihedral,
            policy=self.pdq_policy,
            max_image_pixels=self.max_image_pixels,
            exif=True,
            thumbnail=True,  # an image's thumbnail, a video's contact sheet
            frame_interval=self.frame_interval,
            sampling=self.sampling,
        )


@dataclass
class UnitResult:
    keys: list[str]  # evidence files covered (for resume)
    records: list[ItemRecord]
    bytes: int  # evidence bytes on disk covered (for progress)


def _record(ef: EvidenceFile, item: Expanded[FileSignals]) -> ItemRecord:
    record = ItemRecord(
        path=item.display_path,
        root=ef.root,
        size=item.size,
        mtime=item.mtime,
        is_archive=item.is_archive,
    )
    fs = item.result
    if fs is not None:
        fields = fs.as_dict()
        for name in _FIELDS:
            if name in fields:
                setattr(record, name, fields[name])
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
    return record


def process_unit(options: WorkerOptions, unit: list[EvidenceFile]) -> UnitResult:
    """Hash a work unit. Never raises for bad evidence: every problem becomes a record error."""
    hash_options = options.hash_options

    def handle(stream: BinaryIO, display: str, size: int | None, _mtime: str | None) -> FileSignals:
        return hash_stream(stream, display, size, hash_options)

    records: list[ItemRecord] = []
    for ef in unit:
        for item in expand_evidence(ef, handle, options.limits):
            records.append(_record(ef, item))
    return UnitResult([ef.key for ef in unit], records, sum(ef.size for ef in unit))
