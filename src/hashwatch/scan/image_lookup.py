"""One item of a disk image read again by its display path, for the review's full-size view.

A case records where each item was found (``disk.E01!/p2(ext4)/photos/a.jpg``,
``usb.E01!/fs(FAT12)/$Unallocated/offset-1425408.jpg``,
``disk.E01!/p2(ext4)/archive.zip!/inner/photo.jpg``), not the way the scan got there. This
module goes back the same way and reads only what leads to that one item: it recognises the
image as the planner does (:mod:`hashwatch.scan.images`), finds the partition named in the
path in the partition table, follows the path one directory at a time (deleted entries and The
Sleuth Kit's ``$OrphanFiles`` included, as the planner walks them), and hands a part of one
file, or of one carved offset, to the scan's own worker
(:func:`hashwatch.scan.image_read.image_items`). The bytes are therefore read as the scan read
them: a file by its metadata address, a carved item recovered by the carver from its offset
(so its length is the carver's), an archive member through the archive reader. Every segment
is opened read-only without access times; nothing is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from hashwatch.scan._archive_io import ArchiveLimits, describe
from hashwatch.scan.archives import safe_display as shown
from hashwatch.scan.image_io import (
    E01,
    INSTALL_HINT,
    RAW,
    SPLIT_RAW,
    ewf_segment_number,
    ewf_segments,
    libraries,
    looks_like_raw,
    open_media,
    split_raw_segments,
    tsk_image,
)
from hashwatch.scan.image_parts import CARVE, FILES, ImagePart, TreeEntry
from hashwatch.scan.image_read import image_items
from hashwatch.scan.images import MIN_IMAGE, fs_type_name
from hashwatch.scan.model import ARCHIVE_SEPARATOR
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.digests import open_evidence

__all__ = ["ImageItemRead", "read_image_item"]

_CARVED = re.compile(
    r"^(?:(?P<label>[^/]+)/)?\$(?P<area>Unallocated|Slack)/offset-(?P<offset>\d+)\."
    r"(?P<ext>jpg|png|gif|mp4)$"
)


@dataclass(frozen=True)
class ImageItemRead:
    """The item's bytes, or why they could not be read from the image (``reason``)."""

    data: bytes | None
    reason: str | None = None


def _format(path: str) -> tuple[str, list[str]] | None:
    """``(format, segments)`` when ``path`` starts like a disk image (the planner's test)."""
    try:
        with open_evidence(path) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(4096)
            iso = b""
            if size > 40 * 1024:
                f.seek(32769)
                iso = f.read(5)
    except OSError:
        return None
    if size < MIN_IMAGE:
        return None
    number = ewf_segment_number(head)
    if number is not None:
        return (E01, [path]) if number == 1 else None
    if not looks_like_raw(head, iso):
        return None
    segments = split_raw_segments(path)
    return (SPLIT_RAW if len(segments) > 1 else RAW), segments


def _volume(pytsk3: Any, img: Any, label: str) -> int | None:
    """Where the volume ``label`` (``p2(ext4)``, ``fs(FAT12)``) starts in the media, numbered
    as the planner numbers them: the allocated partitions in table order from 1."""
    base = label.split("(", 1)[0]
    try:
        vs = pytsk3.Volume_Info(img)
    except (OSError, RuntimeError):
        vs = None
    if vs is None:
        return 0 if base == "fs" else None
    sector = int(vs.info.block_size)
    alloc = int(pytsk3.TSK_VS_PART_FLAG_ALLOC)
    number = 0
    for part in vs:
        if not int(part.flags) & alloc:
            continue
        number += 1
        if f"p{number}" == base:
            return int(part.start) * sector
    return None


def _is_image(pytsk3: Any, img: Any) -> bool:
    """A volume system or a file system at the start: what makes raw bytes an image."""
    try:
        pytsk3.Volume_Info(img)
        return True
    except (OSError, RuntimeError):
        pass
    try:
        pytsk3.FS_Info(img, offset=0)
        return True
    except (OSError, RuntimeError):
        return False


def _entries(pytsk3: Any, fs: Any, path: str) -> list[TreeEntry]:
    """The files at ``path`` (display form), allocated ones first: the directories on the way
    are followed one at a time, deleted ones included, as the planner's walk follows them."""
    dirs = {int(pytsk3.TSK_FS_META_TYPE_DIR), int(pytsk3.TSK_FS_META_TYPE_VIRT_DIR)}
    name_dirs = {int(pytsk3.TSK_FS_NAME_TYPE_DIR), int(pytsk3.TSK_FS_NAME_TYPE_VIRT_DIR)}
    virtual = (int(pytsk3.TSK_FS_META_TYPE_VIRT), int(pytsk3.TSK_FS_NAME_TYPE_VIRT))
    unalloc = int(pytsk3.TSK_FS_NAME_FLAG_UNALLOC)
    names = path.split("/")
    level = [fs.open_dir(path="/")]
    found: list[TreeEntry] = []
    for depth, wanted in enumerate(names):
        last = depth == len(names) - 1
        below: list[Any] = []
        for directory in level:
            for entry in directory:
                raw = bytes(entry.info.name.name or b"")
                if raw in (b".", b"..", b""):
                    continue
                if shown(raw.decode("utf-8", "surrogateescape")) != wanted:
                    continue
                name, meta = entry.info.name, entry.info.meta
                mtype = int(meta.type) if meta is not None else -1
                addr = int(meta.addr) if meta is not None else int(name.meta_addr)
                is_dir = mtype in dirs or (meta is None and int(name.type) in name_dirs)
                if not last:
                    if is_dir:
                        with contextlib.suppress(OSError, RuntimeError):
                            below.append(entry.as_directory())
                elif not is_dir and mtype != virtual[0] and int(name.type) != virtual[1]:
                    size = max(int(meta.size) if meta is not None else 0, 0)
                    deleted = bool(int(name.flags) & unalloc)
                    found.append(TreeEntry(addr, path, deleted, size))
        level = below
    return sorted(found, key=lambda e: e.deleted_name)


class _Catch:
    """The scan's handle for one display path: keeps that item's bytes (up to a limit)."""

    def __init__(self, target: str, max_bytes: int) -> None:
        self.target, self.max_bytes = target, max_bytes
        self.data: bytes | None = None
        self.too_large = False

    def __call__(self, stream: BinaryIO, display: str, size: int | None, mtime: str | None) -> None:
        if display != self.target or self.data is not None or self.too_large:
            return
        data = stream.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            self.too_large = True
        else:
            self.data = data


_GONE = "the item is no longer where the scan found it"


def _read_part(
    image_path: str, part: ImagePart, target: str, max_bytes: int, limits: ArchiveLimits
) -> ImageItemRead:
    """``target``'s bytes as the scan's worker reads ``part`` (stopping once they are held)."""
    st = os.stat(image_path)
    ef = EvidenceFile(os.path.dirname(image_path), part.segments[0], st.st_size, 0, part=part)
    catch = _Catch(target, max_bytes)
    error = None
    items: Iterator[Any] = image_items(ef, catch, limits)
    try:
        for result in items:
            if result.item.display_path == target and result.item.error:
                error = result.item.error
            if catch.data is not None or catch.too_large:
                break
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()  # the media's segments are closed at once
    if catch.too_large:
        return ImageItemRead(None, f"larger than {max_bytes} bytes")
    if catch.data is None:
        return ImageItemRead(None, error or _GONE)
    return ImageItemRead(catch.data)


def read_image_item(
    image_path: str,
    display_path: str,
    max_bytes: int,
    *,
    sha256: str | None = None,
    limits: ArchiveLimits | None = None,
) -> ImageItemRead | None:
    """The bytes of the item the scan recorded at ``display_path`` inside the disk image
    whose first segment is ``image_path``; None when ``image_path`` is not a disk image.

    Of several files at one path (a deleted entry beside an allocated one of the same name),
    the one whose content has ``sha256`` is returned, else the first. Nothing raises for the
    evidence's sake: what cannot be read is an :class:`ImageItemRead` with a reason.
    """
    found = _format(image_path)
    if found is None:
        return None
    fmt, segments = found
    head = shown(image_path) + ARCHIVE_SEPARATOR
    if not display_path.startswith(head):
        return None
    rest = display_path[len(head) :]
    try:
        pytsk3, _ = libraries()
    except ImportError:
        return ImageItemRead(None, INSTALL_HINT) if fmt == E01 else None
    limits = limits or ArchiveLimits()
    try:
        if fmt == E01:
            segments = ewf_segments(image_path)
        reader = open_media(fmt, segments)
    except Exception as exc:
        return ImageItemRead(None, f"the {fmt} image cannot be opened: {_text(exc)}")
    try:
        img = tsk_image(reader)
        if fmt != E01 and not _is_image(pytsk3, img):
            return None  # bytes that looked like a boot sector: an ordinary file
        try:
            reader.read_at(reader.size - 1, 1)
        except Exception as exc:
            return ImageItemRead(None, f"the {fmt} image cannot be read to its end: {_text(exc)}")
        where = _Where(image_path, fmt, tuple(segments), rest, max_bytes, limits)
        carved = where.carved()
        if carved is None:
            return where.file(pytsk3, img, sha256)
        if carved.data is None and not rest.startswith("$"):
            read = where.file(pytsk3, img, sha256)  # a file may have a carved item's name
            return read if read.data is not None else carved
        return carved
    except Exception as exc:  # The Sleuth Kit on a changed image: still an answer, not a crash
        return ImageItemRead(None, f"the image cannot be read: {_text(exc)}")
    finally:
        reader.close()


@dataclass(frozen=True)
class _Where:
    """One item's place: the image, its format and segments, the path inside it."""

    image_path: str
    fmt: str
    segments: tuple[str, ...]
    rest: str  # the display path after "image!/"
    max_bytes: int
    limits: ArchiveLimits

    @property
    def target(self) -> str:
        return shown(self.segments[0]) + ARCHIVE_SEPARATOR + self.rest

    def carved(self) -> ImageItemRead | None:
        """A carved item, recovered by the carver from its offset; None: not a carved path."""
        found = _CARVED.match(self.rest)
        if found is None:
            return None
        offset = int(found["offset"])
        span = ((offset, offset + 1),)
        slack = span if found["area"] == "Slack" else ()
        part = ImagePart(
            CARVE, self.fmt, self.segments, found["label"] or "", ranges=span, slack=slack
        )
        read = _read_part(self.image_path, part, self.target, self.max_bytes, self.limits)
        if read.data is None and read.reason == _GONE:
            return ImageItemRead(None, f"nothing is carved at byte {offset} of the media now")
        return read

    def file(self, pytsk3: Any, img: Any, sha256: str | None) -> ImageItemRead:
        """A file of a file system (or an archive member in one), by its path."""
        label, _, inside = self.rest.partition("/")
        path = inside.split(ARCHIVE_SEPARATOR, 1)[0]
        offset = _volume(pytsk3, img, label)
        if offset is None or not path:
            return ImageItemRead(None, f"the image has no volume {label} now")
        try:
            fs = pytsk3.FS_Info(img, offset=offset)
        except (OSError, RuntimeError):
            return ImageItemRead(None, f"no file system is read in {label} now")
        name = fs_type_name(pytsk3, fs.info.ftype)
        if label != f"{label.split('(', 1)[0]}({name})":
            return ImageItemRead(None, f"{label} holds a {name} file system now")
        first: ImageItemRead | None = None
        for entry in _entries(pytsk3, fs, path):
            part = ImagePart(FILES, self.fmt, self.segments, label, offset, (entry,))
            read = _read_part(self.image_path, part, self.target, self.max_bytes, self.limits)
            if sha256 is None or (
                read.data is not None and hashlib.sha256(read.data).hexdigest() == sha256.lower()
            ):
                return read
            first = first or read
        return first or ImageItemRead(None, "no file at this path in the image now")


def _text(exc: BaseException) -> str:
    lines = describe(exc).strip().splitlines()
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
