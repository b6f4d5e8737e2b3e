"""A worker's side of a disk image: read one planned part, in place, into the scan's pipeline.

Every file found in an image goes through the same pipeline as a file on disk — digests, PDQ,
EXIF, videos, archives inside it — read through The Sleuth Kit (``read_random``) in blocks,
never copied out. A carved picture is hashed from the bytes the carver holds. Each item
carries the facts of where it came from (:func:`image_items` yields them beside it): the
partition and file system, the metadata address (inode, MFT entry), the file system's
created/modified/accessed/changed times, whether it is allocated or deleted, and for carved
items the byte offset in the media.

A deleted file is read as far as its content can still be addressed. If the read stops
early (blocks past the end of a truncated image, a run that points nowhere), what was read is
hashed and ``error`` says the file was read in part.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from hashwatch.scan._archive_io import ArchiveLimits, Budget, Source, describe
from hashwatch.scan.archives import Expanded, Handle, Member, expand_evidence, expand_member
from hashwatch.scan.archives import safe_display as shown
from hashwatch.scan.carve import carve
from hashwatch.scan.image_io import E01, RAW, libraries, open_media, tsk_image
from hashwatch.scan.image_parts import CARVE, FILES, IMAGE, ImagePart, TreeEntry
from hashwatch.scan.model import ARCHIVE_SEPARATOR
from hashwatch.scan.walk import EvidenceFile

__all__ = ["ImageItem", "image_items"]

_BLOCK = 1 << 20


@dataclass(frozen=True)
class ImageItem:
    """One result of a part: what the pipeline made of it, and where it came from."""

    item: Expanded[Any]
    disk: dict[str, Any] | None = None  # facts of a file inside the image
    image: dict[str, Any] | None = None  # facts of the image itself (its own record)


def _iso(seconds: int, nano: int = 0) -> str | None:
    if not seconds:
        return None
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    if nano:
        when = when.replace(microsecond=nano // 1000)
    spec = "seconds" if when.microsecond == 0 else "microseconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


class _TskStream(io.RawIOBase):
    """A file's content through ``read_random``; a read that fails ends the stream early
    and is remembered in ``error`` (what came before is still hashed)."""

    def __init__(self, file: Any, size: int) -> None:
        super().__init__()
        self._file, self._size, self.pos = file, size, 0
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self._size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        left = self._size - self.pos
        n = left if n is None or n < 0 else min(n, left)
        if n <= 0 or self.error is not None:
            return b""
        try:
            data = bytes(self._file.read_random(self.pos, n))
        except (OSError, RuntimeError) as exc:
            self.error = describe(exc).splitlines()[-1] if str(exc) else "read error"
            return b""
        if not data:
            self.error = "no data where the file's blocks should be"
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


class _Partial:
    """The streams opened on one file, to say afterwards whether it was read in part."""

    def __init__(self) -> None:
        self.first: _TskStream | None = None

    def note(self, stream: _TskStream) -> None:
        if self.first is None:
            self.first = stream


def _image_display(part: ImagePart) -> str:
    return shown(part.segments[0])


def _prefix(part: ImagePart) -> str:
    base = _image_display(part) + ARCHIVE_SEPARATOR
    return base + part.label + "/" if part.label else base


def _files(
    part: ImagePart, reader: Any, handle: Handle[Any], limits: ArchiveLimits
) -> Iterator[ImageItem]:
    pytsk3, _ = libraries()
    fs = pytsk3.FS_Info(tsk_image(reader), offset=part.fs_offset)
    regular, link = int(pytsk3.TSK_FS_META_TYPE_REG), int(pytsk3.TSK_FS_META_TYPE_LNK)
    unalloc = int(pytsk3.TSK_FS_META_FLAG_UNALLOC)
    fs_name = part.label[part.label.find("(") + 1 : -1] if "(" in part.label else None
    for entry in part.entries:
        display = _prefix(part) + shown(entry.path)
        facts: dict[str, Any] = {"partition": part.label, "file_system": fs_name}
        facts["inode"] = entry.inode
        try:
            file = fs.open_meta(inode=entry.inode)
            meta = file.info.meta
        except (OSError, RuntimeError) as exc:
            facts["allocated"] = not entry.deleted_name
            error = f"metadata cannot be read: {describe(exc).splitlines()[-1]}"
            yield ImageItem(Expanded(display, entry.size, None, None, error=error), facts)
            continue
        meta_deleted = bool(int(meta.flags) & unalloc)
        deleted = entry.deleted_name or meta_deleted
        facts["allocated"] = not deleted
        for key, attr in (
            ("created", "crtime"),
            ("modified", "mtime"),
            ("accessed", "atime"),
            ("changed", "ctime"),
        ):
            facts[key] = _iso(int(getattr(meta, attr)), int(getattr(meta, attr + "_nano", 0)))
        note = "deleted" if deleted else None
        size = max(0, int(meta.size))
        mtime = facts["modified"]
        if int(meta.type) == link:
            error = "symbolic link not followed"
            yield ImageItem(Expanded(display, size, mtime, None, error=error, note=note), facts)
            continue
        if int(meta.type) != regular:
            error = "special file not read"
            yield ImageItem(Expanded(display, size, mtime, None, error=error, note=note), facts)
            continue
        if entry.deleted_name and not meta_deleted:
            error = "deleted name whose metadata now belongs to another file: content not read"
            yield ImageItem(Expanded(display, size, mtime, None, error=error, note=note), facts)
            continue
        yield from _file_items(file, entry, display, size, mtime, note, facts, handle, limits)


def _file_items(
    file: Any,
    entry: TreeEntry,
    display: str,
    size: int,
    mtime: str | None,
    note: str | None,
    facts: dict[str, Any],
    handle: Handle[Any],
    limits: ArchiveLimits,
) -> Iterator[ImageItem]:
    partial = _Partial()
    budget = Budget(limits, size)

    def opener() -> Source:
        stream = _TskStream(file, size)
        partial.note(stream)
        return Source(cast(BinaryIO, stream), budget, limits, charge=False)

    member = Member(display, size, mtime, note=note, source=opener, reopen=opener)
    member.reopen_cheap = True
    for item in expand_member(member, handle, limits):
        if item.display_path != display:
            yield ImageItem(item)
            continue
        stream = partial.first
        if stream is not None and stream.error is not None:
            what = "deleted file" if note else "file"
            error = f"{what} read in part: {stream.pos:,} of {size:,} bytes ({stream.error})"
            item = replace(item, error="; ".join(e for e in (error, item.error) if e))
        yield ImageItem(item, facts)


def _carved(
    part: ImagePart, reader: Any, handle: Handle[Any], limits: ArchiveLimits
) -> Iterator[ImageItem]:
    slack = part.slack
    for found in carve(reader.read_at, part.ranges, reader.size):
        area = "$Slack" if any(a <= found.offset < b for a, b in slack) else "$Unallocated"
        display = f"{_prefix(part)}{area}/offset-{found.offset}.{found.ext}"
        data = found.data
        budget = Budget(limits, len(data))

        def opener(data: bytes = data, budget: Budget = budget) -> Source:
            return Source(io.BytesIO(data), budget, limits, charge=False)

        member = Member(display, len(data), None, note="carved", source=opener, reopen=opener)
        member.reopen_cheap = True
        facts = {
            "partition": part.label or None,
            "offset": found.offset,
            "carved": area[1:].lower(),
            "allocated": False,
        }
        for item in expand_member(member, handle, limits):
            yield ImageItem(item, facts if item.display_path == display else None)


def _media_digests(reader: Any) -> dict[str, str]:
    hashes = {"md5": hashlib.md5(), "sha1": hashlib.sha1(), "sha256": hashlib.sha256()}
    pos = 0
    while pos < reader.size:
        block = reader.read_at(pos, min(_BLOCK, reader.size - pos))
        if not block:
            raise OSError(f"the media ends at byte {pos:,} of {reader.size:,}")
        for h in hashes.values():
            h.update(block)
        pos += len(block)
    return {name: h.hexdigest() for name, h in hashes.items()}


def _image(
    ef: EvidenceFile, part: ImagePart, handle: Handle[Any], limits: ArchiveLimits
) -> Iterator[ImageItem]:
    """The image file's own record: its digests, and the facts of the image."""
    facts: dict[str, Any] = {
        "format": part.fmt,
        "segments": [os.path.basename(p) for p in part.segments],
        "volumes": [v.as_json() for v in part.volumes],
    }
    errors = [part.error] if part.error else []
    if part.fmt != RAW and part.error is None:
        try:
            reader = open_media(part.fmt, part.segments)
        except Exception as exc:
            errors.append(f"{part.fmt} image cannot be opened: {describe(exc).splitlines()[-1]}")
        else:
            try:
                facts["media_size"] = reader.size
                if part.fmt == E01:
                    facts["acquisition"] = reader.headers()
                    stored = reader.stored_hashes()
                    facts.update({f"stored_{k}": v for k, v in stored.items()})
                digests = _media_digests(reader)
                facts.update({f"media_{k}": v for k, v in digests.items()})
                if part.fmt == E01:
                    differs = [k for k, v in stored.items() if digests.get(k) != v]
                    facts["verified"] = None if not stored else not differs
                    if differs:
                        names = " and ".join(k.upper().replace("SHA1", "SHA-1") for k in differs)
                        errors.append(
                            f"E01 media {names} differs from the hash stored in the image"
                        )
            except Exception as exc:
                errors.append(f"media read in part: {describe(exc).splitlines()[-1]}")
            finally:
                reader.close()
    plain = replace(ef, part=None, size=os.path.getsize(ef.path) if os.path.exists(ef.path) else 0)
    for item in expand_evidence(plain, handle, limits):
        if item.display_path == shown(ef.path):
            error = "; ".join(e for e in (item.error, *errors) if e) or None
            yield ImageItem(replace(item, error=error), image=facts)
        else:
            yield ImageItem(item)


def image_items(
    ef: EvidenceFile, handle: Handle[Any], limits: ArchiveLimits | None = None
) -> Iterator[ImageItem]:
    """Every item of the image part ``ef.part``, in a stable order. Never raises: a part that
    cannot be read becomes one item with an error."""
    part = ef.part
    assert part is not None
    limits = limits or ArchiveLimits()
    if part.kind == IMAGE:
        yield from _image(ef, part, handle, limits)
        return
    where = _prefix(part).rstrip("/")
    try:
        reader = open_media(part.fmt, part.segments)
    except Exception as exc:
        error = f"image cannot be opened: {describe(exc).splitlines()[-1]}"
        yield ImageItem(Expanded(where, None, None, None, error=error))
        return
    try:
        work: Callable[..., Iterator[ImageItem]] = _files if part.kind == FILES else _carved
        assert part.kind in (FILES, CARVE)
        yield from work(part, reader, handle, limits)
    except Exception as exc:
        error = f"{part.kind} of the image stopped: {describe(exc).splitlines()[-1]}"
        yield ImageItem(Expanded(f"{where} [{part.key}]", None, None, None, error=error))
    finally:
        reader.close()
