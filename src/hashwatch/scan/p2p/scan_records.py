"""P2P client records as items of a scan, read in the worker from the stream the scan opened.

When a reader of :mod:`hashwatch.scan.p2p.registry` recognises a file (a folder's file, an
archive member or a file inside a disk image) by its base name and first bytes, the file
keeps its own item, hashed as every file is, and each record of the artifact becomes an item
right after it:

* display path ``<artifact path>!/#<index>`` (the archive separator: a record is *inside*
  its artifact, so the manifest, ``verify --evidence`` and the evidence byte count treat it
  as they treat an archive member, never as a file of the evidence's file system);
* the record's hashes in the item's hash fields (``ed2k``, ``sha1_base32``, ``md5``, ...,
  registered types without a field in ``signals``), so it is matched as a file is;
* ``ItemRecord.p2p``: client, artifact, artifact path, record index, name, size, dates,
  complete/completeness, save path, details, every identifier the record holds, why it
  cannot be matched (``unmatchable``) and a problem met while reading it.

Evidence is never reopened by path: a seekable stream (a file, a zip member) is hashed,
then rewound and read by the P2P reader; a stream that cannot be rewound (a member of a
streamed tar) is held in memory when it is at most :data:`MAX_HELD` bytes and hashed and
read from those bytes. Records are turned into items as the reader yields them; no list of
the artifact's records is kept beside the items.

A read problem (a truncated or malformed artifact) becomes the artifact item's ``error``:
the records read before it are kept, and one corrupt artifact never stops a scan.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

from hashwatch.errors import InvalidHashError
from hashwatch.scan.model import ARCHIVE_SEPARATOR, ItemRecord
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord
from hashwatch.scan.p2p.registry import HEAD_BYTES, reader_for
from hashwatch.signals.query import MediaQuery, Signal
from hashwatch.signals.types import SIGNAL_TYPES, HashType, normalize_hash

__all__ = [
    "MAX_HELD",
    "MAX_PROBLEMS_SHOWN",
    "MAX_RECORDS",
    "P2PArtifacts",
    "record_display",
    "record_item",
]

MAX_HELD = 64 * 1024 * 1024  # an artifact that cannot be rewound is held up to this size
MAX_PROBLEMS_SHOWN = 5  # problems of one artifact said in its error; the rest are counted
# Records of one artifact made into items (each ~4 KB in the worker and again in the scan's
# main process): beyond this the artifact's error says where reading stopped.
MAX_RECORDS = 250_000
RECORD_MARK = "#"  # ``<artifact>!/#<index>``

_ITEM_FIELDS = frozenset(ItemRecord.__dataclass_fields__)
_TYPES = {t.value: t for t in HashType}  # a record's hash names that are signal types


def record_display(artifact_path: str, index: int) -> str:
    """The display path of an artifact's record ``index``."""
    return f"{artifact_path}{ARCHIVE_SEPARATOR}{RECORD_MARK}{index}"


def _base_name(display: str) -> str:
    inner = display.rsplit(ARCHIVE_SEPARATOR, 1)[-1]
    return inner.replace("\\", "/").rsplit("/", 1)[-1]


def record_item(artifact_path: str, record: P2PRecord) -> tuple[ItemRecord, MediaQuery]:
    """The case item of one record and what it is matched with (its registered hashes)."""
    item = ItemRecord(path=record_display(artifact_path, record.index), root="", size=record.size)
    signals: list[Signal] = []
    bad: list[str] = []
    for name, value in record.hashes.items():
        hash_type = _TYPES.get(name)
        if hash_type is None:
            continue  # an identifier (btih, btmh, aich): kept in p2p["hashes"]
        impl = SIGNAL_TYPES[hash_type]
        try:
            canonical = normalize_hash(hash_type, value)
        except InvalidHashError:
            bad.append(name)
            continue
        target = impl.fields[0] if impl.fields else name
        if target in _ITEM_FIELDS:
            setattr(item, target, canonical)
        else:
            item.signals[target] = canonical
        if impl.query:
            signals.append(Signal(hash_type, canonical))
    signals += _sha1_twin(item)
    unmatchable = record.unmatchable
    if unmatchable is None and not signals:
        held = ", ".join(sorted(record.hashes)) or "no hash"
        unmatchable = f"the record holds no hash a list can hold ({held})"
    item.p2p = {
        "client": record.client,
        "artifact": record.artifact,
        "artifact_path": artifact_path,
        "index": record.index,
        "name": record.name,
        "size": record.size,
        "dates": dict(record.dates),
        "complete": record.complete,
        "completeness": record.completeness,
        "save_path": record.save_path,
        "hashes": dict(record.hashes),
        "details": dict(record.details),
        "unmatchable": unmatchable,
        "problem": f"not a valid {', '.join(bad)} value: not matched by it" if bad else None,
    }
    return item, MediaQuery(tuple(signals))


def _sha1_twin(item: ItemRecord) -> list[Signal]:
    """Gnutella's SHA-1 (Base32) and the hex SHA-1 are one digest: a record holding one is
    given the other, so it matches a list entry keyed by either."""
    if item.sha1_base32 and not item.sha1:
        item.sha1 = base64.b32decode(item.sha1_base32).hex()
        return [Signal(HashType.SHA1, item.sha1)]
    if item.sha1 and not item.sha1_base32:
        item.sha1_base32 = base64.b32encode(bytes.fromhex(item.sha1)).decode("ascii")
        return [Signal(HashType.SHA1_BASE32, item.sha1_base32)]
    return []


def _problem_text(problem: P2PReadProblem) -> str:
    where = f" at byte {problem.offset:,}" if problem.offset is not None else ""
    record = f" (record {problem.index})" if problem.index is not None else ""
    return f"{problem.message}{where}{record}"


@dataclass
class _Read:
    """What was read of one artifact: its records as items, and its problems."""

    reader: P2PArtifactReader
    items: list[tuple[ItemRecord, MediaQuery]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def error(self) -> str | None:
        if not self.problem_count:
            return None
        shown = "; ".join(self.problems)
        more = self.problem_count - len(self.problems)
        if more > 0:
            shown += f"; and {more:,} more"
        what = f"{self.reader.client} {self.reader.artifact}"
        return f"P2P artifact ({what}) not read in full: {shown}; {len(self.items):,} records read"


class _Chain(io.RawIOBase):
    """The bytes already read from a stream that cannot be rewound, then the rest of it."""

    def __init__(self, first: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._first, self._pos, self._rest = first, 0, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos < len(self._first):
            n = min(len(view), len(self._first) - self._pos)
            view[:n] = self._first[self._pos : self._pos + n]
            self._pos += n
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


R = TypeVar("R")


class P2PArtifacts:
    """The P2P side of one worker's hashing: :meth:`hash` wraps the scan's hashing of a
    stream, reading the records of a recognised artifact from that same stream;
    :meth:`items_of` hands them out after the artifact's own item."""

    def __init__(self) -> None:
        self._read: dict[str, _Read] = {}

    def hash(
        self, stream: BinaryIO, display: str, size: int | None, hash_fn: Callable[[BinaryIO], R]
    ) -> R:
        """``hash_fn(stream)``, and the artifact's records when a reader recognises it."""
        reader = self._recognise(stream, display)
        if reader is None:
            return hash_fn(stream)
        read = self._read[display] = _Read(reader)
        if stream.seekable():
            result = hash_fn(stream)
            stream.seek(0)
            self._records(read, display, stream, size)
            return result
        data = stream.read(MAX_HELD + 1)
        if len(data) > MAX_HELD:
            read.problem_count = 1
            read.problems.append(
                f"larger than {MAX_HELD:,} bytes in a stream that cannot be read twice"
            )
            return hash_fn(io.BufferedReader(_Chain(data, stream)))
        result = hash_fn(io.BytesIO(data))
        self._records(read, display, io.BytesIO(data), len(data))
        return result

    @staticmethod
    def _recognise(stream: BinaryIO, display: str) -> P2PArtifactReader | None:
        peek = getattr(stream, "head", None)  # the archive reader's Source: no bytes lost
        if callable(peek):
            head = bytes(peek(HEAD_BYTES))
        elif stream.seekable():
            head = stream.read(HEAD_BYTES)
            stream.seek(0)
        else:
            return None
        return reader_for(_base_name(display), head)

    @staticmethod
    def _records(read: _Read, display: str, stream: BinaryIO, size: int | None) -> None:
        last: ItemRecord | None = None
        try:
            for found in read.reader.read(stream, size):
                if isinstance(found, P2PRecord) and len(read.items) >= MAX_RECORDS:
                    read.problem_count += 1
                    read.problems.append(
                        f"more than {MAX_RECORDS:,} records: the rest not read (record "
                        f"{found.index} onwards)"
                    )
                    break
                if isinstance(found, P2PRecord):
                    last, query = record_item(display, found)
                    read.items.append((last, query))
                    continue
                read.problem_count += 1
                if len(read.problems) < MAX_PROBLEMS_SHOWN:
                    read.problems.append(_problem_text(found))
                if last is not None and last.p2p is not None and found.index == last.p2p["index"]:
                    last.p2p["problem"] = found.message
        except Exception as exc:  # a reader's bug, or a read fault: never stop the scan
            read.problem_count += 1
            read.problems.append(f"reading stopped: {type(exc).__name__}: {exc}"[:300])

    def items_of(self, artifact: ItemRecord) -> list[tuple[ItemRecord, MediaQuery]]:
        """The record items of ``artifact`` (none for a file no reader recognised); the
        artifact's ``error`` and ``note`` say what happened."""
        read = self._read.pop(artifact.path, None)
        if read is None:
            return []
        problem = read.error()
        if problem is not None:
            artifact.error = f"{artifact.error}; {problem}" if artifact.error else problem
        what = f"{read.reader.client} {read.reader.artifact}"
        note = f"P2P artifact ({what}): {len(read.items):,} records"
        artifact.note = f"{artifact.note}; {note}" if artifact.note else note
        for item, _ in read.items:
            item.root = artifact.root
        return read.items
