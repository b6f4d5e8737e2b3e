"""A part of a disk image as one item of work: what a worker is told to read in an image.

Kept apart from :mod:`hashwatch.scan.images` (which needs The Sleuth Kit) so that the walk and
the work units can carry parts without importing it. A part is small, frozen and picklable,
like the :class:`~hashwatch.scan.walk.EvidenceFile` that carries it, and its :attr:`key` is
the same on every run over the same image, so ``--resume`` skips the parts already done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["CARVE", "FILES", "IMAGE", "ImagePart", "TreeEntry", "Volume"]

IMAGE = "image"  # the image file's own digests, the media's digests and stored hashes
FILES = "files"  # files of one file system, by metadata address
CARVE = "carve"  # byte ranges of the media no file holds, searched for pictures


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """A file of a file system as the planner found it in the directory tree."""

    inode: int  # metadata address (inode, MFT entry, FAT directory entry)
    path: str  # inside the file system, "/" separated, no leading "/"
    deleted_name: bool  # the directory entry itself is unallocated
    size: int


@dataclass(frozen=True, slots=True)
class Volume:
    """A partition (or the whole media) as found: for the image's own record."""

    label: str  # "p2(NTFS)", "fs(FAT12)", "p3" (no file system read), "" (whole media)
    offset: int  # bytes from the start of the media
    length: int
    file_system: str | None
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "label": self.label,
            "offset": self.offset,
            "length": self.length,
            "file_system": self.file_system,
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class ImagePart:
    """One piece of an image's work (see the kinds above)."""

    kind: str
    fmt: str  # "E01", "raw", "split raw"
    segments: tuple[str, ...]  # absolute paths; the first is the image as the walk found it
    label: str = ""  # the volume's label in display paths ("" for the whole media)
    fs_offset: int = 0  # where the file system starts in the media (FILES)
    entries: tuple[TreeEntry, ...] = ()  # FILES
    ranges: tuple[tuple[int, int], ...] = ()  # CARVE: [start, end) byte ranges of the media
    slack: tuple[tuple[int, int], ...] = ()  # CARVE: the parts of ``ranges`` that are slack
    volumes: tuple[Volume, ...] = ()  # IMAGE: what the planner found
    error: str | None = None  # IMAGE: what the planner could not read

    @property
    def key(self) -> str:
        """Stable over runs: the kind, the volume and the first and last item covered."""
        if self.kind == FILES:
            span: list[object] = [self.entries[0].inode, self.entries[-1].inode, len(self.entries)]
        elif self.kind == CARVE:
            span = [self.ranges[0][0], self.ranges[-1][1], len(self.ranges)]
        else:
            span = []
        return json.dumps([self.kind, self.label, self.fs_offset, *span], separators=(",", ":"))
