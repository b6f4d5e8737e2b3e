"""Shareaza library files (``Library1.dat``, ``Library.dat``) built as Shareaza's published
source writes them (``CLibrary::Save``/``Serialize``, ``CLibraryFolder::Serialize``,
``CLibraryFile::Serialize``, ``CXMLElement::Serialize``, MFC ``CArchive``), for any library
version from 1 to 29, fields present or absent as that version's loader reads them.

Names, sizes and digests are benign stand-ins derived from counters. ``SAMPLES`` holds one
small valid artifact for the P2P contract test, keyed ``(client, artifact)``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SAMPLES",
    "ShareazaFile",
    "ShareazaFolder",
    "benign_file",
    "cstring",
    "filetime",
    "library",
    "sample_library",
    "write_sample",
]

_EPOCH = 116_444_736_000_000_000


def filetime(unix_seconds: int) -> int:
    return unix_seconds * 10_000_000 + _EPOCH


def _u8(n: int) -> bytes:
    return struct.pack("<B", n)


def _u16(n: int) -> bytes:
    return struct.pack("<H", n)


def _u32(n: int) -> bytes:
    return struct.pack("<I", n & 0xFFFFFFFF)


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def count(n: int) -> bytes:
    """``CArchive::WriteCount``."""
    return _u16(n) if n < 0xFFFF else _u16(0xFFFF) + _u32(n)


def cstring(text: str, *, wide: bool = True) -> bytes:
    """``operator<<(CArchive&, const CString&)``: a Unicode build marks UTF-16LE with
    0xFF 0xFFFE, then the length in characters (uint8, 0xFF+uint16, 0xFFFF+uint32)."""
    raw = text.encode("utf-16-le") if wide else text.encode("cp1252")
    n = len(raw) // 2 if wide else len(raw)
    head = b"\xff" + _u16(0xFFFE) if wide else b""
    if n < 0xFF:
        size = _u8(n)
    elif n < 0xFFFE:
        size = b"\xff" + _u16(n)
    else:
        size = b"\xff" + _u16(0xFFFF) + _u32(n)
    return head + size + raw


def _hash(digest: bytes | None) -> bytes:
    """``SerializeOut`` of a ``BasicValidation`` hash."""
    return _u32(0) if digest is None else _u32(1) + digest


def xml(name: str, attributes: dict[str, str], children: Sequence[bytes] = ()) -> bytes:
    out = cstring(name) + cstring("") + count(len(attributes))
    for key, value in attributes.items():
        out += cstring(key) + cstring(value)
    return out + count(len(children)) + b"".join(children)


@dataclass
class ShareazaFile:
    name: str
    size: int
    modified: int = 1_600_000_000  # Unix seconds
    index: int = 1
    shared: int = 0  # TRI_UNKNOWN
    virtual: tuple[int, int] | None = None  # (size, base)
    sha1: bytes | None = None
    tiger: bytes | None = None
    md5: bytes | None = None
    ed2k: bytes | None = None
    bth: bytes | None = None
    verify: int = 0
    schema: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    metadata_auto: bool = True
    rating: int = 0
    comments: str = ""
    share_tags: str = ""
    hits: int = 0
    uploads: int = 0
    bogus: bool = False
    sources: list[tuple[str, int]] = field(default_factory=list)  # (url, Unix seconds)

    def serialize(self, v: int) -> bytes:
        out = cstring(self.name) + _u32(self.index)
        out += _u64(self.size) if v >= 17 else _u32(self.size)
        out += _u64(filetime(self.modified))
        out += _u32(self.shared) if v >= 5 else _u8(1 if self.shared != 1 else 0)
        if v >= 21:
            vsize, vbase = self.virtual or (0, 0)
            out += _u64(vsize) + (_u64(vbase) if vsize else b"")
        out += _hash(self.sha1)
        if v >= 8:
            out += _hash(self.tiger)
        if v >= 11:
            out += _hash(self.md5) + _hash(self.ed2k)
        if v >= 26:
            out += _hash(self.bth)
        if v >= 4:
            out += _u32(self.verify)
        out += cstring(self.schema)
        if self.schema:
            if v < 27:
                out += _u32(int(self.metadata_auto))
                if not self.metadata_auto:
                    out += _u64(filetime(self.modified))
            out += xml("audio", self.metadata)
        if v >= 13:
            out += _u32(self.rating) + cstring(self.comments)
            if v >= 16:
                out += cstring(self.share_tags)
            if v >= 27:
                out += _u32(int(self.metadata_auto)) + _u64(filetime(self.modified))
            elif self.schema and self.metadata_auto and (self.rating or self.comments):
                out += _u64(filetime(self.modified))
        out += _u32(self.hits) + _u32(self.uploads)
        if v >= 14:
            out += _u32(0)
        if v >= 20:
            out += _u32(int(self.bogus))
        if v >= 2:
            out += count(len(self.sources))
            for url, seen in self.sources:
                out += cstring(url) + (_u64(filetime(seen)) if v >= 10 else _u32(seen))
        return out


@dataclass
class ShareazaFolder:
    path: str
    files: list[ShareazaFile] = field(default_factory=list)
    folders: list[ShareazaFolder] = field(default_factory=list)
    shared: int = 2  # TRI_TRUE

    def serialize(self, v: int) -> bytes:
        out = cstring(self.path)
        out += _u32(self.shared) if v >= 5 else _u8(1)
        if v >= 3:
            out += _u32(1)  # expanded
        out += count(len(self.folders)) + b"".join(f.serialize(v) for f in self.folders)
        return out + count(len(self.files)) + b"".join(f.serialize(v) for f in self.files)


def library(
    folders: Sequence[ShareazaFolder],
    *,
    version: int = 29,
    saved: int | None = 1_700_000_000,
    folder_count: int | None = None,
) -> bytes:
    """A library file: with ``saved`` the ``Library1.dat`` layout (the save's FILETIME
    first), without it ``Library.dat``'s. Then version, dictionary and map sizes, the
    physical folders and an empty album root (``CAlbumFolder``: not read by hashwatch)."""
    out = b"" if saved is None else _u64(filetime(saved))
    out += _u32(version)
    if version >= 29:
        out += _u32(12)
    out += _u32(100)
    if version >= 28:
        out += _u32(3) + _u32(3) + _u32(3)
    n = len(folders) if folder_count is None else folder_count
    out += count(n) + b"".join(f.serialize(version) for f in folders)
    return out + b"\x00" * 16  # stands in for the album tree and the history after it


def benign_file(n: int) -> ShareazaFile:
    data = f"benign-shareaza-{n}".encode()
    return ShareazaFile(
        name=f"holiday-{n:03d}.jpg",
        size=10_000 + n,
        modified=1_600_000_000 + n,
        index=n + 1,
        sha1=hashlib.sha1(data).digest(),
        tiger=hashlib.blake2b(data, digest_size=24).digest(),
        md5=hashlib.md5(data).digest(),
        ed2k=hashlib.md5(b"ed2k-" + data).digest(),
        bth=hashlib.sha1(b"bth-" + data).digest() if n % 2 else None,
        schema="http://www.limewire.com/schemas/image.xsd" if n == 0 else "",
        metadata={"width": "640", "height": "480"} if n == 0 else {},
        rating=3 if n == 1 else 0,
        comments="family trip" if n == 1 else "",
        hits=5 * n,
        uploads=n,
        sources=[(f"http://192.0.2.{n}:6346/uri-res/N2R?x", 1_650_000_000)] if n == 2 else [],
    )


def sample_library(version: int = 29, *, saved: int | None = 1_700_000_000) -> bytes:
    inner = ShareazaFolder(r"C:\Users\owner\Downloads\Shareaza\Collection", [benign_file(2)])
    top = ShareazaFolder(
        r"C:\Users\owner\Downloads\Shareaza",
        [benign_file(0), benign_file(1)],
        [inner],
    )
    return library([top], version=version, saved=saved)


SAMPLES: dict[tuple[str, str], Callable[[], bytes]] = {
    ("shareaza", "library.dat"): sample_library,
}


def write_sample(directory: Path, key: tuple[str, str]) -> Path:
    """The sample for ``key`` written under its usual file name."""
    path = directory / "Library1.dat"
    path.write_bytes(SAMPLES[key]())
    return path
