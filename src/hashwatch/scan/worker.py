"""The scan's unit of work: hash every file of a work unit and every member of its archives.

Runs in a worker process (the runner pickles :func:`process_unit` with its options), so it
only hashes and reads metadata; matching happens in the main process, which holds the index.

Videos: the one digest read also keeps a video's bytes in memory (up to
:data:`~hashwatch.signals.hasher.KEEP_IN_MEMORY_MAX`, as the hasher keeps them for archive
members), so its frames are hashed (one per ``frame_interval`` seconds, vPDQ's sampling) and its
contact sheet is made from those bytes: the evidence is read once, and never reopened by path
(an open by path could move its access time). A larger video keeps its digests and gets the
error ``video too large to decode``. Everything else is hashed by the hasher as it is.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from hashwatch.scan.archives import ArchiveLimits, Expanded, expand_evidence
from hashwatch.scan.model import ItemRecord
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.contact_sheet import contact_sheet_jpeg
from hashwatch.signals.digests import READ_BLOCK_SIZE
from hashwatch.signals.hasher import KEEP_IN_MEMORY_MAX, FileSignals, HashOptions, hash_stream
from hashwatch.signals.image import sniff_media_type
from hashwatch.signals.video import hash_video
from hashwatch.signals.video_sniff import sniff_video_type

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
    contact_sheets: bool = True

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
            thumbnail=True,
            frame_interval=self.frame_interval,
        )


@dataclass
class UnitResult:
    keys: list[str]  # evidence files covered (for resume)
    records: list[ItemRecord]
    bytes: int  # evidence bytes on disk covered (for progress)


class _ReadAhead:
    """The evidence stream as the digest read sees it, its first block read ahead to tell a
    video (sniffed as the hasher sniffs: an image signature wins) and, for a video of at most
    KEEP_IN_MEMORY_MAX bytes, every block kept."""

    def __init__(self, stream: BinaryIO, size: int | None) -> None:
        self.stream = stream
        self.head = stream.read(READ_BLOCK_SIZE)
        self.is_video = sniff_media_type(self.head[:64]) is None and bool(
            sniff_video_type(self.head[:256])
        )
        fits = size is None or size <= KEEP_IN_MEMORY_MAX
        self.buffer: io.BytesIO | None = io.BytesIO() if self.is_video and fits else None
        self._keep(self.head)

    def read(self, n: int = -1) -> bytes:
        if self.head:
            cut = len(self.head) if n is None or n < 0 else n
            block, self.head = self.head[:cut], self.head[cut:]
            return block
        block = self.stream.read(n)
        self._keep(block)
        return block

    def _keep(self, block: bytes) -> None:
        if self.buffer is not None and block:
            if self.buffer.tell() + len(block) > KEEP_IN_MEMORY_MAX:
                self.buffer = None  # larger than announced: give it up
            else:
                self.buffer.write(block)

    def content(self) -> bytes | None:
        return self.buffer.getvalue() if self.buffer is not None else None


def _with_video(fs: FileSignals, content: bytes | None, options: WorkerOptions) -> FileSignals:
    """``fs`` with the video's frame hashes and contact sheet, made from its bytes."""
    if content is None:
        return dataclasses.replace(fs, error="video too large to decode")
    hash_options = options.hash_options
    video = hash_video(
        content,
        frame_interval=options.frame_interval or 1.0,
        policy=hash_options.pdq_policy,
    )
    sheet = contact_sheet_jpeg(content) if options.contact_sheets and video.frames else None
    return dataclasses.replace(fs, video=video, error=video.error, thumbnail=sheet)


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
        if fs.video is not None and record.sampling is None:
            record.sampling = getattr(fs.video, "sampling", None)
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
    # A video's digest read keeps its bytes here, not in the hasher (frame_interval None): its
    # frames and contact sheet are decoded from them, and they are held once, not twice.
    digest_options = dataclasses.replace(hash_options, frame_interval=None)

    def handle(stream: BinaryIO, display: str, size: int | None, _mtime: str | None) -> FileSignals:
        if options.frame_interval is None:
            return hash_stream(stream, display, size, hash_options)
        try:
            ahead = _ReadAhead(stream, size)
        except OSError as exc:
            return FileSignals(display, None, error=f"cannot read: {exc}"[:300])
        if not ahead.is_video:  # images (animated ones too) and other files: the hasher's way
            return hash_stream(cast(BinaryIO, ahead), display, size, hash_options)
        fs = hash_stream(cast(BinaryIO, ahead), display, size, digest_options)
        if fs.digests is None:
            return fs
        return _with_video(fs, ahead.content(), options)

    records: list[ItemRecord] = []
    for ef in unit:
        for item in expand_evidence(ef, handle, options.limits):
            records.append(_record(ef, item))
    return UnitResult([ef.key for ef in unit], records, sum(ef.size for ef in unit))
