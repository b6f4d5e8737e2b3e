"""The PDQ index of a database: persisted beside it, caught up by change sequence.

The index file holds every live PDQ hash of every list under its ``entry_hashes.id``, with
the database's instance id and the change sequence it reflects (the *watermark*). Opening it
loads the file (fast: arrays, no parsing) and applies only the rows changed since the watermark
— new hashes are added, revoked, withdrawn or replaced ones removed — so an import of a few
entries never costs a rebuild. A missing, corrupt or foreign file is rebuilt from the database.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Select, and_, select

from hashwatch.errors import IndexFormatError
from hashwatch.index import MihPdqIndex, PdqIndex, load_index, save_index
from hashwatch.index.base import hex_to_rows
from hashwatch.store.database import Database
from hashwatch.store.models import ENTRIES, HASHES

__all__ = ["SyncedPdqIndex"]

log = logging.getLogger(__name__)
E = ENTRIES
H = HASHES
_LIVE = ("active", "disputed")
_FETCH = 50_000
# The file need not be current (opening catches up from its watermark), so rewriting a large
# index after every small change would be wasted I/O: rewrite once the changes applied since
# the last save reach this many, or 1 % of the index, whichever is larger.
_SAVE_MIN_CHANGES = 10_000


class SyncedPdqIndex:
    """A :class:`PdqIndex` that mirrors the live PDQ hashes of one database.

    ``shard=(k, n)`` mirrors only the hashes whose id is ``k`` modulo ``n`` (one shard of
    :mod:`hashwatch.matching.sharded`); its file records the shard and is rebuilt if another
    shard's is found there.
    """

    def __init__(
        self,
        db: Database,
        path: Path | None,
        *,
        shard: tuple[int, int] | None = None,
        mmap: bool = False,
    ) -> None:
        self.db = db
        self.path = path
        self.shard = shard
        # Map the file's arrays copy-on-write instead of reading them: the server's worker
        # processes then share one copy in the page cache (pages a worker changes, such as
        # tombstones, become its own). Checksums are skipped, the structural checks kept.
        self.mmap = mmap
        self.index: PdqIndex = MihPdqIndex()
        self.watermark = -1
        self.epoch = 0
        self._unsaved = 0
        self._loaded = False

    def open(self) -> SyncedPdqIndex:
        """Load the persisted file if it belongs to this database, then catch up."""
        if self.path is not None and self.path.exists():
            try:
                index, meta = load_index(self.path, mmap=self.mmap)
                if int(meta.get("instance_id", -1)) != self.db.instance_id:
                    log.info("index file %s belongs to another database: rebuilding", self.path)
                elif meta.get("shard") != (list(self.shard) if self.shard else None):
                    log.info("index file %s holds another shard: rebuilding", self.path)
                elif int(meta.get("epoch", 0)) != self.db.meta_value("index_epoch"):
                    log.info("lists were deleted since %s was written: rebuilding", self.path)
                else:
                    self.index = index
                    self.watermark = int(meta.get("watermark", -1))
                    self.epoch = int(meta.get("epoch", 0))
            except IndexFormatError as exc:
                log.warning("index file %s unusable (%s): rebuilding", self.path, exc)
        self._loaded = True
        self.refresh()
        return self

    def refresh(self) -> int:
        """Apply database changes since the watermark; returns the number of rows applied."""
        target = self.db.change_seq()
        epoch = self.db.meta_value("index_epoch")
        if epoch != self.epoch:
            self.watermark = -1
            self.epoch = epoch
        if target == self.watermark:
            return 0
        rebuilt = self.watermark < 0
        applied = self._rebuild() if rebuilt else self._catch_up()
        self.watermark = target
        self._unsaved += applied
        if rebuilt or self._unsaved >= max(_SAVE_MIN_CHANGES, len(self.index) // 100):
            self.save()
        return applied

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_index(
            self.index,
            self.path,
            {
                "instance_id": self.db.instance_id,
                "watermark": self.watermark,
                "epoch": self.epoch,
                **({"shard": list(self.shard)} if self.shard else {}),
            },
        )
        self._unsaved = 0

    def _live_query(self) -> Select[Any]:
        return (
            select(H.c.id, H.c.value, H.c.active, E.c.status)
            .join(E, E.c.id == H.c.entry_id)
            .where(H.c.hash_type == "pdq")
        )

    def _rebuild(self) -> int:
        ids: list[int] = []
        values: list[str] = []
        with self.db.read() as conn:
            query = self._live_query().where(and_(H.c.active, E.c.status.in_(_LIVE)))
            if self.shard is not None:
                query = query.where(H.c.id % self.shard[1] == self.shard[0])
            for row in conn.execute(query.execution_options(yield_per=_FETCH)):
                ids.append(int(row.id))
                values.append(row.value)
        index = MihPdqIndex()
        if ids:
            index.add(np.asarray(ids, dtype=np.int64), hex_to_rows(values))
        self.index = index
        return len(ids)

    def _catch_up(self) -> int:
        add_ids: list[int] = []
        add_values: list[str] = []
        remove_ids: list[int] = []
        w = self.watermark
        # Two queries, each led by its own change_seq index: hashes changed since the
        # watermark, and the hashes of entries changed since it (a status change). One OR
        # across the two joined tables can use neither index, and a filter on the hash type
        # in SQL lets the planner pick the (hash_type, value) index instead: either way every
        # hash of every list is read to find the few that changed (seconds at a million
        # entries for a one-entry add). So the type is filtered here, and a hash found by
        # the first query is skipped in the second.
        cols = (H.c.id, H.c.value, H.c.active, H.c.hash_type, H.c.change_seq, E.c.status)
        joined = H.join(E, E.c.id == H.c.entry_id)
        changed_hashes = select(*cols).select_from(joined).where(H.c.change_seq > w)
        changed_entries = select(*cols).select_from(joined).where(E.c.change_seq > w)
        with self.db.read() as conn:
            for query, skip_new in ((changed_hashes, False), (changed_entries, True)):
                for row in conn.execute(query.execution_options(yield_per=_FETCH)):
                    if row.hash_type != "pdq" or (skip_new and row.change_seq > w):
                        continue
                    if self.shard is not None and row.id % self.shard[1] != self.shard[0]:
                        continue
                    if row.active and row.status in _LIVE:
                        add_ids.append(int(row.id))
                        add_values.append(row.value)
                    else:
                        remove_ids.append(int(row.id))
        if remove_ids:
            self.index.remove(np.asarray(remove_ids, dtype=np.int64))
        if add_ids:
            ids = np.asarray(add_ids, dtype=np.int64)
            self.index.remove(ids)  # re-adding a changed entry must not duplicate it
            self.index.add(ids, hex_to_rows(add_values))
        return len(add_ids) + len(remove_ids)

    def __len__(self) -> int:
        return len(self.index)

    def close(self) -> None:
        """Release what the index holds outside this process (a sharded index's actors)."""
