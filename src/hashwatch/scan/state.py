"""The scan's working state in the case directory: what is done, and every record so far.

A scan writes each finished work unit — its records and the keys of the evidence files it
covered — in ONE SQLite transaction. A scan killed at any moment therefore leaves either all of
a unit or none of it, and ``--resume`` skips exactly the evidence files already done: no file
missing, none twice. Records are upserted by (root, path), so a unit that runs twice changes
nothing. The state file is the scan's own; the evidence is never written.

The finish writes the case's outputs from here without holding a list of every record: it
reads records in path order, clusters the new media from columns read by ``json_extract``,
stores the clusters (read back in number order), and has SQL group the records by MD5 for the
VICS case (:meth:`ScanState.by_md5`, temporary tables).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hashwatch.matching.match import Match
from hashwatch.scan.cluster import MediaRow
from hashwatch.scan.model import Cluster, ItemRecord, ItemStatus

__all__ = ["STATE_FILE", "Md5Candidate", "Md5Row", "ScanState"]

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
CREATE TABLE IF NOT EXISTS clusters (
    number INTEGER PRIMARY KEY,
    size INTEGER NOT NULL,
    cluster TEXT NOT NULL
);
"""
# Records that may be a VICS Media, in path order: P2P client records, known records, images
# and videos (``hashwatch.report.vics_case`` decides; the rest cannot be one).
_VICS_CANDIDATES = """
    SELECT rowid, status, json_extract(record, '$.md5'), json_extract(record, '$.media_type'),
        json_extract(record, '$.cluster'), json_extract(record, '$.p2p') IS NOT NULL,
        CASE WHEN status = :known THEN json_extract(record, '$.matches') END
    FROM items
    WHERE json_extract(record, '$.p2p') IS NOT NULL OR status = :known
        OR json_extract(record, '$.media_type') IN ('image', 'video')
    ORDER BY path, root
"""
_MD5_DROP = """
DROP TABLE IF EXISTS temp.md5_rows;
DROP TABLE IF EXISTS temp.md5_groups;
DROP TABLE IF EXISTS temp.md5_order;
DROP TABLE IF EXISTS temp.p2p_rows;
"""
_MD5_TABLES = (
    _MD5_DROP
    + """
CREATE TEMP TABLE md5_rows (
    seq INTEGER PRIMARY KEY, md5 TEXT NOT NULL, key INTEGER NOT NULL, known INTEGER NOT NULL,
    rank INTEGER NOT NULL, cluster INTEGER, scheme TEXT
);
CREATE TEMP TABLE p2p_rows (seq INTEGER PRIMARY KEY, key INTEGER NOT NULL);
"""
)
_MD5_GROUPS = """
CREATE INDEX temp.md5_rows_md5 ON md5_rows (md5, seq);
CREATE TEMP TABLE md5_groups AS
    SELECT md5, min(seq) AS first,
        coalesce(min(CASE WHEN known THEN seq END), min(seq)) AS representative
    FROM md5_rows GROUP BY md5;
CREATE TEMP TABLE md5_order AS
    SELECT m.md5 AS md5, m.key AS key, m.seq = g.representative AS representative
    FROM md5_groups g JOIN md5_rows r ON r.seq = g.representative
        JOIN md5_rows m ON m.md5 = g.md5
    ORDER BY r.rank, coalesce(r.cluster, 4611686018427387904), g.first, m.seq;
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

    def records(self, *, thumbnails: bool = False, dihedral: bool = True) -> Iterator[ItemRecord]:
        """Every record, in path order; without its dihedral hashes (``pdq_dihedral`` None,
        half a picture's JSON left undecoded) if not ``dihedral``."""
        text = "record" if dihedral else "json_remove(record, '$.pdq_dihedral')"
        query = f"SELECT {text}, thumbnail FROM items ORDER BY path, root"
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

    def set_cluster_list(self, clusters: Iterable[Cluster]) -> None:
        """Store the clusters (``clusters.jsonl``'s lines) so that the outputs read them back
        from here, in number order, instead of holding them."""
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("DELETE FROM clusters")  # a resumed finish clusters again
            self.conn.executemany(
                "INSERT INTO clusters(number, size, cluster) VALUES (?, ?, ?)",
                (
                    (cl.number, len(cl.members), json.dumps(cl.as_json(), ensure_ascii=False))
                    for cl in clusters
                ),
            )

    def cluster_list(self, limit: int | None = None) -> Iterator[Cluster]:
        """The stored clusters in number order (the first ``limit`` of them)."""
        query = "SELECT cluster FROM clusters ORDER BY number LIMIT ?"
        for (text,) in self.conn.execute(query, (-1 if limit is None else limit,)):
            yield Cluster(**json.loads(text))

    def cluster_texts(self) -> Iterator[str]:
        """The stored clusters in number order as their JSON text (``clusters.jsonl``'s
        lines: ``json.dumps(cluster.as_json(), ensure_ascii=False)``)."""
        for (text,) in self.conn.execute("SELECT cluster FROM clusters ORDER BY number"):
            yield text

    def cluster_sizes(self) -> Iterator[int]:
        """Each stored cluster's number of members, in number order."""
        for (size,) in self.conn.execute("SELECT size FROM clusters ORDER BY number"):
            yield size

    def md5_candidates(self) -> Iterator[Md5Candidate]:
        """What decides which records are VICS Media, in path order, for every record that
        may be one: a P2P client record, a known record, an image or a video (the rest are
        not read). A known record's matches come as JSON text."""
        names = {"known": ItemStatus.KNOWN.value}
        for key, status, md5, media_type, cluster, p2p, matches in self.conn.execute(
            _VICS_CANDIDATES, names
        ):
            yield Md5Candidate(key, status, md5, media_type, cluster, bool(p2p), matches)

    def by_md5(self, rows: Iterable[Md5Row], p2p_keys: Iterable[int]) -> Md5Groups:
        """Group records by MD5 in SQL (temporary tables beside the state): ``rows`` are the
        records that are Media, in path order. See :class:`Md5Groups`."""
        self.conn.executescript(_MD5_TABLES)
        insert = "INSERT INTO md5_rows(md5, key, known, rank, cluster, scheme) VALUES (?,?,?,?,?,?)"
        with self.conn:  # one transaction (temporary tables: nothing of the scan's changes)
            self.conn.execute("BEGIN")
            self.conn.executemany(insert, rows)
            self.conn.executemany("INSERT INTO p2p_rows(key) VALUES (?)", ((k,) for k in p2p_keys))
        self.conn.executescript(_MD5_GROUPS)
        return Md5Groups(self.conn)

    def close(self) -> None:
        self.conn.close()

    def remove(self) -> None:
        """Delete the state file (with SQLite's journal files) once the outputs are written."""
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)


@dataclass(frozen=True)
class Md5Candidate:
    """A record that may be a VICS Media (:meth:`ScanState.md5_candidates`)."""

    key: int
    status: str
    md5: str | None
    media_type: str | None
    cluster: int | None
    p2p: bool
    matches: str | None  # a known record's matches, JSON text


# (MD5, record key, is known, rank of the status, cluster, category scheme of its first
# decisive known match or None): one Media file, as :meth:`ScanState.by_md5` takes it.
Md5Row = tuple[str, int, bool, int, int | None, str | None]


class Md5Groups:
    """Records grouped by MD5 in SQL, for the VICS case.

    A group's *representative* is its first known record in path order, else its first
    record. Groups come ordered by the representative's status rank, then its cluster (none
    last), then the group's first record in path order; each group's records in path order.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def top_scheme(self) -> str | None:
        """The category scheme most known representatives carry (the group that comes
        first in path order wins a tie)."""
        row = self.conn.execute(
            "SELECT r.scheme FROM md5_groups g JOIN md5_rows r ON r.seq = g.representative "
            "WHERE r.known AND r.scheme IS NOT NULL "
            "GROUP BY r.scheme ORDER BY count(*) DESC, min(g.first) LIMIT 1"
        ).fetchone()
        return None if row is None else str(row[0])

    def groups(self) -> Iterator[tuple[str, ItemRecord, Sequence[ItemRecord]]]:
        """``(md5, representative record, every record of the MD5)`` in the order above; the
        representative whole but for its dihedral hashes (half its JSON: no entry names
        them), the others as path, mtime and disk facts only (thumbnails never read)."""
        query = """
            SELECT o.md5,
                CASE WHEN o.representative THEN json_remove(i.record, '$.pdq_dihedral') END,
                i.path, i.root,
                json_extract(i.record, '$.mtime'), json_extract(i.record, '$.disk')
            FROM md5_order o JOIN items i ON i.rowid = o.key ORDER BY o.rowid
        """
        md5: str | None = None
        representative: ItemRecord | None = None
        files: list[ItemRecord] = []
        for group, whole, path, root, mtime, disk in self.conn.execute(query):
            if group != md5:
                if md5 is not None and representative is not None:
                    yield md5, representative, files
                md5, representative, files = group, None, []
            if whole is not None:
                representative = ItemRecord.from_json(json.loads(whole))
                files.append(representative)
            else:
                facts = json.loads(disk) if disk is not None else None
                files.append(ItemRecord(path=path, root=root, mtime=mtime, disk=facts))
        if md5 is not None and representative is not None:
            yield md5, representative, files

    def p2p_records(self) -> Iterator[ItemRecord]:
        """The P2P records given to :meth:`ScanState.by_md5`, in path order."""
        query = "SELECT i.record FROM p2p_rows p JOIN items i ON i.rowid = p.key ORDER BY p.seq"
        for (text,) in self.conn.execute(query):
            yield ItemRecord.from_json(json.loads(text))

    def close(self) -> None:
        """Drop the temporary tables."""
        self.conn.executescript(_MD5_DROP)
