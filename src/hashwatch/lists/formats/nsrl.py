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
what the comment shows. The database is opened read-only through a ``mode=ro`` URI: the
reader never takes a write lock on, or creates, a file it is pointed at.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats._common import check_hash
from hashwatch.lists.model import CategoryScheme, EntryRecord, ListHeader, ListKind, ParsedList
from hashwatch.signals.types import HashType

__all__ = ["NSRL", "connect_readonly", "is_nsrl", "read_nsrl"]

NSRL = "nsrl"

_HASH_COLUMNS = (("md5", HashType.MD5), ("sha1", HashType.SHA1), ("sha256", HashType.SHA256))


def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open ``path`` read-only; never creates it (a plain connect would)."""
    uri = f"{path.resolve().as_uri()}?mode=ro"  # as_uri percent-encodes '?', '#', spaces
    try:
        return sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise ListFormatError(f"cannot open SQLite database {path}: {exc}") from None


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]).lower() for row in db.execute(f"PRAGMA table_info({table})")]


def is_nsrl(db: sqlite3.Connection) -> bool:
    """True when the database has an RDSv3 ``FILE`` table with at least one digest column."""
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


def read_nsrl(path: Path, *, default_hash_type: HashType | None = None) -> ParsedList:
    """Open an RDSv3 database; ``default_hash_type`` is unused (columns name the digests)."""
    del default_hash_type
    db = connect_readonly(path)
    try:
        try:
            if not is_nsrl(db):
                raise ListFormatError(f"{path} is SQLite but has no NSRL RDSv3 FILE table")
            metadata: dict[str, Any] = {}
            if _columns(db, "VERSION"):
                cursor = db.execute("SELECT * FROM VERSION LIMIT 1")
                row = cursor.fetchone()
                if row is not None:
                    metadata = {d[0]: v for d, v in zip(cursor.description, row, strict=True)}
        except sqlite3.DatabaseError as exc:
            raise ListFormatError(f"cannot read SQLite database {path}: {exc}") from None
    finally:
        db.close()
    header = ListHeader(
        format=NSRL,
        scheme=CategoryScheme.NONE,
        suggested_kind=ListKind.IGNORABLE,
        metadata=metadata,
    )
    return ParsedList(header=header, records=_iter_hashes(path))


def _iter_hashes(path: Path) -> Iterator[EntryRecord]:
    db = connect_readonly(path)
    try:
        yield from _select(db)
    except sqlite3.DatabaseError as exc:
        raise ListFormatError(f"cannot read SQLite database {path}: {exc}") from None
    finally:
        db.close()


def _select(db: sqlite3.Connection) -> Iterator[EntryRecord]:
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
