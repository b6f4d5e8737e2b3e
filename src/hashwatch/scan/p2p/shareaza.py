"""Shareaza's library: ``Library1.dat`` / ``Library2.dat`` (written alternately; the newer is
loaded) and the older single ``Library.dat``: every file of every shared folder, with the
hashes Shareaza computed (SHA-1, Tiger tree root, MD5, ED2K, BitTorrent info hash), kept
after the files are gone until the library is rescanned.

Layout as Shareaza's published source reads it (``Library.cpp`` ``CLibrary::Load`` and
``Serialize``, ``LibraryDictionary.cpp``, ``LibraryMaps.cpp`` ``Serialize1``,
``LibraryFolders.cpp``, ``SharedFolder.cpp`` ``CLibraryFolder::Serialize``,
``SharedFile.cpp`` ``CLibraryFile::Serialize`` and ``CSharedSource::Serialize``, ``XML.cpp``,
``Hashes/Compatibility.hpp``; checked against ivan386/Shareaza at 0c2f2f56c, whose loader
reads every library version from 1 to 29, the last it writes). MFC ``CArchive``, all integers
little-endian:

* ``Library1.dat``/``Library2.dat`` start with the FILETIME of the save (8 bytes);
  ``Library.dat`` has none. Then int32 version (1-29).
* version >= 29: uint32 word count (the dictionary); uint32 next file index; version >= 28:
  three uint32 map sizes. Then a count (``ReadCount``: uint16, 0xFFFF then uint32) of
  physical folders, each a folder as below (the album tree that follows is not read: it
  holds no file of its own).
* folder: string path (the whole path), shared (int32 tristate; version < 5: one byte),
  version >= 3 int32 expanded, count and sub-folders, count and files.
* file: string name, uint32 index, size (uint64; version < 17: uint32), FILETIME last
  modified, shared (as the folder's), version >= 21 uint64 virtual size and, when not 0,
  uint64 virtual base; hashes, each a uint32 "valid" flag and, when set, the digest: SHA-1
  (20), version >= 8 Tiger (24), version >= 11 MD5 (16) and ED2K (16), version >= 26 BTH
  (20); version >= 4 int32 verify; string schema URI and, when not empty, (version < 27:
  int32 metadata-auto and, when 0, a FILETIME) the metadata XML element; version >= 13:
  int32 rating, string comments, version >= 16 string share tags, then version >= 27 int32
  metadata-auto and a FILETIME (older: the FILETIME only when metadata-auto and rated or
  commented); uint32 hits, uint32 uploads, version >= 14 int32 cached preview, version >= 20
  int32 bogus; version >= 2 a count of sources, each a string URL and a FILETIME (version <
  10: a uint32).
* XML element: string name, string value, count and attributes (string name, string value),
  count and elements.
* string (``AfxReadStringLength``): uint8 length, 0xFF then uint16, 0xFFFF then uint32; a
  uint16 0xFFFE after the first 0xFF marks UTF-16LE and the length starts again; otherwise
  the bytes are the writer's code page (UTF-8 where valid, else Windows-1252).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, BinaryIO

from hashwatch.scan.p2p._cursor import Cursor, Malformed, Truncated, iso_utc
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord

__all__ = ["READERS", "ShareazaLibraryReader", "filetime_iso"]

MAX_VERSION = 29  # the last library version Shareaza's source writes
MAX_DEPTH = 256  # nested folders deeper than this are damage
MAX_XML_DEPTH = 32
MAX_STRING = 1 << 20  # characters
MAX_COUNT = 50_000_000
_KEPT_ATTRIBUTES = 16  # metadata attributes kept in a record's details
_KEPT_SOURCES = 20
_KEPT_TEXT = 300
_NAMES = ("library1.dat", "library2.dat", "library.dat")
_TRISTATE = {0: "unknown", 1: "false", 2: "true"}
_FILETIME_EPOCH = 116_444_736_000_000_000  # 1601-01-01 to 1970-01-01 in 100 ns


def filetime_iso(value: int) -> str | None:
    """A Windows FILETIME (100 ns since 1601) as ISO-8601 UTC; None for 0 or out of range."""
    if value <= _FILETIME_EPOCH:
        return None
    return iso_utc((value - _FILETIME_EPOCH) // 10_000_000)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


class _Archive:
    """MFC ``CArchive`` values over a :class:`Cursor`, bounded against the artifact's size."""

    def __init__(self, cur: Cursor, version: int, size: int | None) -> None:
        self.cur = cur
        self.version = version
        self.size = size

    def i32(self) -> int:
        value = self.cur.u32()
        return value - (1 << 32) if value & 0x80000000 else value

    def count(self, what: str, least: int) -> int:
        """``CArchive::ReadCount``, refused when ``count * least`` bytes cannot follow."""
        n = self.cur.u16()
        if n == 0xFFFF:
            n = self.cur.u32()
            if n == 0xFFFFFFFF:
                n = self.cur.u64()
        if n > MAX_COUNT or (self.size is not None and n * least > self.size - self.cur.offset):
            raise Malformed(f"a count of {n:,} {what} that the artifact cannot hold")
        return n

    def string(self) -> str:
        n = self.cur.u8()
        wide = False
        if n == 0xFF:
            n = self.cur.u16()
            if n == 0xFFFE:
                wide = True
                n = self.cur.u8()
                if n == 0xFF:
                    n = self.cur.u16()
            if n == 0xFFFF:
                n = self.cur.u32()
        if n > MAX_STRING:
            raise Malformed(f"a string of {n:,} characters (more than {MAX_STRING:,})")
        if wide:
            return self.cur.take(2 * n).decode("utf-16-le", errors="replace")
        return _text(self.cur.take(n))

    def filetime(self) -> str | None:
        return filetime_iso(self.cur.u64())

    def tristate(self) -> str:
        if self.version >= 5:
            return _TRISTATE.get(self.i32(), "unknown")
        return "unknown" if self.cur.u8() else "false"

    def digest(self, length: int) -> bytes | None:
        """A ``BasicValidation`` hash: uint32 valid, then the digest when valid."""
        if self.cur.u32() == 0:
            return None
        return self.cur.take(length)

    def xml(self, depth: int, keep: dict[str, str] | None) -> None:
        """A ``CXMLElement``; the root's attributes go into ``keep`` (bounded)."""
        if depth > MAX_XML_DEPTH:
            raise Malformed(f"metadata nested more than {MAX_XML_DEPTH} deep")
        self.string()
        self.string()
        for _ in range(self.count("metadata attributes", 2)):
            name, value = self.string(), self.string()
            if keep is not None and len(keep) < _KEPT_ATTRIBUTES and name:
                keep[name[:64]] = value[:_KEPT_TEXT]
        for _ in range(self.count("metadata elements", 4)):
            self.xml(depth + 1, None)


def _plausible(head: bytes, start: int) -> bool:
    """Whether ``head`` starts (at ``start``) as a library: a known version, then, past the
    dictionary and map counts, at least one folder whose path has a drive or a separator."""
    if len(head) < start + 4:
        return False
    version = int.from_bytes(head[start : start + 4], "little", signed=True)
    if start and MAX_VERSION < version < 100:
        return True  # Library1/2.dat of a later version: read, to say it is not read
    if not 1 <= version <= MAX_VERSION:
        return False
    p = start + 4 + (4 if version >= 29 else 0) + 4 + (12 if version >= 28 else 0)
    folders = int.from_bytes(head[p : p + 2], "little")
    p += 2
    if folders == 0 or len(head) < p + 4:
        return False
    if head[p : p + 3] == b"\xff\xfe\xff":  # a UTF-16 string
        n = head[p + 3]
        if n == 0xFF:
            return True  # a path of 255 characters or more: its length is a uint16
        path = head[p + 4 : p + 4 + 2 * min(n, 64)].decode("utf-16-le", errors="replace")
    else:
        n = head[p]
        path = head[p + 1 : p + 1 + min(n, 64)].decode("latin-1")
    return n > 0 and any(mark in path for mark in (":\\", "\\\\", "/"))


class ShareazaLibraryReader(P2PArtifactReader):
    """Shareaza's library (``Library1.dat``, ``Library2.dat``, ``Library.dat``)."""

    client = "shareaza"
    artifact = "library.dat"

    def recognises(self, name: str, head: bytes) -> bool:
        """By name, and by a head that reads as a library: a version from 1 to 29 and a first
        shared folder whose path looks like one (``Library.dat`` is a common name)."""
        lower = name.lower()
        if lower not in _NAMES:
            return False
        start = 0 if lower == "library.dat" else 8
        return _plausible(head, start)

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        cur = Cursor(stream)
        saved: str | None = None
        head = cur.peek(12)
        # Library1/2.dat start with the save time; Library.dat with the version.
        first = int.from_bytes(head[:4], "little", signed=True)
        try:
            if not 1 <= first <= MAX_VERSION:
                saved = filetime_iso(cur.u64())
            version = int.from_bytes(cur.take(4), "little", signed=True)
        except Truncated:
            yield self.problem(cur.offset, "the artifact ends inside its header")
            return
        if not 1 <= version <= MAX_VERSION:
            yield self.problem(
                cur.offset - 4, f"library version {version} is not one read (1-{MAX_VERSION})"
            )
            return
        ar = _Archive(cur, version, size)
        state = _State(self, ar, saved)
        try:
            if version >= 29:
                cur.u32()  # words in the dictionary
            cur.u32()  # the next file index
            if version >= 28:
                cur.skip(12)  # sizes of the index, name and path maps
            for _ in range(ar.count("folders", 6)):
                yield from state.folder(0)
        except (Truncated, Malformed) as exc:
            at = f"file record {state.index}" if state.in_file else "a folder"
            yield self.problem(state.start, f"{at}: {exc}", state.index if state.in_file else None)


class _State:
    """Walks the folder tree, numbering the files as they come."""

    def __init__(self, reader: ShareazaLibraryReader, ar: _Archive, saved: str | None) -> None:
        self.reader = reader
        self.ar = ar
        self.saved = saved
        self.index = 0
        self.start = 0
        self.in_file = False

    def folder(self, depth: int) -> Iterator[P2PRecord]:
        if depth >= MAX_DEPTH:
            raise Malformed(f"folders nested more than {MAX_DEPTH} deep")
        ar = self.ar
        self.start = ar.cur.offset
        path = ar.string()
        shared = ar.tristate()
        if ar.version >= 3:
            ar.i32()  # expanded in the tree view
        for _ in range(ar.count("folders", 6)):
            yield from self.folder(depth + 1)
        for _ in range(ar.count("files", 30)):
            self.start = ar.cur.offset
            self.in_file = True
            yield self.file(path, shared)
            self.in_file = False
            self.index += 1

    def file(self, folder: str, folder_shared: str) -> P2PRecord:
        ar, v = self.ar, self.ar.version
        name = ar.string()
        ar.cur.u32()  # the library's own file index
        size = ar.cur.u64() if v >= 17 else ar.cur.u32()
        modified = ar.filetime()
        details: dict[str, Any] = {"shared": ar.tristate(), "folder_shared": folder_shared}
        if v >= 21:
            virtual = ar.cur.u64()
            if virtual:
                details.update(virtual_size=virtual, virtual_base=ar.cur.u64())
        hashes: dict[str, str] = {}
        sha1 = ar.digest(20)
        if sha1 is not None:
            hashes["sha1_base32"] = base64.b32encode(sha1).decode("ascii")
        if v >= 8:
            tiger = ar.digest(24)
            if tiger is not None:
                hashes["tth"] = base64.b32encode(tiger).decode("ascii").rstrip("=")
        if v >= 11:
            md5, ed2k = ar.digest(16), ar.digest(16)
            if md5 is not None:
                hashes["md5"] = md5.hex()
            if ed2k is not None:
                hashes["ed2k"] = ed2k.hex()
        if v >= 26:
            bth = ar.digest(20)
            if bth is not None:
                hashes["btih"] = bth.hex()
        if v >= 4:
            details["verify"] = _TRISTATE.get(ar.i32(), "unknown")
        self._metadata(details)
        hits, uploads = ar.cur.u32(), ar.cur.u32()
        details.update(hits_total=hits, uploads_total=uploads)
        if v >= 14:
            ar.i32()  # a preview is cached
        if v >= 20:
            details["bogus"] = ar.i32() != 0
        if v >= 2:
            sources: list[dict[str, str | None]] = []
            for _ in range(ar.count("sources", 5)):
                url = ar.string()
                seen = ar.filetime() if v >= 10 else None
                if v < 10:
                    ar.cur.u32()  # an old time stamp, not a FILETIME
                if len(sources) < _KEPT_SOURCES:
                    sources.append({"url": url[:_KEPT_TEXT], "last_seen": seen})
            if sources:
                details["sources"] = sources
        dates = {"file_modified": modified} if modified else {}
        if self.saved:
            details["library_saved"] = self.saved
        return P2PRecord(
            client=self.reader.client,
            artifact=self.reader.artifact,
            index=self.index,
            name=name,
            size=size,
            hashes=hashes,
            dates=dates,
            complete=True,
            save_path=folder,
            details=details,
        )

    def _metadata(self, details: dict[str, Any]) -> None:
        """Schema URI, metadata, rating, comments, share tags (in their version's order)."""
        ar, v = self.ar, self.ar.version
        uri = ar.string()
        auto = False
        if uri:
            if v < 27:
                auto = ar.i32() != 0
                if not auto:
                    ar.cur.skip(8)  # the metadata's time
            attributes: dict[str, str] = {}
            ar.xml(0, attributes)
            details["schema"] = uri[:_KEPT_TEXT]
            if attributes:
                details["metadata"] = attributes
        if v >= 13:
            rating = ar.i32()
            comments = ar.string()
            tags = ar.string() if v >= 16 else ""
            if v >= 27:
                ar.i32()
                ar.cur.skip(8)
            elif auto and (rating or comments):
                ar.cur.skip(8)
            if rating:
                details["rating"] = rating
            if comments:
                details["comments"] = comments[:_KEPT_TEXT]
            if tags:
                details["share_tags"] = tags[:_KEPT_TEXT]


READERS: tuple[P2PArtifactReader, ...] = (ShareazaLibraryReader(),)
