"""Hash-list file formats: one registry of readers and writers, and content detection.

Each format is a :class:`ListFormat` under a constant name. Readers share one signature
(path, optional default hash type) and return a :class:`ParsedList` whose records are a
generator: a list of millions of records is read in constant memory, and a malformed record
raises :class:`~hashwatch.errors.ListFormatError` naming its line or record when the reader
reaches it. Writers take a binary stream and write record by record.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Protocol

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats.csv_format import CSV, read_csv, write_csv
from hashwatch.lists.formats.detect import detect_format
from hashwatch.lists.formats.nsrl import NSRL, read_nsrl
from hashwatch.lists.formats.text import TEXT, read_text, write_text
from hashwatch.lists.formats.vics import VICS1, VICS2, read_vics, write_vics2
from hashwatch.lists.formats.vpdq import VPDQ, read_vpdq, write_vpdq
from hashwatch.lists.model import EntryRecord, ListHeader, ParsedList
from hashwatch.signals.types import HashType

__all__ = [
    "CSV",
    "FORMATS",
    "NSRL",
    "TEXT",
    "VICS1",
    "VICS2",
    "VPDQ",
    "ListFormat",
    "ListReader",
    "ListWriter",
    "detect_format",
    "open_list",
    "write_list",
]


class ListReader(Protocol):
    def __call__(
        self,
        path: Path,
        *,
        default_hash_type: HashType | None = None,
        display_name: str | None = None,
    ) -> ParsedList: ...


class ListWriter(Protocol):
    def __call__(
        self, out: IO[bytes], header: ListHeader, records: Iterable[EntryRecord]
    ) -> int: ...


@dataclass(frozen=True)
class ListFormat:
    """A named list format: how to read it and, where hashwatch exports it, how to write it."""

    name: str
    description: str
    read: ListReader
    write: ListWriter | None = None


def _registry(*formats: ListFormat) -> Mapping[str, ListFormat]:
    """Formats by name; two formats under one name is a programming error caught at import."""
    registry: dict[str, ListFormat] = {}
    for fmt in formats:
        if fmt.name in registry:
            raise ValueError(f"list format name {fmt.name!r} registered twice")
        registry[fmt.name] = fmt
    return MappingProxyType(registry)


FORMATS: Mapping[str, ListFormat] = _registry(
    ListFormat(VICS1, "Project VIC VICS 1.x JSON case file (read only)", read_vics),
    ListFormat(VICS2, "Project VIC VICS 2.0 JSON case file or hash set", read_vics, write_vics2),
    ListFormat(CSV, "CSV with a header naming hash columns", read_csv, write_csv),
    ListFormat(TEXT, "one hash a line, bare or '<type> <hash>' (HMA)", read_text, write_text),
    ListFormat(NSRL, "NIST NSRL RDSv3 SQLite (read only, ignorable)", read_nsrl),
    ListFormat(
        VPDQ, "vPDQ frame hashes of videos, 'frame,quality,hex,timestamp'", read_vpdq, write_vpdq
    ),
)


def _lookup(fmt: str) -> ListFormat:
    try:
        return FORMATS[fmt]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ListFormatError(f"unknown list format {fmt!r} (known: {known})") from None


def open_list(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    default_hash_type: HashType | None = None,
    display_name: str | None = None,
) -> ParsedList:
    """Open a list file; the format is detected from the content unless ``fmt`` names it.

    ``display_name`` is how messages name the file (an upload's own name rather than the
    server's spool path); by default, ``path``.

    ``default_hash_type`` types bare hashes that do not say their type (text lists and CSV
    ``hash`` columns); a bare 64-hex value needs it (SHA-256 or PDQ). The header is read
    now; records are read as the caller iterates ``records``.
    """
    file = Path(path)
    name = fmt if fmt is not None else detect_format(file, display_name)
    return _lookup(name).read(file, default_hash_type=default_hash_type, display_name=display_name)


def write_list(
    target: str | os.PathLike[str] | IO[bytes],
    fmt: str,
    header: ListHeader,
    records: Iterable[EntryRecord],
) -> int:
    """Write ``records`` as ``fmt`` ("vics2", "csv", "text", "vpdq"); return how many were written.

    A path is written through a temporary file beside it and renamed into place when
    complete, so a failed export never leaves a truncated list behind. A binary stream is
    written as is and left open.
    """
    writer = _lookup(fmt).write
    if writer is None:
        writable = ", ".join(name for name, f in FORMATS.items() if f.write is not None)
        raise ListFormatError(f"list format {fmt!r} cannot be written (writable: {writable})")
    if not isinstance(target, str | os.PathLike):
        return writer(target, header, records)
    final = Path(target)
    partial = final.with_name(f".{final.name}.partial")
    try:
        with partial.open("wb") as out:
            count = writer(out, header, records)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return count
