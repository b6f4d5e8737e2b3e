"""CSV hash lists: a header row, then one entry a row.

Two column conventions, which may be mixed:

* hash columns named by type (``md5``, ``sha1``, ``sha256``, ``pdq``, ``ed2k``,
  ``sha1_base32``, or any alias ``parse_hash_type`` knows, case-insensitive): every filled
  cell of a row is one more hash of the same entry; a cell may hold several hashes of its
  type separated by spaces;
* ``hash_type,hash``: one typed hash a row (``hash`` alone: the type is inferred as for
  text lists, so a 64-hex value needs a default type).

Known fields: ``category``, ``series``, ``tags`` (comma-separated), ``comment``,
``victim_identified``, ``date``, ``status``. Any other column is kept as text in ``extra``
under its header name; a column named ``extra`` holding a JSON object is merged into
``extra`` (the writer puts all of ``extra`` there, so non-text values survive).

The writer chooses its hash columns from the data, so it needs two passes: a sequence of
records is read twice, any other iterable is spooled to a temporary file (constant memory).
When some record lists its hashes in another order than the columns do, a ``hash_order``
column (``"sha256 md5"``) keeps the order, hence the key hash, exact.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
as a formula. The writer neutralises such cells as OWASP recommends, with a leading ``'``
(and adds one to a cell that already starts with ``'`` and one of those, or a second ``'``,
so the rule can be undone exactly); the reader removes exactly that prefix again, so an
export reads back to equal records.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats._common import (
    add_hash,
    dump_extra,
    infer_hash_type,
    join_tags,
    parse_bool,
    parse_status,
    reorder_hashes,
    split_tags,
    spool,
    type_from_name,
    unspool,
)
from hashwatch.lists.model import CategoryScheme, EntryRecord, EntryStatus, ListHeader, ParsedList
from hashwatch.signals.types import HashType

__all__ = [
    "CSV",
    "CsvColumns",
    "neutralise",
    "parse_header_line",
    "read_csv",
    "unneutralise",
    "write_csv",
]

CSV = "csv"

DELIMITERS = (",", "\t", ";")
FIELD_ORDER = ("category", "series", "victim_identified", "tags", "comment", "date", "status")
_FIELD_NAMES = {name: name for name in FIELD_ORDER} | {
    "comments": "comment",
    "victimidentified": "victim_identified",
    "dateupdated": "date",
    "date_updated": "date",
}
HASH_ORDER = "hash_order"
EXTRA = "extra"
_MAX_ORDERS = 4096
_LOOKS_LIKE_HASH = re.compile(
    r"^(?:[0-9A-Fa-f]{32,}|[A-Za-z2-7]{32}|urn:sha1:.*)$"
)  # distinct hash-type sequences tracked before assuming hash_order is needed


# Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
_FORMULA_START = frozenset("=+-@\t\r")
_QUOTE = "'"


def neutralise(cell: str) -> str:
    """``cell`` as written: a leading ``'`` before a formula start (or before ``'`` + one)."""
    first, second = cell[:1], cell[1:2]
    if first in _FORMULA_START or (
        first == _QUOTE and second != "" and (second in _FORMULA_START or second == _QUOTE)
    ):
        return _QUOTE + cell
    return cell


def unneutralise(cell: str) -> str:
    """The inverse of :func:`neutralise`: the one ``'`` it added, removed."""
    if len(cell) > 1 and cell[0] == _QUOTE and (cell[1] in _FORMULA_START or cell[1] == _QUOTE):
        return cell[1:]
    return cell


@dataclass
class CsvColumns:
    """What each column of a CSV header means (indexes into a row)."""

    delimiter: str
    names: list[str]
    hash_cols: list[tuple[int, HashType]] = field(default_factory=list)
    fields: dict[str, int] = field(default_factory=dict)
    extra_cols: list[tuple[int, str]] = field(default_factory=list)
    hash_col: int | None = None  # the "hash" column of hash_type,hash
    type_col: int | None = None  # the "hash_type" column
    order_col: int | None = None
    extra_col: int | None = None
    duplicates: list[str] = field(default_factory=list)  # two columns for one field

    @property
    def has_hash_column(self) -> bool:
        return bool(self.hash_cols) or self.hash_col is not None


def _columns(names: list[str], delimiter: str) -> CsvColumns:
    cols = CsvColumns(delimiter=delimiter, names=names)
    for i, raw in enumerate(names):
        name = raw.strip()
        key = name.lower()
        if key == "hash":
            cols.hash_col = i
        elif key == "hash_type":
            cols.type_col = i
        elif key == HASH_ORDER:
            cols.order_col = i
        elif key == EXTRA:
            cols.extra_col = i
        elif key in _FIELD_NAMES:
            canonical = _FIELD_NAMES[key]
            if canonical in cols.fields:
                cols.duplicates.append(name)
            cols.fields[canonical] = i
        elif (hash_type := type_from_name(key)) is not None:
            cols.hash_cols.append((i, hash_type))
        else:
            cols.extra_cols.append((i, name or f"column {i + 1}"))
    return cols


def parse_header_line(line: str) -> CsvColumns | None:
    """The columns of a CSV header line, or None when no delimiter gives a hash column.

    Used by detection as well: a first line naming a hash column is what makes a file CSV.
    """
    for delimiter in DELIMITERS:
        if delimiter not in line and delimiter != DELIMITERS[0]:
            continue
        names = next(csv.reader([line], delimiter=delimiter), [])
        if any(_LOOKS_LIKE_HASH.match(name.strip()) for name in names):
            return None  # a data row ("md5<TAB><hash>" text lines), not a header
        cols = _columns(names, delimiter)
        if cols.has_hash_column:
            return cols
    return None


def read_csv(
    path: Path, *, default_hash_type: HashType | None = None, display_name: str | None = None
) -> ParsedList:
    """Open a CSV list; ``default_hash_type`` types bare 64-hex values of a ``hash`` column."""
    del display_name  # messages name lines and records, not the file
    with path.open(encoding="utf-8-sig", newline="") as f:
        try:
            first = f.readline()
        except UnicodeDecodeError:
            raise ListFormatError("not UTF-8 text", where="line 1") from None
    cols = parse_header_line(first.rstrip("\r\n"))
    if cols is None:
        raise ListFormatError(
            "the CSV header names no hash column (expected md5, sha1, sha256, pdq, ed2k, "
            "sha1_base32, or hash_type,hash)",
            where="line 1",
        )
    if cols.duplicates:
        raise ListFormatError(
            f"columns {cols.duplicates!r} repeat a field named by an earlier column",
            where="line 1",
        )
    # Without a category column the file carries no categories; with one, the caller knows
    # which scheme its codes follow.
    scheme = None if "category" in cols.fields else CategoryScheme.NONE
    header = ListHeader(format=CSV, scheme=scheme)
    return ParsedList(header=header, records=_iter_rows(path, cols, default_hash_type))


def _iter_rows(
    path: Path, cols: CsvColumns, default_hash_type: HashType | None
) -> Iterator[EntryRecord]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=cols.delimiter)
        last_line = 0
        in_header = True
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                where = f"line {last_line + 1}"
                raise ListFormatError(f"unreadable CSV: {exc}", where=where) from None
            line = last_line + 1
            last_line = reader.line_num
            if in_header:
                in_header = False  # parsed already by read_csv
                continue
            if not "".join(row).strip():
                continue
            yield _row_to_record(row, cols, f"line {line}", default_hash_type)


def _row_to_record(
    row: list[str], cols: CsvColumns, where: str, default_hash_type: HashType | None
) -> EntryRecord:
    width = len(cols.names)
    if len(row) > width and any(cell.strip() for cell in row[width:]):
        raise ListFormatError(f"{len(row)} fields, but the header names {width}", where=where)

    def cell(i: int | None) -> str:
        return unneutralise(row[i].strip()) if i is not None and i < len(row) else ""

    hashes: list[tuple[HashType, str]] = []
    for i, hash_type in cols.hash_cols:
        for value in cell(i).split():
            add_hash(hashes, hash_type, value, where, f"column {cols.names[i].strip()}")
    value, type_name = cell(cols.hash_col), cell(cols.type_col)
    if value:
        if type_name:
            named = type_from_name(type_name)
            if named is None:
                raise ListFormatError(f"hash_type: unknown hash type {type_name!r}", where=where)
        else:
            named = infer_hash_type(value, default_hash_type, where)
        add_hash(hashes, named, value, where, "column hash")
    elif type_name:
        raise ListFormatError(f"hash_type is {type_name!r} but the hash cell is empty", where=where)
    order = cell(cols.order_col)
    if order:
        hashes = reorder_hashes(hashes, order, where, HASH_ORDER)
    if not hashes:
        raise ListFormatError("no hash in this row", where=where)

    fields = cols.fields
    extra: dict[str, Any] = {}
    for i, name in cols.extra_cols:
        if i < len(row) and row[i].strip():
            extra[name] = unneutralise(row[i])
    blob = cell(cols.extra_col)
    if blob.startswith("{"):
        try:
            decoded = json.loads(blob)
        except ValueError as exc:
            raise ListFormatError(f"extra: not valid JSON ({exc})", where=where) from None
        extra.update(decoded)
    elif blob:
        extra[EXTRA] = blob  # a third-party "extra" column of plain text

    def text(name: str) -> str | None:
        i = fields.get(name)
        if i is None or i >= len(row) or not row[i].strip():
            return None
        return unneutralise(row[i])

    status = cell(fields.get("status"))
    return EntryRecord(
        hashes=tuple(hashes),
        category=cell(fields.get("category")) or None,
        series=text("series"),
        victim_identified=parse_bool(
            cell(fields.get("victim_identified")), where, "victim_identified"
        ),
        tags=split_tags(cell(fields.get("tags")), where),
        comment=text("comment"),
        date=cell(fields.get("date")) or None,
        status=parse_status(status, where) if status else EntryStatus.ACTIVE,
        source=where,
        extra=extra,
    )


def write_csv(out: IO[bytes], header: ListHeader, records: Iterable[EntryRecord]) -> int:
    """Write a CSV that :func:`read_csv` reads back to equal records; return the row count.

    ``header`` is unused: CSV has no place for list metadata.
    """
    del header
    if isinstance(records, Sequence):
        return _write(out, records, records)
    with tempfile.SpooledTemporaryFile(max_size=512 << 10, mode="w+b") as spool_file:
        return _write(out, spool(records, spool_file), unspool(spool_file))


def _write(out: IO[bytes], first: Iterable[EntryRecord], second: Iterable[EntryRecord]) -> int:
    type_order: list[HashType] = []
    orders: set[tuple[HashType, ...]] = set()
    many_orders = False
    any_extra = False
    for n, record in enumerate(first, 1):
        if not record.hashes:
            raise ListFormatError("a record without hashes cannot be written", where=f"record {n}")
        types = tuple(t for t, _ in record.hashes)
        for hash_type in types:
            if hash_type not in type_order:
                type_order.append(hash_type)
        if not many_orders and len(types) > 1:
            orders.add(types)
            many_orders = len(orders) > _MAX_ORDERS
        any_extra = any_extra or bool(record.extra)
    if not type_order:
        type_order.append(HashType.MD5)  # an empty list still needs a hash column to be read
    rank = {t: i for i, t in enumerate(type_order)}
    need_order = many_orders or any(list(o) != sorted(o, key=rank.__getitem__) for o in orders)

    names = [t.value for t in type_order] + list(FIELD_ORDER)
    names += [HASH_ORDER] if need_order else []
    names += [EXTRA] if any_extra else []
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        # CRLF (RFC 4180): the writer then quotes cells holding a CR or LF, which read back.
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(names)
        n = 0
        for n, record in enumerate(second, 1):
            writer.writerow(_row(record, type_order, rank, need_order, any_extra, f"record {n}"))
        text.flush()
    finally:
        text.detach()  # leave the caller's binary stream open
    return n


def _row(
    record: EntryRecord,
    type_order: list[HashType],
    rank: dict[HashType, int],
    need_order: bool,
    any_extra: bool,
    where: str,
) -> list[str]:
    cells: dict[HashType, list[str]] = {t: [] for t in type_order}
    for hash_type, value in record.hashes:
        cells[hash_type].append(value)
    victim = record.victim_identified
    row = [" ".join(cells[t]) for t in type_order] + [
        record.category or "",
        record.series or "",
        "" if victim is None else ("true" if victim else "false"),
        join_tags(record.tags, where),
        record.comment or "",
        record.date or "",
        record.status.value,
    ]
    if need_order:
        types = [t for t, _ in record.hashes]
        canonical = sorted(types, key=rank.__getitem__)
        row.append("" if types == canonical else " ".join(t.value for t in types))
    if any_extra:
        row.append(dump_extra(record.extra, where) if record.extra else "")
    return [neutralise(cell) for cell in row]
