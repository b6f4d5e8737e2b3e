"""NIST NSRL RDSv3: a SQLite database of known software files, read as an ignorable list.

The RDS has hundreds of millions of ``FILE`` rows and ~190 M distinct MD5s, so two shortcuts
that look natural are avoided:

* ``DISTINCT_HASH`` (``SELECT DISTINCT``) builds a temporary B-tree of every key and carries
  no file name; measured on a generated 1 M-row RDS it took 4.9 s against 1.9 s for the query
  below.
* Deduplicating in Python with a set would hold every hash in memory.

Instead the rows are read ordered by one digest (``ORDER BY md5``; with an index leading on
a digest column SQLite walks the index and needs no temporary space, without one it sorts
with bounded memory), so equal triples arrive together and only the triples of the current
digest are remembered. The first row of a triple gives its file name and product, which is
what the comment shows.

An RDS file is input from outside, so it is read defensively. It is opened read-only and
immutable (``mode=ro&immutable=1``: no lock, no journal, never created), with untrusted schema
functions off, ``query_only`` on and a 1 MB bound on any string or blob. ``FILE``, ``PKG`` and
``VERSION`` must be real tables (a crafted file can make ``FILE`` a recursive view that never
ends) and the columns read must be stored ones, not generated. A progress handler bounds the
work SQLite may do between two records (:class:`ReadBudget`: VM steps and seconds, both
growing with the file's size so an honest, unindexed RDS can still be sorted).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats._common import check_hash
from hashwatch.lists.model import CategoryScheme, EntryRecord, ListHeader, ListKind, ParsedList
from hashwatch.signals.types import HashType

__all__ = ["NSRL", "ReadBudget", "connect_readonly", "is_nsrl", "read_nsrl"]

NSRL = "nsrl"

_HASH_COLUMNS = (("md5", HashType.MD5), ("sha1", HashType.SHA1), ("sha256", HashType.SHA256))


_CHECK_EVERY = 10_000  # SQLite VM instructions between two calls of the progress handler
_MAX_VALUE = 1 << 20  # bytes of the longest string or blob a query may make


class ReadBudget:
    """How much work SQLite may do between two records before the read is abandoned.

    ``steps`` VM instructions and ``seconds``, each at least the floor given and growing with
    the file (an unindexed RDS is sorted before its first record: a few steps per byte)."""

    def __init__(self, size: int, *, steps: int = 50_000_000, seconds: float = 60.0) -> None:
        self.steps = max(steps, 20 * size)
        self.seconds = max(seconds, size / 5e6)
        self.exceeded = False
        self.reset()

    def reset(self) -> None:
        self.used = 0
        self.since = time.monotonic()

    def __call__(self) -> int:
        self.used += _CHECK_EVERY
        if self.used > self.steps or time.monotonic() - self.since > self.seconds:
            self.exceeded = True
            return 1  # SQLite stops the statement: OperationalError "interrupted"
        return 0

    def error(self, shown: str) -> ListFormatError:
        return ListFormatError(
            f"reading {shown} took more than {self.steps} steps or {self.seconds:.0f} s "
            "without a record: not a plain NSRL RDSv3 database"
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # opening it says why


def connect_readonly(
    path: Path, budget: ReadBudget | None = None, *, display_name: str | None = None
) -> sqlite3.Connection:
    """Open ``path`` read-only and immutable, bounded by ``budget`` (default: one for the
    file's size); never creates it (a plain connect would). Messages name the file as
    ``display_name`` when given."""
    # as_uri percent-encodes '?', '#', spaces
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        db = sqlite3.connect(uri, uri=True)
        db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _MAX_VALUE)
        db.set_progress_handler(budget or ReadBudget(_size(path)), _CHECK_EVERY)
        db.execute("PRAGMA trusted_schema = OFF")
        db.execute("PRAGMA query_only = ON")
    except (OSError, sqlite3.Error) as exc:
        shown = display_name if display_name is not None else str(path)
        raise ListFormatError(f"cannot open SQLite database {shown}: {exc}") from None
    return db


def _schema_type(db: sqlite3.Connection, name: str) -> str | None:
    """What ``name`` is in the schema ("table", "view", ...), or None when it is absent."""
    row = db.execute(
        "SELECT type FROM sqlite_schema WHERE name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return None if row is None else str(row[0])


def _is_table(db: sqlite3.Connection, table: str) -> bool:
    return _schema_type(db, table) == "table"


def _check_side_tables(db: sqlite3.Connection, shown: str) -> None:
    """``PKG`` and ``VERSION`` are optional, but when present must be real tables: a view
    (possibly recursive) would run arbitrary queries on every record read."""
    for name in ("PKG", "VERSION"):
        kind = _schema_type(db, name)
        if kind is not None and kind != "table":
            raise ListFormatError(
                f"{shown} is not a plain NSRL RDSv3 database: {name} is a {kind}, not a table"
            )


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    """The stored columns of ``table`` (none when it is not a real table): generated and
    hidden columns compute on read and are left out."""
    if not _is_table(db, table):
        return []
    return [str(row[1]).lower() for row in db.execute(f"PRAGMA table_xinfo({table})") if not row[6]]


def is_nsrl(db: sqlite3.Connection) -> bool:
    """True when the database has an RDSv3 ``FILE`` table (a real one, not a view) with at
    least one stored digest column."""
    columns = _columns(db, "FILE")
    return any(name in columns for name, _ in _HASH_COLUMNS)


def _order_column(db: sqlite3.Connection, hash_columns: list[str]) -> str:
    """The digest column to order by: one that leads an index if there is one (no sort)."""
    for index in db.execute("PRAGMA index_list(FILE)").fetchall():
        info = db.execute(f"PRAGMA index_info({_quote(str(index[1]))})").fetchall()
        if info and str(info[0][2]).lower() in hash_columns:
            return str(info[0][2]).lower()
    return hash_columns[0]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_nsrl(
    path: Path, *, default_hash_type: HashType | None = None, display_name: str | None = None
) -> ParsedList:
    """Open an RDSv3 database; ``default_hash_type`` is unused (columns name the digests).
    Messages name the file as ``display_name`` when given, else as ``path``."""
    del default_hash_type
    shown = display_name if display_name is not None else str(path)
    budget = ReadBudget(_size(path))
    db = connect_readonly(path, budget, display_name=shown)
    try:
        try:
            if not is_nsrl(db):
                raise ListFormatError(
                    f"{shown} is SQLite but has no NSRL RDSv3 FILE table (a table, not a view, "
                    "with a stored md5, sha1 or sha256 column)"
                )
            _check_side_tables(db, shown)
            metadata: dict[str, Any] = {}
            if _columns(db, "VERSION"):
                cursor = db.execute("SELECT * FROM VERSION LIMIT 1")
                row = cursor.fetchone()
                if row is not None:
                    metadata = {d[0]: v for d, v in zip(cursor.description, row, strict=True)}
        except sqlite3.DatabaseError as exc:
            if budget.exceeded:
                raise budget.error(shown) from None
            raise ListFormatError(f"cannot read SQLite database {shown}: {exc}") from None
    finally:
        db.close()
    header = ListHeader(
        format=NSRL,
        scheme=CategoryScheme.NONE,
        suggested_kind=ListKind.IGNORABLE,
        metadata=metadata,
    )
    return ParsedList(header=header, records=_iter_hashes(path, shown))


def _iter_hashes(path: Path, shown: str) -> Iterator[EntryRecord]:
    budget = ReadBudget(_size(path))
    db = connect_readonly(path, budget, display_name=shown)
    try:
        yield from _select(db, budget)
    except sqlite3.DatabaseError as exc:
        if budget.exceeded:
            raise budget.error(shown) from None
        raise ListFormatError(f"cannot read SQLite database {shown}: {exc}") from None
    finally:
        db.close()


def _select(db: sqlite3.Connection, budget: ReadBudget) -> Iterator[EntryRecord]:
    columns = _columns(db, "FILE")
    hashes = [(name, t) for name, t in _HASH_COLUMNS if name in columns]
    hash_names = [name for name, _ in hashes]
    select = [f"f.{name}" for name in hash_names]
    extras = [name for name in ("crc32", "file_size") if name in columns]
    select += [f"f.{name}" for name in extras]
    select.append("f.file_name" if "file_name" in columns else "NULL")
    pkg = _columns(db, "PKG")
    join = ""
    if "package_id" in columns and "package_id" in pkg and "name" in pkg:
        join = " LEFT JOIN PKG p ON p.package_id = f.package_id"
        select += ["p.name", "p.version" if "version" in pkg else "NULL"]
    else:
        select += ["NULL", "NULL"]
    order = _order_column(db, hash_names)
    query = f"SELECT {', '.join(select)} FROM FILE f{join} ORDER BY f.{order}"
    n_hash, n_extra = len(hashes), len(extras)
    key_at = hash_names.index(order)
    current_key: object = None
    seen: set[tuple[Any, ...]] = set()
    n = 0
    for row in db.execute(query):
        budget.reset()  # the budget bounds the work between two rows
        triple = row[:n_hash]
        if triple[key_at] != current_key:
            current_key = triple[key_at]
            seen.clear()
        elif triple in seen:
            continue
        seen.add(triple)
        n += 1
        where = f"record {n}"
        found = tuple(
            (hash_type, check_hash(hash_type, value, where, name))
            for (name, hash_type), value in zip(hashes, triple, strict=True)
            if value
        )
        if not found:
            raise ListFormatError("FILE row without any digest", where=where)
        extra: dict[str, Any] = {
            name: value
            for name, value in zip(extras, row[n_hash : n_hash + n_extra], strict=True)
            if value is not None
        }
        file_name, product, version = row[n_hash + n_extra :]
        yield EntryRecord(
            hashes=found,
            comment=_comment(file_name, product, version),
            source=where,
            extra=extra,
        )


def _comment(file_name: Any, product: Any, version: Any) -> str | None:
    label = " ".join(str(p) for p in (product, version) if p)
    if file_name and label:
        return f"{file_name} ({label})"
    return str(file_name) if file_name else (label or None)
