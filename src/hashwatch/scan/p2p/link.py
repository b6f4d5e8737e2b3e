"""P2P records linked to the files of the same scan that they name.

A record whose file is also in the evidence (the same ED2K, SHA-1, Gnutella SHA-1, MD5,
SHA-256 or BitTorrent v2 root — any registered exact hash the record holds) is linked to that
file once every unit of the scan is stored: the record gets ``p2p["linked_paths"]``, the file
a note naming the records (``p2p: named by ...``).

Done in the main process over the scan's state database, in bounded memory: the records'
hashes are read first (one small tuple per record hash), then the files' values of those
hash fields only, each looked up in that index; only the records and files that link are
rewritten.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from hashwatch.scan.state import ScanState
from hashwatch.signals.types import SIGNAL_TYPES

__all__ = ["MAX_LINKS_SHOWN", "LinkCount", "link_p2p_records"]

MAX_LINKS_SHOWN = 20  # paths named in one record's links or in one file's note
_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class LinkCount:
    records: int = 0  # P2P records linked to at least one file
    files: int = 0  # files named by at least one record
    by_record: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def _exact_fields() -> list[str]:
    """The JSON fields of registered exact hash types (those a record and a file share)."""
    out: list[str] = []
    for impl in SIGNAL_TYPES.values():
        if impl.is_exact and impl.query:
            out.extend(f for f in impl.fields if _FIELD.match(f))
    return list(dict.fromkeys(out))


def link_p2p_records(state: ScanState) -> LinkCount:
    """Link every P2P record of the scan to the evidence files with one of its hashes."""
    conn = state.conn
    fields = _exact_fields()
    index: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    used: set[str] = set()
    every = ", ".join(f"json_extract(record, '$.{f}')" for f in fields)
    rows = conn.execute(
        f"SELECT root, path, {every} FROM items "  # fields: registry names, checked
        "WHERE json_extract(record, '$.p2p') IS NOT NULL"
    )
    for root, path, *values in rows:
        for name, value in zip(fields, values, strict=True):
            if isinstance(value, str) and value:
                index[(name, value)].append((root, path))
                used.add(name)
    count = LinkCount()
    if not index:
        return count
    wanted = [f for f in fields if f in used]
    columns = ", ".join(f"json_extract(record, '$.{f}')" for f in wanted)
    links: dict[tuple[str, str], list[str]] = defaultdict(list)  # record -> file paths
    named_by: dict[tuple[str, str], list[str]] = defaultdict(list)  # file -> record paths
    query = (
        f"SELECT root, path, {columns} FROM items "  # fields: registry names, checked
        "WHERE json_extract(record, '$.p2p') IS NULL"
    )
    for root, path, *values in conn.execute(query):
        for name, value in zip(wanted, values, strict=True):
            for record_key in index.get((name, value), ()) if value else ():
                if path not in links[record_key]:
                    links[record_key].append(path)
                if record_key[1] not in named_by[(root, path)]:
                    named_by[(root, path)].append(record_key[1])
    _rewrite(state, links, named_by)
    count.records, count.files, count.by_record = len(links), len(named_by), dict(links)
    return count


def _shown(paths: list[str]) -> str:
    more = len(paths) - MAX_LINKS_SHOWN
    text = ", ".join(paths[:MAX_LINKS_SHOWN])
    return f"{text} and {more:,} more" if more > 0 else text


def _rewrite(
    state: ScanState,
    links: dict[tuple[str, str], list[str]],
    named_by: dict[tuple[str, str], list[str]],
) -> None:
    """Write the links into the records' JSON, in one transaction."""
    conn = state.conn
    with conn:
        conn.execute("BEGIN")
        for (root, path), files in links.items():
            _update(state, root, path, partial(_set_links, files=files))
        for (root, path), records in named_by.items():
            note = f"P2P: the file of {len(records):,} P2P record(s): {_shown(records)}"
            _update(state, root, path, partial(_add_note, note=note))


def _set_links(data: dict[str, Any], files: list[str]) -> None:
    p2p = data.get("p2p")
    if isinstance(p2p, dict):
        p2p["linked_paths"] = files[:MAX_LINKS_SHOWN]
        p2p["linked_count"] = len(files)


def _add_note(data: dict[str, Any], note: str) -> None:
    old = data.get("note")
    if isinstance(old, str) and old:
        if note in old:
            return
        note = f"{old}; {note}"
    data["note"] = note


def _update(
    state: ScanState, root: str, path: str, change: Callable[[dict[str, Any]], None]
) -> None:
    row = state.conn.execute(
        "SELECT record FROM items WHERE root = ? AND path = ?", (root, path)
    ).fetchone()
    if row is None:
        return
    data = json.loads(row[0])
    change(data)
    state.conn.execute(
        "UPDATE items SET record = ? WHERE root = ? AND path = ?",
        (json.dumps(data), root, path),
    )
