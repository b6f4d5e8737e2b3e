"""The scan's working state in the case directory: what is done, and every record so far.

A scan writes each finished work unit — its records and the keys of the evidence files it
covered — in ONE SQLite transaction. A scan killed at any moment therefore leaves either all of
a unit or none of it, and ``--resume`` skips exactly the evidence files already done: no file
missing, none twice. Records are upserted by (root, path), so a unit that runs twice changes
nothing. The state file is the scan's own; the evidence is never written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hashwatch.matching.match import Match
from hashwatch.scan.cluster import MediaRow
from hashwatch.scan.model import ItemRecord, ItemStatus

__all__ = ["STATE_FILE", "ScanState"]

STATE_FILE = "scan-state.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS done (key TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS items (
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    thumbnail BLOB,
    PRIMARY KEY (root, path)
);
"""


class ScanState:
    def __init__(self, case_dir: Path) -> None:
        self.path = case_dir / STATE_FILE
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")  # a finished unit survives a power cut
        self.conn.executescript(_SCHEMA)

    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def done_keys(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT key FROM done")}

    def save_unit(self, keys: Iterable[str], records: Iterable[ItemRecord]) -> None:
        """Store a finished unit atomically."""
        with self.conn:  # one transaction
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "INSERT INTO items(root, path, status, record, thumbnail) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(root, path) DO UPDATE SET status = excluded.status, "
                "record = excluded.record, thumbnail = excluded.thumbnail",
                [
                    (r.root, r.path, r.status.value, json.dumps(r.as_json()), r.thumbnail)
                    for r in records
                ],
            )
            self.conn.executemany(
                "INSERT OR IGNORE INTO done(key) VALUES (?)", [(k,) for k in keys]
            )

    def records(self, *, thumbnails: bool = False) -> Iterator[ItemRecord]:
        """Every record, in path order."""
        query = "SELECT record, thumbnail FROM items ORDER BY path, root"
        for record, thumb in self.conn.execute(query):
            item = ItemRecord.from_json(json.loads(record))
            if thumbnails:
                item.thumbnail = thumb
            yield item

    def record_texts(self) -> Iterator[str]:
        """Every record's stored JSON, in path order (not decoded)."""
        for (text,) in self.conn.execute("SELECT record FROM items ORDER BY path, root"):
            yield text

    def summary_records(self) -> Iterator[ItemRecord]:
        """Every record with what the scan's summary counts, in path order: path, root, size,
        status, media type, P2P facts, a new item's EXIF and the matches of a known item or a
        new video (read by ``json_extract``; no other field decoded)."""
        query = """
            SELECT path, root, status, json_extract(record, '$.size'),
                json_extract(record, '$.media_type'), json_extract(record, '$.p2p'),
                CASE WHEN status = :new THEN json_extract(record, '$.exif') END,
                CASE WHEN status = :known OR (status = :new
                    AND json_extract(record, '$.media_type') = 'video')
                THEN json_extract(record, '$.matches') END
            FROM items ORDER BY path, root
        """
        names = {"new": ItemStatus.NEW.value, "known": ItemStatus.KNOWN.value}
        for path, root, status, size, media_type, p2p, exif, matches in self.conn.execute(
            query, names
        ):
            yield ItemRecord(
                path=path,
                root=root,
                size=size,
                status=ItemStatus(status),
                media_type=media_type,
                p2p=json.loads(p2p) if p2p is not None else None,
                exif=json.loads(exif) if exif is not None else None,
                matches=[Match.from_dict(m) for m in json.loads(matches)] if matches else [],
            )

    def files(self) -> Iterator[ItemRecord]:
        """Every record's path, root, size and SHA-256 only (by ``json_extract``, in path
        order): what the manifest's evidence roots are made of."""
        query = (
            "SELECT path, root, json_extract(record, '$.size'), "
            "json_extract(record, '$.sha256') FROM items ORDER BY path, root"
        )
        for path, root, size, sha256 in self.conn.execute(query):
            yield ItemRecord(path=path, root=root, size=size, sha256=sha256)

    def thumbnails(self) -> Iterator[ItemRecord]:
        """The records that have a thumbnail, as path, root and thumbnail only, in path order."""
        query = (
            "SELECT path, root, thumbnail FROM items WHERE thumbnail IS NOT NULL "
            "ORDER BY path, root"
        )
        for path, root, thumbnail in self.conn.execute(query):
            yield ItemRecord(path=path, root=root, thumbnail=thumbnail)

    def new_media(self) -> Iterator[MediaRow]:
        """What clustering reads of every new item, in path order, read with ``json_extract``
        (no record decoded but a video's, whose frames clustering compares)."""
        query = """
            SELECT rowid, path,
                json_extract(record, '$.pdq'), json_extract(record, '$.pdq_quality'),
                json_extract(record, '$.pdq_dihedral'),
                json_extract(record, '$.md5'), json_extract(record, '$.sha256'),
                coalesce(json_extract(record, '$.width'), 0)
                    * coalesce(json_extract(record, '$.height'), 0),
                ((json_type(record, '$.exif.make') IS NOT NULL)
                    OR (json_type(record, '$.exif.model') IS NOT NULL))
                + ((json_type(record, '$.exif.serial') IS NOT NULL) * 2)
                + ((json_type(record, '$.exif.gps') IS NOT NULL) * 4)
                + ((json_type(record, '$.exif.capture_time') IS NOT NULL) * 8),
                CASE WHEN json_array_length(record, '$.frames') > 0 THEN record END
            FROM items WHERE status = ? ORDER BY path, root
        """
        for row in self.conn.execute(query, (ItemStatus.NEW.value,)):
            key, path, pdq, quality, dihedral, md5, sha256, pixels, exif, video = row
            yield MediaRow(
                key=key,
                path=path,
                pdq=pdq,
                pdq_quality=quality,
                dihedral=dihedral,
                md5=md5,
                sha256=sha256,
                pixels=int(pixels or 0),
                exif=int(exif),
                video=ItemRecord.from_json(json.loads(video)) if video else None,
            )

    def set_clusters(self, keys: npt.NDArray[np.int64], numbers: npt.NDArray[np.int64]) -> None:
        """Set the cluster number of the items with these keys (``new_media``'s), in SQLite."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.executemany(
                "UPDATE items SET record = json_set(record, '$.cluster', ?) WHERE rowid = ?",
                (
                    pair
                    for start in range(0, len(keys), 65_536)
                    for pair in zip(
                        numbers[start : start + 65_536].tolist(),
                        keys[start : start + 65_536].tolist(),
                        strict=True,
                    )
                ),
            )

    def close(self) -> None:
        self.conn.close()

    def remove(self) -> None:
        """Delete the state file (with SQLite's journal files) once the outputs are written."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
