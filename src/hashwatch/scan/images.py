"""Disk images as evidence: found by content, planned into parts that workers share.

A disk image (E01 or raw, split or not; see :mod:`hashwatch.scan.image_io`) is one more
container read in place, like an archive, but a large one: the :class:`ImagePlanner` turns it
into parts (:mod:`hashwatch.scan.image_parts`) so that several workers read one image at once,
and a resumed scan skips the parts already done. For each image it plans:

- one ``image`` part: the image file's own digests (the manifest and ``verify --evidence``
  need them), and for an E01 or a split raw image the media's MD5, SHA-1 and SHA-256, with an
  E01's stored hashes checked against them;
- ``files`` parts: the files of each file system (partitions from the MBR or GPT, or a file
  system filling the media), found by walking its directory tree, deleted entries and The
  Sleuth Kit's orphan files included, up to :data:`PART_FILES` files or :data:`PART_BYTES`
  each;
- with ``carve``, ``carve`` parts: the byte ranges no file's content covers (unallocated
  blocks, file slack, space outside any partition), up to :data:`PART_BYTES` each.

The planner runs in the scanning process and reads only metadata. Workers read the content
(:func:`hashwatch.scan.image_read.image_items`). Paths are written
``laptop.E01!/p2(NTFS)/Users/x/a.jpg``: partitions numbered in table order from 1, ``fs(...)``
for a file system without a partition table, ``$Unallocated/offset-N.jpg`` for a carved item
at byte N of the media.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from hashwatch.scan.image_io import (
    E01,
    INSTALL_HINT,
    RAW,
    SPLIT_RAW,
    MediaReader,
    ewf_segment_number,
    ewf_segments,
    libraries,
    looks_like_raw,
    open_media,
    split_raw_segments,
    tsk_image,
)
from hashwatch.scan.image_parts import CARVE, FILES, IMAGE, ImagePart, TreeEntry, Volume
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.digests import open_evidence

__all__ = ["PART_BYTES", "PART_FILES", "ImagePlanner", "fs_type_name"]

PART_BYTES = 256 << 20
PART_FILES = 1000
MIN_IMAGE = 1024  # smaller files are never images (and are not even opened to check)


def fs_type_name(pytsk3: Any, ftype: Any) -> str:
    """A file-system type as people write it: NTFS, FAT32, exFAT, ext4, HFS+, ISO9660..."""
    names = {
        "NTFS": "NTFS",
        "FAT12": "FAT12",
        "FAT16": "FAT16",
        "FAT32": "FAT32",
        "EXFAT": "exFAT",
        "EXT2": "ext2",
        "EXT3": "ext3",
        "EXT4": "ext4",
        "HFS": "HFS+",
        "ISO9660": "ISO9660",
        "APFS": "APFS",
        "FFS1": "UFS1",
        "FFS1B": "UFS1",
        "FFS2": "UFS2",
        "YAFFS2": "YAFFS2",
        "SWAP": "swap",
    }
    for tsk_name, shown in names.items():
        if int(ftype) == int(getattr(pytsk3, f"TSK_FS_TYPE_{tsk_name}", -1)):
            return shown
    return "unknown"


@dataclass
class _Found:
    """What the planner learnt about one image."""

    fmt: str
    segments: list[str]
    size: int = 0
    volumes: list[Volume] = field(default_factory=list)
    file_systems: list[tuple[Volume, list[TreeEntry], list[tuple[int, int]]]] = field(
        default_factory=list
    )  # (volume, files, content ranges (start, end) in the media)
    slack: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[tuple[str, int, int]] = field(default_factory=list)  # (label, start, end)
    errors: list[str] = field(default_factory=list)


def _sniff(ef: EvidenceFile) -> tuple[str, list[str]] | None:
    """``(format, segments)`` of an image, or None; reads a few KiB, read-only."""
    try:
        with open_evidence(ef.path) as f:
            head = f.read(4096)
            iso = b""
            if ef.size > 40 * 1024:
                f.seek(32769)
                iso = f.read(5)
    except OSError:
        return None  # the worker reports it
    number = ewf_segment_number(head)
    if number is not None:
        return (E01, []) if number == 1 else None
    if not looks_like_raw(head, iso):
        return None
    segments = split_raw_segments(ef.path)
    return (SPLIT_RAW if len(segments) > 1 else RAW), segments


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _minus(start: int, end: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[start, end)`` without the (merged, sorted) ``taken`` ranges."""
    out, pos = [], start
    for a, b in taken:
        if b <= pos or a >= end:
            continue
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < end:
        out.append((pos, end))
    return out


class _Tree:
    """The files of one file system (metadata only): entries, and with ``runs`` the byte
    ranges their content (and their slack) occupies in the media."""

    def __init__(self, pytsk3: Any, fs: Any, fs_offset: int, runs: bool) -> None:
        self.tsk, self.fs, self.fs_offset, self.runs = pytsk3, fs, fs_offset, runs
        self.block = int(fs.info.block_size)
        self.entries: list[TreeEntry] = []
        self.content: list[tuple[int, int]] = []
        self.slack: list[tuple[int, int]] = []

    def walk(self) -> None:
        tsk = self.tsk
        dirs = {int(tsk.TSK_FS_META_TYPE_DIR), int(tsk.TSK_FS_META_TYPE_VIRT_DIR)}
        name_dirs = {int(tsk.TSK_FS_NAME_TYPE_DIR), int(tsk.TSK_FS_NAME_TYPE_VIRT_DIR)}
        virtual = (int(tsk.TSK_FS_META_TYPE_VIRT), int(tsk.TSK_FS_NAME_TYPE_VIRT))
        unalloc = int(tsk.TSK_FS_NAME_FLAG_UNALLOC)
        root = self.fs.open_dir(path="/")
        seen = {int(self.fs.info.root_inum)}
        stack: list[tuple[str, Any]] = [("", root)]
        while stack:
            prefix, directory = stack.pop()
            children = []
            for entry in directory:
                name = entry.info.name
                raw = bytes(name.name or b"")
                if raw in (b".", b"..", b""):
                    continue
                children.append((raw.decode("utf-8", "surrogateescape"), entry))
            children.sort(key=lambda c: c[0])
            subdirs = []
            for text, entry in children:
                name, meta = entry.info.name, entry.info.meta
                mtype = int(meta.type) if meta is not None else -1
                addr = int(meta.addr) if meta is not None else int(name.meta_addr)
                if mtype in dirs or (meta is None and int(name.type) in name_dirs):
                    if addr not in seen:
                        seen.add(addr)
                        self._runs(entry, 0)
                        # A deleted directory whose entries are gone cannot be opened.
                        with contextlib.suppress(OSError, RuntimeError):
                            subdirs.append((prefix + text + "/", entry.as_directory()))
                    continue
                if mtype == virtual[0] or int(name.type) == virtual[1]:
                    continue  # $MBR, $FAT1...: The Sleuth Kit's views, not files
                if text.endswith("(Volume Label Entry)") and prefix == "":
                    continue  # FAT's volume label, which The Sleuth Kit lists as a file
                size = int(meta.size) if meta is not None else 0
                deleted = bool(int(name.flags) & unalloc)
                if prefix.startswith("$OrphanFiles/") and size <= 0:
                    continue  # an unused metadata entry (NTFS reserves a few): nothing to read
                self.entries.append(TreeEntry(addr, prefix + text, deleted, max(size, 0)))
                self._runs(entry, size)
            stack.extend(reversed(subdirs))

    def _runs(self, entry: Any, size: int) -> None:
        if not self.runs:
            return
        block, base = self.block, self.fs_offset
        filler = int(self.tsk.TSK_FS_ATTR_RUN_FLAG_FILLER) | int(
            self.tsk.TSK_FS_ATTR_RUN_FLAG_SPARSE
        )
        try:
            for attr in entry:
                attr_size = int(attr.info.size)
                for run in attr:
                    if int(run.flags) & filler or not int(run.len):
                        continue
                    start = base + int(run.addr) * block
                    end = start + int(run.len) * block
                    used = max(0, min(int(run.len) * block, attr_size - int(run.offset) * block))
                    self.content.append((start, start + used))
                    if used < end - start:
                        self.slack.append((start + used, end))
        except (OSError, RuntimeError):
            pass  # attributes that cannot be listed: their blocks are searched as free


class ImagePlanner:
    """Turns the walk's files into work: plain files pass through, each disk image becomes
    its parts. Planning is deterministic (resume relies on it) and cached per image, since a
    scan walks the evidence twice (to count, then to work)."""

    def __init__(
        self, *, carve: bool = False, part_files: int = PART_FILES, part_bytes: int = PART_BYTES
    ) -> None:
        self.carve, self.part_files, self.part_bytes = carve, part_files, part_bytes
        self._plans: dict[str, list[EvidenceFile]] = {}
        self._segments: set[str] = set()  # later segments of planned images: not images

    def expand(self, files: Iterable[EvidenceFile]) -> Iterator[EvidenceFile]:
        for ef in files:
            plain = ef.error is not None or ef.part is not None or ef.size < MIN_IMAGE
            if plain or ef.path in self._segments:
                yield ef
            elif ef.key in self._plans:
                yield from self._plans[ef.key]
            else:
                plan = self._plan(ef)
                if plan is None:
                    yield ef
                else:
                    self._plans[ef.key] = plan
                    yield from plan

    def _plan(self, ef: EvidenceFile) -> list[EvidenceFile] | None:
        sniffed = _sniff(ef)
        if sniffed is None:
            return None
        fmt, segments = sniffed
        try:
            libraries()
        except ImportError:
            if fmt != E01:
                return None  # without The Sleuth Kit, raw media cannot be told from data
            part = ImagePart(IMAGE, fmt, (ef.path,), error=INSTALL_HINT)
            return [replace(ef, part=part)]
        found = _Found(fmt, segments)
        if fmt == E01:
            try:
                found.segments = ewf_segments(ef.path)
            except Exception as exc:
                found.segments = [ef.path]
                found.errors.append(f"E01 segments not found: {exc}")
        if not found.errors:
            self._read(found)
        if fmt != E01 and not found.volumes:
            return None  # raw bytes that looked like a boot sector: an ordinary file
        self._segments.update(found.segments[1:])
        return self._parts(ef, found)

    def _read(self, found: _Found) -> None:
        pytsk3, _ = libraries()
        try:
            reader = open_media(found.fmt, found.segments)
        except Exception as exc:
            found.errors.append(f"{found.fmt} image cannot be opened: {_text(exc)}")
            return
        try:
            found.size = reader.size
            self._volumes(pytsk3, reader, found)
        finally:
            reader.close()

    def _volumes(self, pytsk3: Any, reader: MediaReader, found: _Found) -> None:
        img = tsk_image(reader)
        try:
            vs = pytsk3.Volume_Info(img)
        except (OSError, RuntimeError):
            vs = None
        if vs is None:
            volume = self._file_system(pytsk3, img, "fs", 0, reader.size, found)
            if volume is not None:
                found.volumes.append(volume)
            elif found.fmt == E01:
                found.gaps.append(("", 0, reader.size))
            return
        sector = int(vs.info.block_size)
        number = 0
        alloc, unalloc = int(pytsk3.TSK_VS_PART_FLAG_ALLOC), int(pytsk3.TSK_VS_PART_FLAG_UNALLOC)
        for part in vs:
            start, length = int(part.start) * sector, int(part.len) * sector
            flags = int(part.flags)
            if flags & unalloc:
                found.gaps.append(("", start, start + length))
            if not flags & alloc:
                continue
            number += 1
            label = f"p{number}"
            volume = self._file_system(pytsk3, img, label, start, length, found)
            if volume is None:
                volume = Volume(label, start, length, None, "no file system The Sleuth Kit reads")
                found.gaps.append((label, start, start + length))
            if start + length > reader.size:
                found.errors.append(
                    f"image truncated: {volume.label} ends at byte {start + length:,}, "
                    f"the media has {reader.size:,} bytes"
                )
            found.volumes.append(volume)

    def _file_system(
        self, pytsk3: Any, img: Any, label: str, start: int, length: int, found: _Found
    ) -> Volume | None:
        try:
            fs = pytsk3.FS_Info(img, offset=start)
        except (OSError, RuntimeError):
            return None
        name = fs_type_name(pytsk3, fs.info.ftype)
        volume = Volume(f"{label}({name})", start, length, name)
        tree = _Tree(pytsk3, fs, start, self.carve)
        try:
            tree.walk()
        except (OSError, RuntimeError) as exc:
            volume = replace(volume, error=f"directory tree read in part: {_text(exc)}")
            found.errors.append(f"{volume.label}: {volume.error}")
        size = int(fs.info.block_count) * int(fs.info.block_size)
        if start + size > found.size:
            found.errors.append(
                f"image truncated: the {name} file system of {volume.label} ends at byte "
                f"{start + size:,}, the media has {found.size:,} bytes"
            )
        content = _merge(tree.content)
        found.file_systems.append((volume, tree.entries, content))
        found.slack.extend(tree.slack)
        for a, b in _minus(start, min(start + size, found.size), content):
            found.gaps.append((volume.label, a, b))
        return volume

    def _parts(self, ef: EvidenceFile, found: _Found) -> list[EvidenceFile]:
        segments = tuple(found.segments)
        error = "; ".join(found.errors) or None
        extra = 0 if found.fmt == RAW else found.size  # the media is read once more
        head = ImagePart(IMAGE, found.fmt, segments, volumes=tuple(found.volumes), error=error)
        out = [replace(ef, size=ef.size + extra, part=head)]
        for volume, entries, _ in found.file_systems:
            chunk: list[TreeEntry] = []
            size = 0
            for entry in [*entries, None]:
                full = entry is None or (
                    chunk and (len(chunk) >= self.part_files or size + entry.size > self.part_bytes)
                )
                if full and chunk:
                    part = ImagePart(
                        FILES, found.fmt, segments, volume.label, volume.offset, tuple(chunk)
                    )
                    out.append(replace(ef, size=size, part=part))
                    chunk, size = [], 0
                if entry is not None:
                    chunk.append(entry)
                    size += entry.size
        if self.carve:
            out.extend(self._carve_parts(ef, found, segments))
        return out

    def _carve_parts(
        self, ef: EvidenceFile, found: _Found, segments: tuple[str, ...]
    ) -> Iterator[EvidenceFile]:
        slack = _merge(found.slack)
        by_label: dict[str, list[tuple[int, int]]] = {}
        for label, a, b in found.gaps:
            by_label.setdefault(label, []).append((a, min(b, found.size)))
        for label, gaps in by_label.items():
            chunks: list[list[tuple[int, int]]] = [[]]
            size = 0
            for a, b in _merge(gaps):
                if chunks[-1] and size + (b - a) > self.part_bytes:
                    chunks.append([])
                    size = 0
                chunks[-1].append((a, b))
                size += b - a
            for ranges in filter(None, chunks):
                inside = tuple(r for s, e in ranges for r in _intersect(s, e, slack))
                part = ImagePart(
                    CARVE, found.fmt, segments, label, ranges=tuple(ranges), slack=inside
                )
                yield replace(ef, size=sum(e - s for s, e in ranges), part=part)


def _intersect(start: int, end: int, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of the (merged, sorted) ``ranges`` inside ``[start, end)``."""
    return [(max(a, start), min(b, end)) for a, b in ranges if a < end and b > start]


def _text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
