"""eMule and aMule records: ``known.met``, ``*.part.met``, ``known2_64.met``, ``cancelled.met``
(eMule) and ``canceled.met`` (aMule).

Layouts as eMule's published source writes them (``opcodes.h``, ``packets.cpp`` ``CTag``,
``KnownFile.cpp``, ``PartFile.cpp``, ``KnownFileList.cpp``, ``SHAHashSet.cpp``) and aMule's
(``CanceledFileList.cpp``); all integers little-endian:

* ``known.met``: header byte 0x0E (0x0F: 64-bit tags present), uint32 record count, then per
  record: uint32 date (the file's last modification, Unix seconds), the 16-byte ED2K hash, uint16
  part-hash count and that many 16-byte MD4 part hashes, uint32 tag count and the tags.
* a tag: a type byte; with its 0x80 bit set, one name-id byte follows; otherwise a uint16 name
  length and the name (a length of 1 is a name id). Then the value by type: 0x01 hash (16 bytes),
  0x02 string (uint16 length), 0x03 uint32, 0x04 float, 0x05 bool (1 byte), 0x06 bool array
  (uint16 bit count, bits/8+1 bytes), 0x07 blob (uint32 length), 0x08 uint16, 0x09 uint8,
  0x0A bsob (uint8 length), 0x0B uint64, 0x11-0x20 a string of 1-16 bytes with no length.
  Strings starting with a UTF-8 byte-order mark are UTF-8; others are the writer's code page
  (read as UTF-8 where valid, else Windows-1252).
* ``*.part.met``: version byte 0xE0 (0xE2 with 64-bit sizes), then one record laid out as in
  ``known.met``; gaps are tags named 0x09+n (start) and 0x0A+n (end, exclusive).
* ``known2_64.met``: byte 0x02, then AICH hash sets: a 20-byte AICH root, uint32 count, count
  20-byte block hashes.
* ``cancelled.met``: byte 0x0F, version byte, uint32 seed, uint32 count, per record a 16-byte
  hash and a uint8 tag count and tags. With a seed the hash is MD5(seed as uint32 || ED2K), not
  the ED2K hash. The older layout (byte 0x0E) has no version or seed and holds the ED2K hash.
* aMule's ``canceled.met``: byte 0x21, uint32 count, count 16-byte ED2K hashes.

aMule writes ``known.met``, ``*.part.met`` and ``known2_64.met`` in eMule's layout; their records
say client ``emule`` (the format), and the artifact's path tells which program wrote it.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from hashwatch.scan.p2p._cursor import (
    Cursor,
    Malformed,
    Short,
    Truncated,
    iso_utc,
    parse_in_place,
)
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord

__all__ = [
    "READERS",
    "AmuleCanceledMetReader",
    "CancelledMetReader",
    "Known2MetReader",
    "KnownMetReader",
    "PartMetReader",
]

PARTSIZE = 9_728_000  # an ED2K part
MAX_TAGS = 10_000  # a record with more tags than this is damaged, not large
MAX_BLOB = 16 << 20
MAX_AICH_BLOCKS = 2_000_000  # eMule's largest file (256 GB) has ~1.4 million 180 KiB blocks
MAX_PART_MET = 64 << 20  # a part.met is one record; more than this is not one
_DETAIL_BYTES = 64  # bytes of an unknown binary tag kept (as hex) in the details

# Tag types (opcodes.h, TAGTYPE_*).
T_HASH, T_STRING, T_UINT32, T_FLOAT, T_BOOL, T_BOOLARRAY = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
T_BLOB, T_UINT16, T_UINT8, T_BSOB, T_UINT64 = 0x07, 0x08, 0x09, 0x0A, 0x0B
T_STR1, T_STR16 = 0x11, 0x20
_INT_TYPES = frozenset({T_UINT32, T_UINT16, T_UINT8, T_UINT64})

# Tag names (opcodes.h, FT_*).
FT_FILENAME, FT_FILESIZE, FT_LASTSEENCOMPLETE, FT_TRANSFERRED = 0x01, 0x02, 0x05, 0x08
FT_GAPSTART, FT_GAPEND, FT_STATUS, FT_FILESIZE_HI = 0x09, 0x0A, 0x14, 0x3A
FT_KADLASTPUBLISHSRC, FT_KADLASTPUBLISHNOTES, FT_AICH_HASH = 0x21, 0x26, 0x27
FT_LASTSHARED, FT_AICHHASHSET = 0x34, 0x35
FT_ATTRANSFERRED, FT_ATTRANSFERREDHI = 0x50, 0x54

_DATE_TAGS = {
    FT_LASTSEENCOMPLETE: "last_seen_complete",
    FT_LASTSHARED: "last_shared",
    FT_KADLASTPUBLISHSRC: "kad_published_sources",
    FT_KADLASTPUBLISHNOTES: "kad_published_notes",
}
_DETAIL_TAGS = {
    0x03: "file_type",
    0x04: "file_format",
    FT_TRANSFERRED: "transferred",
    0x0B: "description",
    0x12: "part_file_name",
    0x15: "sources",
    0x16: "permissions",
    0x18: "download_priority",
    0x19: "upload_priority",
    0x1A: "compression_gain",
    0x1B: "corruption_loss",
    0x20: "kad_last_publish_key",
    0x22: "flags",
    0x23: "download_active_seconds",
    0x24: "corrupted_parts",
    0x25: "preview",
    0x30: "complete_sources",
    0x51: "all_time_requests",
    0x52: "all_time_accepted",
    0x53: "category",
    0x55: "max_sources",
    0xD0: "media_artist",
    0xD1: "media_album",
    0xD2: "media_title",
    0xD3: "media_length",
    0xD4: "media_bitrate",
    0xD5: "media_codec",
    0xF6: "comment",
    0xF7: "rating",
}
_BASE32 = re.compile(r"[A-Z2-7]{32}")


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")


def text(raw: bytes) -> str:
    """An eMule string: UTF-8 after a byte-order mark, else UTF-8 where valid, else cp1252."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_tags(buf: bytes, p: int, count: int, fields: _Fields) -> int:
    """``count`` tags from ``buf[p:]`` (``CTag::CTag(CFileDataIO*)``) into ``fields``; returns
    the position after them. Raises _Short where the buffer ends inside a tag."""
    if count > MAX_TAGS:
        raise Malformed(f"a tag count of {count} (more than {MAX_TAGS})")
    n = len(buf)
    for number in range(count):
        kind = buf[p]
        name: bytes | None = None
        if kind & 0x80:
            kind &= 0x7F
            nid = buf[p + 1]
            p += 2
        else:
            (length,) = _U16.unpack_from(buf, p + 1)
            p += 3
            if length == 1:
                nid = buf[p]
                p += 1
            else:
                nid = 0
                name = buf[p : p + length]
                p += length
        value: Any
        if kind == T_UINT32:
            (value,) = _U32.unpack_from(buf, p)
            p += 4
        elif kind == T_STRING:
            (length,) = _U16.unpack_from(buf, p)
            p += 2 + length
            value = text(buf[p - length : p])
        elif T_STR1 <= kind <= T_STR16:
            p += kind - T_STR1 + 1
            value = text(buf[p - (kind - T_STR1 + 1) : p])
            kind = T_STRING
        elif kind == T_UINT64:
            (value,) = _U64.unpack_from(buf, p)
            p += 8
        elif kind == T_UINT16:
            (value,) = _U16.unpack_from(buf, p)
            p += 2
            kind = T_UINT32
        elif kind == T_UINT8:
            value = buf[p]
            p += 1
            kind = T_UINT32
        elif kind == T_HASH:
            p += 16
            value = buf[p - 16 : p]
        elif kind == T_FLOAT:
            (value,) = _F32.unpack_from(buf, p)
            p += 4
        elif kind == T_BOOL:
            value = buf[p] != 0
            p += 1
        elif kind == T_BOOLARRAY:
            (length,) = _U16.unpack_from(buf, p)
            p += 2 + length // 8 + 1
            value = None
        elif kind == T_BLOB:
            (length,) = _U32.unpack_from(buf, p)
            if length > MAX_BLOB:
                raise Malformed(f"tag {number}: a blob of {length} bytes (more than {MAX_BLOB})")
            p += 4 + length
            value = buf[p - length : p]
        elif kind == T_BSOB:
            length = buf[p]
            p += 1 + length
            value = buf[p - length : p]
        else:
            raise Malformed(f"tag {number}: unknown tag type 0x{kind:02x}")
        if p > n:
            raise Short
        fields.add(nid, name, kind, value)
    return p


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value[:_DETAIL_BYTES].hex()
    return value


def expected_part_hashes(size: int) -> int:
    """How many part hashes eMule stores for a file of ``size`` bytes (none below one part)."""
    parts = size // PARTSIZE
    return parts + 1 if parts > 0 else 0


class _Fields:
    """What a record's tags say, gathered as eMule's loaders read them."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.size: int | None = None
        self.size_hi: int | None = None
        self.aich: str | None = None
        self.dates: dict[str, str] = {}
        self.details: dict[str, Any] = {}
        self.gaps: dict[str, list[int | None]] = {}
        self.issues: list[str] = []
        self._transferred_lo: int | None = None
        self._transferred_hi: int | None = None

    def add(self, nid: int, name: bytes | None, kind: int, value: Any) -> None:
        if name is not None:
            self._named(name, kind, value)
        elif nid == FT_FILENAME:
            if kind != T_STRING:
                self.issues.append("the file name tag is not a string")
            elif self.name is None:
                self.name = value
        elif nid == FT_FILESIZE:
            if kind not in _INT_TYPES:
                self.issues.append("the file size tag is not an integer")
            else:
                self.size = value
        elif nid == FT_FILESIZE_HI and kind in _INT_TYPES:
            self.size_hi = value
        elif nid == FT_AICH_HASH:
            candidate = value.upper() if isinstance(value, str) else ""
            if _BASE32.fullmatch(candidate):
                self.aich = candidate
            else:
                self.issues.append("the AICH hash tag is not 32 Base32 characters")
        elif nid in _DATE_TAGS and kind in _INT_TYPES:
            when = iso_utc(value)
            if when is not None:
                self.dates[_DATE_TAGS[nid]] = when
        elif nid == FT_ATTRANSFERRED and kind in _INT_TYPES:
            self._transferred_lo = value
        elif nid == FT_ATTRANSFERREDHI and kind in _INT_TYPES:
            self._transferred_hi = value
        elif nid == FT_STATUS and kind in _INT_TYPES:
            self.details["paused"] = value != 0
        elif nid == FT_AICHHASHSET and isinstance(value, bytes):
            self.details["aich_hashset_bytes"] = len(value)
        elif nid in _DETAIL_TAGS:
            self.details[_DETAIL_TAGS[nid]] = _json_value(value)
        elif value is not None:
            self.details[f"tag_0x{nid:02x}"] = _json_value(value)

    def _named(self, name: bytes, kind: int, value: Any) -> None:
        first = name[:1]
        if first in (b"\x09", b"\x0a") and name[1:].isdigit():
            if kind not in _INT_TYPES:
                self.issues.append("a gap tag is not an integer")
                return
            gap = self.gaps.setdefault(name[1:].decode("ascii"), [None, None])
            gap[0 if first == b"\x09" else 1] = value
        elif value is not None:
            self.details[f"tag_{text(name)[:64]}"] = _json_value(value)

    def finish(self) -> None:
        if self.size is not None and self.size_hi is not None:
            self.size |= self.size_hi << 32
        if self._transferred_lo is not None or self._transferred_hi is not None:
            lo, hi = self._transferred_lo or 0, self._transferred_hi or 0
            self.details["all_time_transferred"] = (hi << 32) | lo

    def completeness(self) -> float | None:
        """1 - (bytes in gaps) / size, from the gap tags; None where the size is unknown."""
        if not self.size:
            return None
        missing = 0
        for start, end in self.gaps.values():
            if start is None or end is None or end < start:
                self.issues.append("a gap without both ends, or ending before it starts")
                continue
            missing += min(end, self.size) - min(start, self.size)
        return max(0.0, min(1.0, 1.0 - missing / self.size))


@dataclass
class _Met:
    """One known.met / part.met record as read: date, ED2K hash, part-hash count, tags."""

    modified: int
    ed2k: bytes
    parts: int
    fields: _Fields

    def dates_and_hashes(self) -> tuple[dict[str, str], dict[str, str]]:
        """The record's dates (its tags' and the file's modification) and hashes (ED2K,
        AICH when tagged), as a known.met and a part.met record report them."""
        dates = dict(self.fields.dates)
        when = iso_utc(self.modified)
        if when is not None:
            dates["file_modified"] = when
        hashes = {"ed2k": self.ed2k.hex()}
        if self.fields.aich is not None:
            hashes["aich"] = self.fields.aich
        return dates, hashes


def parse_met_record(buf: bytes, p: int) -> tuple[_Met, int]:
    """uint32 date, 16-byte ED2K hash, uint16 part count and part hashes, uint32 tag count,
    tags (``CKnownFile::LoadFromFile``)."""
    (modified,) = _U32.unpack_from(buf, p)
    ed2k = buf[p + 4 : p + 20]
    (parts,) = _U16.unpack_from(buf, p + 20)
    p += 22 + 16 * parts
    (count,) = _U32.unpack_from(buf, p)
    fields = _Fields()
    end = parse_tags(buf, p + 4, count, fields)
    fields.finish()
    return _Met(modified, ed2k, parts, fields), end


def _part_issue(parts: int, size: int | None) -> str | None:
    if size is None:
        return None
    expected = expected_part_hashes(size)
    if parts != expected:
        return f"{parts} part hashes; a file of {size} bytes has {expected}"
    return None


class _MetReader(P2PArtifactReader):
    """Helpers every eMule reader shares."""

    def issues(self, index: int, offset: int, issues: list[str]) -> Iterator[P2PReadProblem]:
        for issue in issues:
            yield self.problem(offset, f"record {index}: {issue}", index)


class KnownMetReader(_MetReader):
    """eMule's ``known.met``: every file shared or downloaded, kept after the file is gone."""

    client = "emule"
    artifact = "known.met"

    def recognises(self, name: str, head: bytes) -> bool:
        lower = name.lower()
        return lower in ("known.met", "known.met.bak") and head[:1] in (b"\x0e", b"\x0f")

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        cur = Cursor(stream)
        try:
            header = cur.u8()
            if header not in (0x0E, 0x0F):
                yield self.problem(0, f"header byte 0x{header:02x} is not a known.met's")
                return
            count = cur.u32()
        except Truncated:
            yield self.problem(cur.offset, "the artifact ends inside its header")
            return
        for index in range(count):
            start = cur.offset
            try:
                record, issues = self._record(cur, index)
            except (Truncated, Malformed) as exc:
                yield self.problem(start, f"record {index} of {count}: {exc}", index)
                return
            yield record
            yield from self.issues(index, start, issues)

    def _record(self, cur: Cursor, index: int) -> tuple[P2PRecord, list[str]]:
        met = parse_in_place(cur, parse_met_record)
        parts, fields = met.parts, met.fields
        dates, hashes = met.dates_and_hashes()
        details = {"part_hashes": parts, **fields.details}
        issue = _part_issue(parts, fields.size)
        if issue is not None:
            fields.issues.append(issue)
        record = P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=index,
            name=fields.name,
            size=fields.size,
            hashes=hashes,
            dates=dates,
            complete=True,
            details=details,
        )
        return record, fields.issues


class PartMetReader(_MetReader):
    """A download in progress (``*.part.met`` beside its ``*.part`` data file)."""

    client = "emule"
    artifact = "part.met"

    def recognises(self, name: str, head: bytes) -> bool:
        lower = name.lower()
        named = lower.endswith(".part.met") or lower.endswith(".part.met.bak")
        return named and head[:1] in (b"\xe0", b"\xe1", b"\xe2")

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        if size is not None and size > MAX_PART_MET:
            yield self.problem(0, f"{size} bytes is more than a part.met holds ({MAX_PART_MET})")
            return
        cur = Cursor(stream)
        try:
            version = cur.u8()
        except Truncated:
            yield self.problem(0, "the artifact is empty")
            return
        if version not in (0xE0, 0xE2):
            what = "eDonkey's split layout" if version == 0xE1 else "not a part.met's"
            yield self.problem(0, f"version byte 0x{version:02x} ({what}) is not read")
            return
        if cur.peek(27)[23:27] == b"\x00\x00\x02\x01":
            yield self.problem(0, "eDonkey's old part.met layout is not read")
            return
        try:
            record, issues = self._record(cur)
        except (Truncated, Malformed) as exc:
            yield self.problem(cur.offset, str(exc), 0)
            return
        yield record
        yield from self.issues(0, 0, issues)

    def _record(self, cur: Cursor) -> tuple[P2PRecord, list[str]]:
        met = parse_in_place(cur, parse_met_record)
        parts, fields = met.parts, met.fields
        completeness = fields.completeness()
        dates, hashes = met.dates_and_hashes()
        gaps = sorted(
            ([g[0], g[1]] for g in fields.gaps.values() if g[0] is not None and g[1] is not None),
            key=lambda g: g[0] or 0,
        )
        details = {"part_hashes": parts, "gaps": gaps[:1000], **fields.details}
        if parts:  # eMule writes the part hashes once they are known
            issue = _part_issue(parts, fields.size)
            if issue is not None:
                fields.issues.append(issue)
        record = P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=0,
            name=fields.name,
            size=fields.size,
            hashes=hashes,
            dates=dates,
            complete=False,
            completeness=completeness,
            details=details,
        )
        return record, fields.issues


class Known2MetReader(_MetReader):
    """eMule's AICH hash sets (``known2_64.met``): AICH roots of files it hashed."""

    client = "emule"
    artifact = "known2_64.met"

    def recognises(self, name: str, head: bytes) -> bool:
        return name.lower() == "known2_64.met" and head[:1] == b"\x02"

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        cur = Cursor(stream)
        try:
            header = cur.u8()
        except Truncated:
            yield self.problem(0, "the artifact is empty")
            return
        if header != 0x02:
            yield self.problem(0, f"header byte 0x{header:02x} is not a known2_64.met's")
            return
        index = 0
        while not cur.at_end():
            start = cur.offset
            try:
                root = cur.take(20)
                count = cur.u32()
                if count > MAX_AICH_BLOCKS:
                    raise Malformed(f"{count} block hashes (more than {MAX_AICH_BLOCKS})")
                if size is not None and cur.offset + 20 * count > size:
                    raise Truncated(f"{count} block hashes do not fit in the {size} bytes")
                cur.skip(20 * count)
            except (Truncated, Malformed) as exc:
                yield self.problem(start, f"hash set {index}: {exc}", index)
                return
            yield P2PRecord(
                client=self.client,
                artifact=self.artifact,
                index=index,
                hashes={"aich": base64.b32encode(root).decode("ascii")},
                details={"block_hashes": count},
            )
            index += 1


def _parse_cancelled(buf: bytes, p: int) -> tuple[tuple[bytes, _Fields], int]:
    """A 16-byte hash, a uint8 tag count and the tags."""
    digest = buf[p : p + 16]
    fields = _Fields()
    end = parse_tags(buf, p + 17, buf[p + 16], fields)
    fields.finish()
    return (digest, fields), end


_SALTED = (
    "eMule keeps only MD5(seed || ED2K hash) of a cancelled download, with this installation's "
    "seed; it matches a listed ED2K hash only once that hash is salted with the same seed"
)


class CancelledMetReader(_MetReader):
    """eMule's ``cancelled.met``: downloads the user cancelled."""

    client = "emule"
    artifact = "cancelled.met"

    def recognises(self, name: str, head: bytes) -> bool:
        return name.lower() == "cancelled.met" and head[:1] in (b"\x0e", b"\x0f")

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        cur = Cursor(stream)
        seed: int | None = None
        version: int | None = None
        try:
            header = cur.u8()
            if header not in (0x0E, 0x0F):
                yield self.problem(0, f"header byte 0x{header:02x} is not a cancelled.met's")
                return
            if header == 0x0F:
                version = cur.u8()
                if version > 1:
                    yield self.problem(1, f"version {version} is newer than the layout read")
                    return
                seed = cur.u32()
            count = cur.u32()
        except Truncated:
            yield self.problem(cur.offset, "the artifact ends inside its header")
            return
        for index in range(count):
            start = cur.offset
            try:
                digest, fields = parse_in_place(cur, _parse_cancelled)
            except (Truncated, Malformed) as exc:
                yield self.problem(start, f"record {index} of {count}: {exc}", index)
                return
            details: dict[str, Any] = dict(fields.details)
            if fields.name is not None:
                details["name_tag"] = fields.name
            if seed is not None:
                details.update(salted_hash=digest.hex(), seed=seed, version=version)
                yield P2PRecord(
                    client=self.client,
                    artifact=self.artifact,
                    index=index,
                    complete=False,
                    details=details,
                    unmatchable=_SALTED,
                )
            else:
                yield P2PRecord(
                    client=self.client,
                    artifact=self.artifact,
                    index=index,
                    hashes={"ed2k": digest.hex()},
                    complete=False,
                    details=details,
                )
            yield from self.issues(index, start, fields.issues)


class AmuleCanceledMetReader(_MetReader):
    """aMule's ``canceled.met``: the ED2K hashes of downloads the user cancelled, unsalted."""

    client = "amule"
    artifact = "canceled.met"

    def recognises(self, name: str, head: bytes) -> bool:
        return name.lower() == "canceled.met" and head[:1] == b"\x21"

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        cur = Cursor(stream)
        try:
            header = cur.u8()
            if header != 0x21:
                yield self.problem(0, f"header byte 0x{header:02x} is not a canceled.met's")
                return
            count = cur.u32()
        except Truncated:
            yield self.problem(cur.offset, "the artifact ends inside its header")
            return
        for index in range(count):
            start = cur.offset
            try:
                digest = cur.take(16)
            except Truncated as exc:
                yield self.problem(start, f"record {index} of {count}: {exc}", index)
                return
            yield P2PRecord(
                client=self.client,
                artifact=self.artifact,
                index=index,
                hashes={"ed2k": digest.hex()},
                complete=False,
            )


READERS: tuple[P2PArtifactReader, ...] = (
    KnownMetReader(),
    PartMetReader(),
    Known2MetReader(),
    CancelledMetReader(),
    AmuleCanceledMetReader(),
)
