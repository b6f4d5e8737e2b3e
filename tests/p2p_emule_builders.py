"""eMule/aMule and LimeWire/FrostWire artifacts written from their documented layouts (eMule's
``KnownFile.cpp``/``PartFile.cpp``/``KnownFileList.cpp`` writers; Java's Object Serialization
Stream Protocol for LimeWire's caches), with benign generated names and hashes; no client
binary is involved.

``SAMPLES`` maps each reader's ``(client, artifact)`` to a builder of a small valid artifact with
at least two records; the P2P contract test runs every reader on its sample.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

PARTSIZE = 9_728_000

# ---------------------------------------------------------------- eMule tags


def _u8(v: int) -> bytes:
    return struct.pack("<B", v)


def _u16(v: int) -> bytes:
    return struct.pack("<H", v)


def _u32(v: int) -> bytes:
    return struct.pack("<I", v)


def _u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def _name(kind: int, name: int | bytes, short: bool) -> bytes:
    if isinstance(name, bytes):
        return _u8(kind) + _u16(len(name)) + name
    if short:
        return _u8(kind | 0x80) + _u8(name)
    return _u8(kind) + _u16(1) + _u8(name)  # CTag::WriteTagToFile's form


def tag_u32(name: int | bytes, value: int, *, short: bool = False) -> bytes:
    return _name(0x03, name, short) + _u32(value)


def tag_u64(name: int | bytes, value: int, *, short: bool = False) -> bytes:
    return _name(0x0B, name, short) + _u64(value)


def tag_u16(name: int | bytes, value: int) -> bytes:
    return _name(0x08, name, True) + _u16(value)


def tag_u8(name: int | bytes, value: int) -> bytes:
    return _name(0x09, name, True) + _u8(value)


def tag_str(name: int | bytes, value: str, *, short: bool = False) -> bytes:
    """A string as eMule's utf8strOptBOM writes it: a BOM and UTF-8 when not ASCII."""
    raw = value.encode("ascii") if value.isascii() else b"\xef\xbb\xbf" + value.encode("utf-8")
    return _name(0x02, name, short) + _u16(len(raw)) + raw


def tag_short_str(name: int, value: str) -> bytes:
    """TAGTYPE_STR1..STR16: the length is in the type byte."""
    raw = value.encode("ascii")
    assert 1 <= len(raw) <= 16
    return _name(0x10 + len(raw), name, True) + raw


def tag_hash(name: int, value: bytes) -> bytes:
    return _name(0x01, name, True) + value


def tag_blob(name: int, value: bytes) -> bytes:
    return _name(0x07, name, False) + _u32(len(value)) + value


def tag_float(name: int, value: float) -> bytes:
    return _name(0x04, name, True) + struct.pack("<f", value)


def tag_bool(name: int, value: bool) -> bytes:
    return _name(0x05, name, True) + _u8(int(value))


def tag_bool_array(name: int, bits: int) -> bytes:
    return _name(0x06, name, True) + _u16(bits) + b"\x00" * (bits // 8 + 1)


def tag_bsob(name: int, value: bytes) -> bytes:
    return _name(0x0A, name, True) + _u8(len(value)) + value


# ---------------------------------------------------------------- eMule records


def fake_ed2k(seed: str) -> bytes:
    """A 16-byte stand-in for an ED2K hash (benign: derived from the seed text)."""
    return hashlib.md5(seed.encode()).digest()


def fake_aich(seed: str) -> bytes:
    return hashlib.sha1(seed.encode()).digest()


def part_hash_count(size: int) -> int:
    parts = size // PARTSIZE
    return parts + 1 if parts > 0 else 0


@dataclass
class MetEntry:
    """One known.met / part.met record: date, ED2K hash, part hashes, tags."""

    modified: int
    ed2k: bytes
    size: int
    tags: list[bytes] = field(default_factory=list)
    part_hashes: int | None = None  # None: as many as the size needs

    def encode(self) -> bytes:
        parts = part_hash_count(self.size) if self.part_hashes is None else self.part_hashes
        hashset = self.ed2k + _u16(parts) + b"".join(fake_ed2k(f"p{i}") for i in range(parts))
        return _u32(self.modified) + hashset + _u32(len(self.tags)) + b"".join(self.tags)


def known_entry(
    i: int,
    *,
    name: str | None = None,
    size: int | None = None,
    extra: Sequence[bytes] = (),
) -> MetEntry:
    """A record as eMule's CKnownFile::WriteToFile writes it (name, size, AICH, last shared,
    statistics, priority)."""
    size = 1000 + i * 7 if size is None else size
    name = f"holiday-{i:06d}.jpg" if name is None else name
    tags = [
        tag_str(0x01, name),
        tag_u64(0x02, size) if size >= 1 << 32 else tag_u32(0x02, size),
        tag_str(0x27, base64.b32encode(fake_aich(f"a{i}")).decode()),
        tag_u32(0x34, 1_700_000_000 + i),
        tag_u32(0x50, 5000 + i),
        tag_u32(0x54, 1),
        tag_u32(0x51, 3 + i),
        tag_u32(0x52, 2),
        tag_u32(0x19, 5),
        *extra,
    ]
    return MetEntry(1_690_000_000 + i, fake_ed2k(f"f{i}"), size, tags)


def known_met(
    entries: Iterable[MetEntry], *, header: int = 0x0E, count: int | None = None
) -> bytes:
    body = [e.encode() for e in entries]
    return _u8(header) + _u32(len(body) if count is None else count) + b"".join(body)


def write_known_met(out: BinaryIO, n: int) -> None:
    """A known.met of ``n`` generated records written to ``out`` (streamed)."""
    out.write(_u8(0x0F) + _u32(n))
    for i in range(n):
        out.write(known_entry(i).encode())


def part_met(entry: MetEntry, *, version: int = 0xE0) -> bytes:
    return _u8(version) + entry.encode()


def part_entry(
    size: int = 30_000_000, gaps: Sequence[tuple[int, int]] = ((0, 1_000_000),)
) -> MetEntry:
    """A download as CPartFile::SavePartFile writes it: gaps as tags "\\x09n"/"\\x0An"."""
    tags = [
        tag_str(0x01, "garden-video.mp4"),
        tag_u32(0x02, size),
        tag_u32(0x08, size // 2),
        tag_u32(0x14, 1),
        tag_u32(0x18, 5),
        tag_u32(0x19, 5),
        tag_u32(0x05, 1_700_100_000),
        tag_u32(0x53, 2),
        tag_u32(0x23, 3600),
        tag_str(0x24, "0,2"),
        tag_str(0x27, base64.b32encode(fake_aich("part")).decode()),
    ]
    for n, (start, end) in enumerate(gaps):
        tags.append(tag_u32(b"\x09" + str(n).encode(), start))
        tags.append(tag_u32(b"\x0a" + str(n).encode(), end))
    return MetEntry(1_700_000_500, fake_ed2k("part"), size, tags)


def known2_met(sets: Sequence[tuple[bytes, int]]) -> bytes:
    """known2_64.met: byte 0x02, then [20-byte AICH root, uint32 count, count x 20 bytes]."""
    out = [_u8(0x02)]
    for root, count in sets:
        out.append(root + _u32(count) + b"\x11" * (20 * count))
    return b"".join(out)


def salted(seed: int, ed2k: bytes) -> bytes:
    """What eMule stores for a cancelled download: MD5(seed as uint32 || ED2K hash)."""
    return hashlib.md5(_u32(seed) + ed2k).digest()


def cancelled_met(hashes: Sequence[bytes], *, seed: int | None = 0x1234ABCD) -> bytes:
    """cancelled.met version 1 (with ``seed``: the hashes given are stored salted) or the old
    layout (``seed=None``: header 0x0E, plain hashes)."""
    if seed is None:
        head = _u8(0x0E) + _u32(len(hashes))
        return head + b"".join(h + _u8(0) for h in hashes)
    head = _u8(0x0F) + _u8(1) + _u32(seed) + _u32(len(hashes))
    return head + b"".join(salted(seed, h) + _u8(0) for h in hashes)


def amule_canceled_met(hashes: Sequence[bytes]) -> bytes:
    return _u8(0x21) + _u32(len(hashes)) + b"".join(hashes)


# ---------------------------------------------------------------- samples


def sample_known() -> bytes:
    return known_met([known_entry(0), known_entry(1, name="Straße am Meer.png")])


def sample_part() -> bytes:
    """A part.met is one download; two gaps stand in for the second record's worth of data."""
    return part_met(part_entry(gaps=((0, 1_000_000), (2_000_000, 2_500_000))))


def sample_known2() -> bytes:
    return known2_met([(fake_aich("a0"), 3), (fake_aich("a1"), 1)])


def sample_cancelled() -> bytes:
    return cancelled_met([fake_ed2k("c0"), fake_ed2k("c1")])


def sample_amule_canceled() -> bytes:
    return amule_canceled_met([fake_ed2k("c0"), fake_ed2k("c1")])


# ---------------------------------------------------------------- Java serialisation

_Cls = tuple[str, int, int, tuple[tuple[str, str, str | None], ...], "_Cls | None"]
NUMBER: _Cls = ("java.lang.Number", -8742448824652078965, 0x02, (), None)
LONG: _Cls = ("java.lang.Long", 4290774380558885855, 0x02, (("J", "value", None),), NUMBER)
ENUM: _Cls = ("java.lang.Enum", 0, 0x12, (), None)
HASHMAP: _Cls = (
    "java.util.HashMap",
    362498820763181265,
    0x03,
    (("F", "loadFactor", None), ("I", "threshold", None)),
    None,
)
HASHSET: _Cls = ("java.util.HashSet", -5024744406713321676, 0x03, (), None)
FILE: _Cls = (
    "java.io.File",
    301077366599181567,
    0x03,
    (("L", "path", "Ljava/lang/String;"),),
    None,
)
URN: _Cls = ("com.limegroup.gnutella.URN", -6053855548211564799, 0x03, (), None)
URN_TYPE: _Cls = ("com.limegroup.gnutella.URN$Type", 0, 0x12, (), ENUM)
_URN_SIG = "Lcom/limegroup/gnutella/URN;"
URNSET: _Cls = (
    "com.limegroup.gnutella.UrnSet",
    -1065284624401321676,
    0x02,
    (("L", "nms1", _URN_SIG), ("L", "sha1", _URN_SIG), ("L", "ttroot", _URN_SIG)),
    None,
)
# No serialVersionUID is declared for this class (Java computes one); the reader does not check it.
UNMOD_URNSET: _Cls = ("com.limegroup.gnutella.UrnSet$UnmodifiableUrnSet", 1, 0x02, (), URNSET)
URNSETKEY: _Cls = (
    "com.limegroup.gnutella.library.UrnCache$UrnSetKey",
    -7183232365833531645,
    0x03,
    (),
    None,
)


def java_utf(text: str) -> bytes:
    """Java's modified UTF-8 (U+0000 as C0 80, non-BMP characters as surrogate pairs)."""
    out = bytearray()
    for unit in struct.unpack(f"<{len(text.encode('utf-16-le')) // 2}H", text.encode("utf-16-le")):
        if 0 < unit < 0x80:
            out.append(unit)
        elif unit < 0x800:
            out += bytes([0xC0 | unit >> 6, 0x80 | unit & 0x3F])
        else:
            out += bytes([0xE0 | unit >> 12, 0x80 | unit >> 6 & 0x3F, 0x80 | unit & 0x3F])
    return bytes(out)


class JavaWriter:
    """The stream ObjectOutputStream writes (protocol version 2): class descriptors, strings
    and enum constants written once and referred to by handle afterwards."""

    def __init__(self) -> None:
        self.out = bytearray(b"\xac\xed\x00\x05")
        self._next = 0
        self._handles: dict[object, int] = {}

    def _handle(self, key: object) -> None:
        self._handles[key] = self._next
        self._next += 1

    def _ref(self, key: object) -> bool:
        if key in self._handles:
            self.out += b"\x71" + struct.pack(">i", 0x7E0000 + self._handles[key])
            return True
        return False

    def utf(self, text: str) -> None:
        raw = java_utf(text)
        self.out += struct.pack(">H", len(raw)) + raw

    def string(self, text: str, *, shared: bool = False) -> None:
        if shared and self._ref(("str", text)):
            return
        self.out += b"\x74"
        self.utf(text)
        self._handle(("str", text) if shared else object())

    def class_desc(self, cls: _Cls | None) -> None:
        if cls is None:
            self.out += b"\x70"
            return
        if self._ref(cls[0]):
            return
        name, suid, flags, fields, parent = cls
        self.out += b"\x72"
        self.utf(name)
        self.out += struct.pack(">q", suid)
        self._handle(name)
        self.out += bytes([flags]) + struct.pack(">H", len(fields))
        for code, fname, sig in fields:
            self.out += code.encode()
            self.utf(fname)
            if sig is not None:
                self.string(sig, shared=True)
        self.out += b"\x78"  # no class annotation
        self.class_desc(parent)

    def begin(self, cls: _Cls) -> None:
        self.out += b"\x73"
        self.class_desc(cls)
        self._handle(object())

    def block(self, data: bytes) -> None:
        self.out += b"\x77" + bytes([len(data)]) + data

    def end(self) -> None:
        self.out += b"\x78"

    def null(self) -> None:
        self.out += b"\x70"

    def enum(self, cls: _Cls, constant: str) -> None:
        if self._ref(("enum", cls[0], constant)):
            return
        self.out += b"\x7e"
        self.class_desc(cls)
        self._handle(("enum", cls[0], constant))
        self.string(constant)

    def urn(self, text: str) -> None:
        """A LimeWire URN: defaultWriteObject (no fields), writeUTF(text), writeObject(type)."""
        self.begin(URN)
        raw = java_utf(text)
        self.block(struct.pack(">H", len(raw)) + raw)
        kind = text.split(":")[1].upper()
        self.enum(URN_TYPE, "TTROOT" if kind == "TTROOT" else kind)
        self.end()

    def long(self, value: int) -> None:
        self.begin(LONG)
        self.out += struct.pack(">q", value)

    def hashmap(self, size: int) -> None:
        """A HashMap's header; the caller writes ``size`` keys and values, then :meth:`end`."""
        self.begin(HASHMAP)
        self.out += struct.pack(">fi", 0.75, 12)
        self.block(struct.pack(">ii", 16, size))


@dataclass
class SharedFile:
    """One fileurns.cache entry: a stand-in file's path, time and hashes."""

    path: str
    modified_ms: int
    sha1: bytes
    tth: bytes | None = None

    @property
    def sha1_base32(self) -> str:
        return base64.b32encode(self.sha1).decode()

    @property
    def tth_base32(self) -> str | None:
        return base64.b32encode(self.tth).decode().rstrip("=") if self.tth else None


def shared_files(n: int) -> list[SharedFile]:
    return [
        SharedFile(
            f"C:\\Users\\sam\\Shared\\picnic-{i:03d}.jpg",
            1_600_000_000_000 + i * 1001,
            hashlib.sha1(f"s{i}".encode()).digest(),
            hashlib.sha256(f"t{i}".encode()).digest()[:24] if i % 2 == 0 else None,
        )
        for i in range(n)
    ]


def fileurns_cache(files: Sequence[SharedFile], *, style: str = "urnset") -> bytes:
    """fileurns.cache as LimeWire 5 (``style="urnset"``: UnmodifiableUrnSet values) or LimeWire
    4 (``"hashset"``: HashSet of URN) writes it; ``"file"`` keys the map by java.io.File."""
    w = JavaWriter()
    w.hashmap(len(files))
    for f in files:
        if style == "file":
            w.begin(FILE)
            w.string(f.path)
            w.block(struct.pack(">H", ord("\\")))
            w.end()
        else:
            w.begin(URNSETKEY)
            w.block(struct.pack(">q", f.modified_ms))
            w.string(f.path)
            w.end()
        urns = [f"urn:sha1:{f.sha1_base32}"]
        if f.tth_base32:
            urns.append(f"urn:ttroot:{f.tth_base32}")
        if style == "urnset":
            w.begin(UNMOD_URNSET)
            w.null()  # nms1
            w.urn(urns[0])  # sha1
            if len(urns) > 1:
                w.urn(urns[1])
            else:
                w.null()
        else:
            w.begin(HASHSET)
            w.block(struct.pack(">ifi", 16, 0.75, len(urns)))
            for urn in urns:
                w.urn(urn)
            w.end()
    w.end()
    return bytes(w.out)


def createtimes_cache(entries: Sequence[tuple[str, int]]) -> bytes:
    """createtimes.cache: HashMap of URN (``urn:sha1:...``) to Long (Java milliseconds)."""
    w = JavaWriter()
    w.hashmap(len(entries))
    for urn, millis in entries:
        w.urn(urn)
        w.long(millis)
    w.end()
    return bytes(w.out)


def sample_fileurns() -> bytes:
    return fileurns_cache(shared_files(2))


def sample_createtimes() -> bytes:
    files = shared_files(2)
    return createtimes_cache([(f"urn:sha1:{f.sha1_base32}", f.modified_ms + 5) for f in files])


SAMPLES: dict[tuple[str, str], Callable[[], bytes]] = {
    ("emule", "known.met"): sample_known,
    ("emule", "part.met"): sample_part,
    ("emule", "known2_64.met"): sample_known2,
    ("emule", "cancelled.met"): sample_cancelled,
    ("amule", "canceled.met"): sample_amule_canceled,
    ("limewire", "fileurns.cache"): sample_fileurns,
    ("limewire", "createtimes.cache"): sample_createtimes,
}


def write_sample(directory: Path, key: tuple[str, str]) -> Path:
    """The sample for ``key`` written under its usual file name."""
    names = {
        "known.met": "known.met",
        "part.met": "001.part.met",
        "known2_64.met": "known2_64.met",
        "cancelled.met": "cancelled.met",
        "canceled.met": "canceled.met",
        "fileurns.cache": "fileurns.cache",
        "createtimes.cache": "createtimes.cache",
    }
    path = directory / names[key[1]]
    path.write_bytes(SAMPLES[key]())
    return path


def write_large_known_met(out: BinaryIO, n: int, *, blob: int = 200) -> None:
    """A known.met of ``n`` lean records (name, size and an AICH hash-set blob of ``blob``
    bytes, as eMule stores one per file), written fast for the memory test and benchmark."""
    out.write(_u8(0x0F) + _u32(n))
    tail = tag_blob(0x35, b"\x22" * blob)
    for i in range(n):
        name = f"n{i:07d}.jpg".encode()
        out.write(
            _u32(1_690_000_000 + i)
            + i.to_bytes(16, "little")
            + _u16(0)
            + _u32(3)
            + b"\x02\x01\x00\x01"
            + _u16(len(name))
            + name
            + b"\x83\x02"
            + _u32(1000 + i)
            + tail
        )
