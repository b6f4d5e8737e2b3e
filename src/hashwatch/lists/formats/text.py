"""Plain-text hash lists: one hash a line, bare or as ``<type> <hash>``.

``<type> <hash>`` is what Meta's HMA "local file" exchange reads and writes (``pdq 0f3c…``,
``video_md5 …``); bare hashes are what most tools dump. A bare value's type is inferred from
its length and alphabet (see :func:`hashwatch.lists.formats._common.infer_hash_type`); a bare
64-hex value is SHA-256 or PDQ and needs ``default_hash_type`` — reading it as either one
silently would send it to the wrong matcher. Blank lines and ``#`` comments are skipped.
Each line is one entry with one hash; the format has no place for categories or grouping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats._common import check_hash, infer_hash_type, type_from_name
from hashwatch.lists.model import CategoryScheme, EntryRecord, ListHeader, ParsedList
from hashwatch.signals.types import HashType

__all__ = ["TEXT", "parse_line", "read_text", "write_text"]

TEXT = "text"


def parse_line(
    line: str, where: str, default_hash_type: HashType | None = None
) -> tuple[HashType, str] | None:
    """One line to ``(type, normalised hash)``; None for a blank or comment line."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    parts = text.split()
    if len(parts) == 1:
        value = parts[0]
        hash_type = infer_hash_type(value, default_hash_type, where)
    elif len(parts) == 2:
        name, value = parts
        named = type_from_name(name)
        if named is None:
            raise ListFormatError(
                f"unknown hash type {name!r} (known: {', '.join(HashType)})", where=where
            )
        hash_type = named
    else:
        raise ListFormatError(
            f"expected '<type> <hash>' or a bare hash, got {len(parts)} words", where=where
        )
    return hash_type, check_hash(hash_type, value, where)


def read_text(
    path: Path, *, default_hash_type: HashType | None = None, display_name: str | None = None
) -> ParsedList:
    """Open a text list; ``default_hash_type`` types bare values it fits (64 hex needs it)."""
    del display_name  # messages name lines and records, not the file
    header = ListHeader(format=TEXT, scheme=CategoryScheme.NONE)
    return ParsedList(header=header, records=_iter_lines(path, default_hash_type))


def _iter_lines(path: Path, default_hash_type: HashType | None) -> Iterator[EntryRecord]:
    n = 0
    with path.open(encoding="utf-8-sig") as f:
        try:
            for n, line in enumerate(f, 1):
                where = f"line {n}"
                parsed = parse_line(line, where, default_hash_type)
                if parsed is not None:
                    yield EntryRecord(hashes=(parsed,), source=where)
        except UnicodeDecodeError:
            # Text is decoded a buffer at a time, so the bad byte is at or after this line.
            raise ListFormatError("not UTF-8 text", where=f"line {n + 1}") from None


def write_text(out: IO[bytes], header: ListHeader, records: Iterable[EntryRecord]) -> int:
    """Write ``<type> <hash>`` lines, one for each hash of each record; return the records.

    Only hashes survive: a text list has no place for categories, tags or grouping.
    """
    del header
    count = 0
    for record in records:
        out.write("".join(f"{t.value} {v}\n" for t, v in record.hashes).encode("ascii"))
        count += 1
    return count
