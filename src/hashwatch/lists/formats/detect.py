"""Recognise a list file's format from its content; the file name is never trusted.

Investigators receive lists renamed by mail gateways, case systems and colleagues
(``hashes.txt`` that is VICS JSON, ``export.json`` that is CSV), so only bytes count:

1. SQLite magic and an RDSv3 ``FILE`` table -> ``nsrl``;
2. JSON (after a byte-order mark and whitespace) whose OData context names VICS 1.x or
   2.0, or a bare ``{"value": [...]}`` hash set -> ``vics1``/``vics2``;
3. a first line that is a CSV header naming a hash column -> ``csv``;
4. ``frame,quality,hex,timestamp`` lines (after optional ``#`` comments) -> ``vpdq``;
5. lines of hashes (bare or ``<type> <hash>``, comments allowed) -> ``text``.

Anything else raises :class:`ListFormatError` saying what the file looked like.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats import csv_format, nsrl, text, vics, vpdq
from hashwatch.signals.types import HashType

__all__ = ["detect_format"]

SQLITE_MAGIC = b"SQLite format 3\x00"
HEAD_BYTES = 64 * 1024
_TEXT_LINES_CHECKED = 5


def detect_format(path: str | Path, display_name: str | None = None) -> str:
    """Name the format of the list at ``path`` ("nsrl", "vics1", "vics2", "csv", "vpdq", "text").

    Messages name the file as ``display_name`` when given (an upload's own name, never the
    server's spool path), else as ``path``."""
    path = Path(path)
    shown = display_name if display_name is not None else str(path)
    with path.open("rb") as f:
        head = f.read(HEAD_BYTES)
    if not head.strip():
        raise ListFormatError(f"{shown} is empty")
    if head.startswith(SQLITE_MAGIC):
        return _detect_sqlite(path, shown)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ListFormatError(f"{shown} is UTF-16 text; save it as UTF-8 and import again")
    body = head.removeprefix(vics.BOM)
    if b"\x00" in body:
        raise ListFormatError(f"{shown} is a binary file, not a hash list (NUL bytes found)")
    stripped = body.lstrip()
    if stripped.startswith((b"{", b"[")):
        return _detect_json(path, shown)
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(body) - 3:  # not just a character cut by the 64 KiB boundary
            raise ListFormatError(f"{shown} is neither UTF-8 text nor a known format") from None
        decoded = body[: exc.start].decode("utf-8")
    return _detect_lines(shown, decoded, complete=len(head) < HEAD_BYTES)


def _detect_sqlite(path: Path, shown: str) -> str:
    db = nsrl.connect_readonly(path, display_name=shown)
    try:
        found = nsrl.is_nsrl(db)
    except sqlite3.DatabaseError as exc:
        raise ListFormatError(f"{shown} is an unreadable SQLite database: {exc}") from None
    finally:
        db.close()
    if not found:
        raise ListFormatError(
            f"{shown} is a SQLite database with no NSRL RDSv3 FILE table (a table, not a view, "
            "with a stored md5, sha1 or sha256 column)"
        )
    return nsrl.NSRL


def _detect_json(path: Path, shown: str) -> str:
    """JSON must be VICS; the header scan reads only the start of the file."""
    try:
        layout = vics.scan_header(path)
    except ListFormatError as exc:
        raise ListFormatError(f"{shown} is JSON but not a VICS list: {exc}") from None
    return layout.format


def _detect_lines(shown: str, decoded: str, complete: bool) -> str:
    lines = decoded.splitlines()
    if not complete and len(lines) > 1:
        lines.pop()  # may be cut by the end of the head read
    first = lines[0] if lines else ""
    if csv_format.parse_header_line(first) is not None:
        return csv_format.CSV
    data = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if data and vpdq.looks_like_vpdq(data[0]):
        return vpdq.VPDQ
    checked = 0
    for n, line in enumerate(lines, 1):
        try:
            # SHA-256 as the default only lets a bare 64-hex value pass the shape check;
            # reading will still ask which type it is.
            if text.parse_line(line, f"line {n}", HashType.SHA256) is not None:
                checked += 1
        except ListFormatError as exc:
            line1 = first if len(first) <= 60 else first[:57] + "..."
            raise ListFormatError(
                f"{shown} is not a recognised hash list: line 1 {line1!r} is no CSV header "
                f"naming hash columns, and line {n} is not a hash ({exc})"
            ) from None
        if checked >= _TEXT_LINES_CHECKED:
            break
    if checked == 0:
        raise ListFormatError(f"{shown} holds no hash (only blank or comment lines)")
    return text.TEXT
