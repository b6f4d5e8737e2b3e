"""Archives read in place, nested to any depth: zip, tar (plain, gz, bz2, xz), 7z, lone gz/bz2/xz.

Evidence is never extracted: members are streamed from the archive into the caller's
``handle`` (where hashing happens), small nested archives are held in memory, nothing is ever
written to disk, not even to a temporary file. The type of a file is decided from its content
(magic bytes), never from its name: a zip renamed ``.jpg`` is expanded, a JPEG named ``.dll``
is hashed as the image it is.

Hostile archives are expected. Every byte that comes out of a decompressor is counted as it
streams (declared sizes can lie) against the :class:`ArchiveLimits`; crossing one stops that
member, or the whole evidence file for the total, with an error that says which limit. Member
names are never used as file-system paths; odd ones are shown escaped and flagged. A corrupt or
truncated archive keeps the members read before the fault and reports the rest as one error on
the archive. No exception escapes :func:`expand_evidence`.

Decisions:
- A lone ``.gz``/``.bz2``/``.xz`` that is not a tar is a container of one member, named after
  the container without its compression suffix (``notes.txt.gz!/notes.txt``); where the name
  has no such suffix, ``~`` is appended (``blob!/blob~``), as 7-Zip does.
- An unsafe member name (absolute, drive letter, ``..`` component, control or format
  characters) is still read and hashed; :attr:`Expanded.note` says ``unsafe member name``.
  Control and format characters are escaped in display paths (``\\x1b``, ``\\u202e``;
  undecodable bytes as ``\\xNN``), so JSON and HTML reports show them without acting on them.
  A name seen twice in one archive gets `` [#n]`` appended (n: its position in the archive),
  so every display path of one evidence file is unique.
- A nested archive is held in memory when it fits (``max_in_memory``, counted over the whole
  nesting stack), hashed and expanded from the same bytes. A larger one is re-opened where the
  format allows (zip members, tar members and gz/bz2/xz content over a seekable source) and
  otherwise reported "nested archive too large to expand in memory" (its digests still come).
- A zip whose central directory is lost (truncated, carved) is read from its local headers
  up to the damage. Directories get no record (no content); links, special files and
  encrypted members get one with an error and no ``handle`` call.
- An archive's own record comes after its members' (post-order): it carries the error found
  while reading them. The order of records for one evidence file is therefore deterministic.

The counted streams and the 7z thread bridge live in :mod:`hashwatch.scan._archive_io`.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, Generic, TypeVar, cast

from hashwatch.scan._archive_io import (
    CHUNK,
    ArchiveLimits,
    Bridge,
    Budget,
    Source,
    Stop,
    TarGuard,
    buffered,
    describe,
    human,
    local_zip_entries,
)
from hashwatch.scan._archive_names import (
    iso_time,
    safe_display,
    single_name,
    unsafe_name,
    zip_mtime,
)
from hashwatch.scan.archive_parts import ArchivePart
from hashwatch.scan.model import ARCHIVE_SEPARATOR
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.digests import open_evidence

__all__ = [
    "ArchiveLimits",
    "ArchiveReader",
    "Expanded",
    "Handle",
    "Member",
    "expand_evidence",
    "expand_member",
    "safe_display",
    "sniff_archive",
]

R = TypeVar("R")
HEAD_SIZE = 512  # enough for every magic (tar: "ustar" at 257)
_BZ2_BLOCKS = (b"1AY&SY", b"\x17rE8P\x90")  # a block, or the end of an empty stream
_COMPRESSIONS = ("gz", "bz2", "xz")


def _decompressor(kind: str, f: BinaryIO) -> BinaryIO:
    """A streaming decompressor over ``f``: reads it in small blocks, seeks by rewinding."""
    if kind == "gz":
        return cast(BinaryIO, gzip.GzipFile(fileobj=f, mode="rb"))
    if kind == "bz2":
        return cast(BinaryIO, bz2.BZ2File(f))
    return cast(BinaryIO, lzma.LZMAFile(f))


@dataclass(frozen=True)
class Expanded(Generic[R]):
    """What :func:`expand_evidence` yields for the file itself and for every member in it."""

    display_path: str  # outer.zip!/inner.tar.gz!/dir/file.jpg, control characters escaped
    size: int | None  # declared (archive entry) or from the file system
    mtime: str | None  # ISO-8601; UTC ("Z") except zip DOS times, whose zone is unknown
    result: R | None  # what ``handle`` returned; None where it was not called
    is_archive: bool = False
    kind: str | None = None  # "zip", "tar.gz", ... where is_archive
    error: str | None = None
    note: str | None = None  # e.g. "unsafe member name": read and hashed all the same
    depth: int = 0  # 0: the evidence file, 1: its members, ...


def _is_tar(head: bytes) -> bool:
    return head[257:262] == b"ustar"


def sniff_archive(head: bytes) -> str | None:
    """The archive type of content starting with ``head`` (512 bytes suffice), or None.

    "zip", "tar", "7z"; for compressed content "tar.gz"/"tar.bz2"/"tar.xz" where the head
    decompresses far enough to show a tar header, else "gz"/"bz2"/"xz" (bzip2 needs a whole
    block: :class:`ArchiveReader` decides tar or single member once it decompresses). Old
    (pre-POSIX) tars have no magic and are not recognised.
    """
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    kind = None
    if head[:3] == b"\x1f\x8b\x08" and len(head) > 3 and not head[3] & 0xE0:
        kind = "gz"
    elif head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in _BZ2_BLOCKS:
        kind = "bz2"
    elif head[:6] == b"\xfd7zXZ\x00":
        kind = "xz"
    if kind is None:
        return "tar" if _is_tar(head) else None
    try:
        with _decompressor(kind, io.BytesIO(head)) as peek:
            inner = peek.read(HEAD_SIZE)
    except (OSError, EOFError, lzma.LZMAError):
        return kind  # the head was too short to tell, or it is corrupt: expansion will say
    return f"tar.{kind}" if _is_tar(inner) else kind


@dataclass
class Member:
    """One entry of an archive. Its content can be opened once, until the iteration advances."""

    display_path: str
    size: int | None = None
    mtime: str | None = None
    is_dir: bool = False
    is_symlink: bool = False
    error: str | None = None  # set: the content will not be read (link, encrypted, ...)
    note: str | None = None
    source: Callable[[], Source] | None = field(default=None, repr=False)
    reopen: Callable[[], Source] | None = field(default=None, repr=False)  # random access
    reopen_cheap: bool = field(default=False, repr=False)  # reading again costs no decoding

    def open(self) -> BinaryIO:
        """The content as a stream (read it before advancing the iteration)."""
        if self.source is None:
            raise Stop(self.error or "no content")
        return buffered(self.source())


def _overlapping(zf: zipfile.ZipFile) -> set[int]:
    """Local header offsets of entries whose data runs into another entry (or share one):
    how a few KB expand to terabytes without any one member having a suspicious ratio."""
    starts = sorted(i.header_offset for i in zf.infolist())
    ends = [*starts[1:], getattr(zf, "start_dir", 1 << 62)]
    sizes = {i.header_offset: i.compress_size for i in zf.infolist()}
    return {a for a, b in zip(starts, ends, strict=True) if a == b or a + 30 + sizes[a] > b}


_Members = Generator[Member, None, None]


def _stop_after_bomb(opened: list[Source]) -> None:
    for source in opened:
        if source.error is not None and source.error.startswith("zip bomb"):
            raise Stop(source.error)


class ArchiveReader:
    """The members of one archive in archive order; ``error`` says why the listing stopped.

    ``stream`` must be seekable for zip and 7z (tar and compressed content may stream).
    ``kind`` comes from :func:`sniff_archive`; "gz"/"bz2"/"xz" is refined to "tar.gz"/...
    when the content is a tar. ``size`` is the archive's own size (the compressed size of
    gz/bz2/xz content, for the ratio limit); ``cheap_seek`` says that re-reading ``stream``
    costs no decompression (a file, bytes in memory). Directories are listed (``is_dir``)
    with no content; a member's content is valid only until the next member is asked for.
    ``span`` ``(first, last)``: only members ``[first, last)`` are given (a part of a split
    zip), named and limited as in the whole listing (duplicate names, member count).
    """

    def __init__(
        self,
        stream: BinaryIO,
        display_path: str,
        kind: str,
        limits: ArchiveLimits | None = None,
        *,
        size: int | None = None,
        cheap_seek: bool = False,
        budget: Budget | None = None,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.stream, self.display_path, self.kind = stream, display_path, kind
        self.span = span
        self.limits = limits or ArchiveLimits()
        self.size, self.cheap_seek = size, cheap_seek or isinstance(stream, io.BytesIO)
        self.budget = budget or Budget(self.limits, size or 0)
        self.error: str | None = None
        self._prefix = display_path + ARCHIVE_SEPARATOR

    def __iter__(self) -> Iterator[Member]:
        count = 0
        seen: set[str] = set()
        members = self._members()
        try:
            for member in members:
                count += 1
                if count > self.limits.max_members:
                    self.error = f"too many members: more than {self.limits.max_members}"
                    return
                if member.display_path in seen:
                    member.display_path += f" [#{count}]"
                    member.note = member.note or "duplicate member name"
                seen.add(member.display_path)
                if self.span is not None and count <= self.span[0]:
                    continue  # before the part: only named, never opened
                if self.span is not None and count > self.span[1]:
                    return
                yield member
                if self.budget.error is not None:
                    self.error = self.budget.error
                    return
        except Stop as exc:
            self.error = str(exc)
        except Exception as exc:  # the archive is corrupt past the members given so far
            done = f" after {count} members" if count else ""
            self.error = f"corrupt archive{done}: {describe(exc)}"
        finally:
            members.close()

    def _member(self, name: str, **kwargs: Any) -> Member:
        note = "unsafe member name" if unsafe_name(name) else None
        return Member(self._prefix + safe_display(name), note=note, **kwargs)

    def _source(self, inner: BinaryIO, **kwargs: Any) -> Source:
        return Source(inner, self.budget, self.limits, **kwargs)

    def _members(self) -> _Members:
        if self.kind == "zip":
            return self._zip(self.stream)
        if self.kind == "tar":
            return self._tar(self.stream, self.cheap_seek)
        if self.kind == "7z":
            return self._7z(self.stream)
        if self.kind.removeprefix("tar.") in _COMPRESSIONS:
            return self._compressed(self.stream, self.kind.removeprefix("tar."))
        raise ValueError(f"not an archive type: {self.kind!r}")

    def _zip(self, stream: BinaryIO) -> _Members:
        try:
            zf = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as exc:  # no central directory: read the local headers
            yield from self._zip_local(stream)
            message = f"corrupt archive: {describe(exc)} (members read from local headers)"
            raise Stop(message) from None
        with zf:
            overlapping = _overlapping(zf)
            for info in zf.infolist():
                mode = info.external_attr >> 16 if info.create_system == 3 else 0
                fmt = stat.S_IFMT(mode)
                member = self._member(
                    info.filename,
                    size=info.file_size,
                    mtime=zip_mtime(info),
                    is_dir=info.is_dir() and info.file_size == 0,
                    is_symlink=fmt == stat.S_IFLNK,
                )
                if info.flag_bits & 0x41:  # traditional or strong encryption
                    member.error = "encrypted member"
                elif info.header_offset in overlapping:
                    member.error = "zip bomb: member data overlaps another member"
                elif member.is_symlink:
                    member.error = "symbolic link not followed"
                elif fmt not in (0, stat.S_IFREG, stat.S_IFDIR):
                    member.error = "special file not read"
                elif not member.is_dir:

                    def opener(info: zipfile.ZipInfo = info) -> Source:
                        inner = cast(BinaryIO, zf.open(info))
                        return self._source(inner, packed=info.compress_size)

                    member.source = member.reopen = opener
                    stored = info.compress_type == zipfile.ZIP_STORED
                    member.reopen_cheap = self.cheap_seek and stored
                yield member

    def _zip_local(self, stream: BinaryIO) -> _Members:
        for entry in local_zip_entries(stream, self.budget):
            try:
                mtime: str | None = datetime(*entry.date_time).isoformat()
            except ValueError:
                mtime = None
            member = self._member(entry.name, size=entry.size, mtime=mtime)
            member.is_dir = entry.name.endswith("/") and not entry.size
            opened: list[Source] = []
            if entry.encrypted:
                member.error = "encrypted member"
            elif entry.stream is None:
                member.error = "compression method not read in a damaged zip"
            elif not member.is_dir:

                def opener(entry: Any = entry, opened: Any = opened) -> Source:
                    packed = self.size if entry.packed is None else entry.packed
                    source = self._source(entry.stream, packed=packed)
                    opened.append(source)
                    return source

                member.source = opener
            yield member
            _stop_after_bomb(opened)  # a stream without sizes cannot skip a bomb

    def _tar(self, stream: BinaryIO, cheap: bool) -> _Members:
        seekable, guard = stream.seekable(), cast(Any, TarGuard(stream))
        mode = "r:" if seekable else "r|"
        with tarfile.open(fileobj=guard, mode=mode) as tf:  # type: ignore[call-overload]
            while (info := tf.next()) is not None:
                tf.members.clear()  # tarfile keeps every header: not with a million members
                member = self._member(info.name, size=info.size, mtime=iso_time(info.mtime))
                if info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:

                    def opener(info: tarfile.TarInfo = info, tf: Any = tf) -> Source:
                        return self._source(tf.extractfile(info), charge=False)

                    member.source = opener
                    member.reopen = opener if seekable else None
                    member.reopen_cheap = cheap
                elif info.isdir():
                    member.is_dir, member.size = True, None
                elif info.issym():
                    member.is_symlink, member.error = True, "symbolic link not followed"
                elif info.islnk():
                    member.error = "hard link not followed (its target is hashed as itself)"
                else:
                    member.error = "special file not read"
                yield member

    def _compressed(self, stream: BinaryIO, kind: str) -> _Members:
        def layer() -> Source:
            return self._source(_decompressor(kind, stream), packed=self.size)

        first = layer()
        if _is_tar(first.head(HEAD_SIZE)):
            self.kind = f"tar.{kind}"
            yield from self._tar(buffered(first), cheap=False)
            return
        self.kind = kind

        def again() -> Source:
            stream.seek(0)
            return layer()

        member = Member(self._prefix + single_name(self.display_path), source=lambda: first)
        member.reopen = again if stream.seekable() else None
        yield member

    def _7z(self, stream: BinaryIO) -> _Members:
        # py7zr decompresses min(member size, 128 MB) per step, held twice while it slices:
        # one read block per step keeps a 7z bomb, or a large video, in constant memory.
        import py7zr  # only a 7z archive loads py7zr and its codecs

        from hashwatch.scan._7z_sink import Sink

        cast(Any, py7zr.py7zr).get_memory_limit = lambda: CHUNK
        try:
            archive = py7zr.SevenZipFile(cast(Any, stream), mode="r")
        except py7zr.PasswordRequired:
            raise Stop("encrypted archive") from None
        with archive:
            # py7zr's public extract() checks names against the disk and refuses "../x" for
            # the whole archive; its worker is given a Sink per member instead (no path used).
            worker: Any = archive.worker
            files: list[Any] = list(archive.files)
            if archive.needs_password():
                yield from self._7z_members(files, None)
                return
            bridge = Bridge()
            for f in files:
                worker.register_filelike(f.id, Sink(bridge, f))
            bridge.start(lambda: worker.extract(archive.fp, None, parallel=False))
            try:
                yield from self._7z_members(bridge, bridge)
            finally:
                bridge.stop()

    def _7z_members(self, entries: Iterator[Any] | list[Any], bridge: Bridge | None) -> _Members:
        for f in entries:
            fmt = stat.S_IFMT(f.posix_mode or 0)
            member = self._member(
                f.filename,
                size=None if f.is_directory else f.uncompressed,
                mtime=iso_time(f.lastwritetime.totimestamp()) if f.lastwritetime else None,
                is_dir=f.is_directory,
                is_symlink=f.is_symlink,
            )
            opened: list[Source] = []
            if bridge is None:
                member.error = None if f.is_directory else "encrypted member"
            elif f.is_symlink:
                member.error = "symbolic link not followed"
            elif f.is_socket or fmt not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
                member.error = "special file not read"
            elif not f.is_directory:

                def opener(packed: int | None = f.compressed, opened: Any = opened) -> Source:
                    source = self._source(cast(BinaryIO, bridge), packed=packed or self.size)
                    opened.append(source)
                    return source

                member.source = opener
            yield member
            _stop_after_bomb(opened)  # a solid stream cannot skip a bomb: stop the archive
            if bridge is not None:
                bridge.drain(self.budget)


Handle = Callable[[BinaryIO, str, int | None, str | None], R]


class _Expander(Generic[R]):
    """Walks one evidence file depth first: each item is handled, then expanded if an archive."""

    def __init__(self, handle: Handle[R], limits: ArchiveLimits, budget: Budget) -> None:
        self.handle, self.limits, self.budget = handle, limits, budget

    def call(self, source: Source, member: Member) -> tuple[R | None, str | None]:
        stream = cast(BinaryIO, source)  # full reads, like a buffered file, with no copy
        try:
            result = self.handle(stream, member.display_path, member.size, member.mtime)
        except Exception as exc:  # a handle that lets a read error through
            return None, source.error or f"cannot read: {describe(exc)}"
        finally:
            with contextlib.suppress(Exception):
                stream.close()
        return result, source.error

    def hold(self, source: Source, member: Member, depth: int) -> bytes | None:
        """The whole member, when it may be held in memory (to be hashed and expanded from
        the same bytes); None when it is larger, or cheap to read again from its archive."""
        budget = self.budget
        fits = member.size is None or member.size <= budget.memory_left
        if depth >= self.limits.max_depth or member.reopen_cheap or not fits:
            return None
        try:
            data = source.head(budget.memory_left + 1)
        except Stop:
            return None  # handle() meets the same error, and it is reported
        return data if len(data) <= budget.memory_left else None

    def expand(self, member: Member, depth: int) -> Iterator[Expanded[R]]:
        def record(result: R | None, error: str | None, kind: str | None = None) -> Expanded[R]:
            shown, size, mtime = member.display_path, member.size, member.mtime
            return Expanded(
                shown, size, mtime, result, kind is not None, kind, error, member.note, depth
            )

        if member.source is None:
            if not member.is_dir:
                yield record(None, member.error)
            return
        source: Source | None = None
        try:
            source = member.source()
            kind = sniff_archive(source.head(HEAD_SIZE))
        except Exception as exc:  # a member that cannot even be opened (bad local header)
            error = source.error if source is not None else None
            yield record(None, error or f"cannot read: {describe(exc)}")
            return
        if kind is None:
            yield record(*self.call(source, member))
            return
        data = self.hold(source, member, depth)
        result, error = self.call(source, member)
        container: BinaryIO | None = None
        if error is not None:
            pass
        elif depth >= self.limits.max_depth:
            error = f"archive nested deeper than {self.limits.max_depth}: not expanded"
        elif data is not None:
            container = io.BytesIO(data)
        elif member.reopen is not None:
            try:
                container = buffered(member.reopen())
            except Exception as exc:
                error = f"cannot read again: {describe(exc)}"
        else:
            error = "nested archive too large to expand in memory"
        if container is not None:
            size = len(data) if data is not None else member.size
            held = len(data) if data is not None else 0
            self.budget.memory_left -= held
            reader = ArchiveReader(
                container,
                member.display_path,
                kind,
                self.limits,
                size=size,
                cheap_seek=member.reopen_cheap,
                budget=self.budget,
            )
            try:
                for child in reader:
                    yield from self.expand(child, depth + 1)
            finally:
                self.budget.memory_left += held
            kind, error = reader.kind, reader.error
        yield record(result, error, kind)

    def part(self, top: Member, part: ArchivePart) -> Iterator[Expanded[R]]:
        """The members of one part of a split zip (:mod:`hashwatch.scan.archive_split`);
        the head part also reads the whole file once for the archive's own record, after its
        members, as :meth:`expand` does. Another part's listing error (its share of the
        budget spent, a corrupt directory) becomes a record of the part, ``zip [members ...]``.
        """
        assert top.reopen is not None
        reader = ArchiveReader(
            buffered(top.reopen()),
            top.display_path,
            "zip",
            self.limits,
            size=part.size,
            cheap_seek=True,
            budget=self.budget,
            span=(part.first, part.last),
        )
        for child in reader:
            yield from self.expand(child, 1)
        if not part.head:
            if reader.error is not None:
                shown = f"{top.display_path} {part.label}"
                yield Expanded(shown, None, top.mtime, None, error=reader.error)
            return
        assert top.source is not None
        result, error = self.call(top.source(), top)
        yield Expanded(
            top.display_path, top.size, top.mtime, result, True, "zip", error or reader.error
        )


class _ShareBudget(Budget):
    """A split zip's part's budget: its share of the archive's, and an error that says so."""

    def __init__(self, limits: ArchiveLimits, part: ArchivePart) -> None:
        super().__init__(limits, part.size)
        self.whole, self.limit = self.limit, part.budget
        self.members = f"{part.first + 1}-{part.last}"

    def charge(self, n: int) -> None:
        self.used += n
        if self.used > self.limit and self.error is None:
            self.error = (
                f"zip bomb: more than {human(self.limit)} uncompressed from members "
                f"{self.members}, their share of the {human(self.whole)} the file may give"
            )


def expand_evidence(
    ef: EvidenceFile, handle: Handle[R], limits: ArchiveLimits | None = None
) -> Iterator[Expanded[R]]:
    """Call ``handle(stream, display_path, size, mtime)`` on the evidence file and on every
    member of every archive in it, and yield one :class:`Expanded` per call (or per item that
    could not be read, ``result`` None). ``handle`` reads the stream once (to its end for
    digests); the stream is valid only during the call.

    Order: depth first in archive order, an archive's record after its members' (it carries
    their listing's error); the evidence file's record is last. Nothing raises: a file that
    cannot be opened, a corrupt archive, a crossed limit all become ``error``.
    """
    limits = limits or ArchiveLimits()
    shown, mtime = safe_display(ef.path), iso_time(ef.mtime_ns / 1e9)
    part = ef.archive_part  # a part of a split zip (hashwatch.scan.archive_split)

    def failed(error: str) -> Expanded[R]:
        if part is not None and not part.head:  # the head part reports the file itself
            return Expanded(f"{shown} {part.label}", None, mtime, None, error=error)
        return Expanded(shown, ef.size if part is None else part.size, mtime, None, error=error)

    if ef.error is not None:
        yield failed(ef.error)
        return
    try:
        # The walk said regular file; check again, since opening a FIFO would block.
        if not stat.S_ISREG(os.lstat(ef.path).st_mode):
            yield failed("not a regular file (changed since the walk)")
            return
        raw = open_evidence(ef.path)
    except OSError as exc:
        yield failed(f"cannot read: {exc.strerror or describe(exc)}")
        return
    budget = Budget(limits, ef.size) if part is None else _ShareBudget(limits, part)
    with raw:

        def opener() -> Source:
            raw.seek(0)
            return Source(raw, budget, limits, charge=False, owns=False)

        size = ef.size if part is None else part.size
        top = Member(shown, size, mtime, source=opener, reopen=opener, reopen_cheap=True)
        try:
            expander = _Expander(handle, limits, budget)
            if part is None:
                yield from expander.expand(top, 0)
            else:
                yield from expander.part(top, part)
        except Exception as exc:  # a bug, not the evidence: still never stop the scan
            yield failed(f"internal error while expanding: {describe(exc)}")


def expand_member(
    member: Member, handle: Handle[R], limits: ArchiveLimits | None = None, depth: int = 1
) -> Iterator[Expanded[R]]:
    """As :func:`expand_evidence`, for content that is not a file of the evidence's own file
    system (a file inside a disk image, a carved picture): ``member.source`` gives its bytes.
    Archives in it are expanded the same way; nothing raises."""
    limits = limits or ArchiveLimits()
    budget = Budget(limits, member.size or 0)
    try:
        yield from _Expander(handle, limits, budget).expand(member, depth)
    except Exception as exc:  # a bug, not the evidence: still never stop the scan
        error = f"internal error while expanding: {describe(exc)}"
        yield Expanded(member.display_path, member.size, member.mtime, None, error=error)
