"""The PDQ index in N shards held by Ray actors, behind the matcher's usual index.

Chosen by configuration (``HASHWATCH_INDEX=ray-shards:N``); ``ray`` is imported only then.
Shard ``k`` of ``n`` holds the live PDQ hashes whose ``entry_hashes.id`` is ``k`` modulo ``n``
(a :class:`~hashwatch.matching.index_sync.SyncedPdqIndex` with ``shard=(k, n)``): it is loaded
from its own snapshot file beside the database's index (``<index>.shard-k-of-n``) and caught up
from the database's change sequence, exactly as the unsharded index is; PostgreSQL (or the
SQLite file) stays the system of record.

A radius query must reach every shard (any shard may hold a near hash), so
:class:`ShardedPdqIndex` sends the batch to all shards and merges their rows into the canonical
order (query, distance, id): the result equals the unsharded index's. The matcher, ``scan``,
``match``, ``serve`` and ``watch`` use it through :class:`ShardedSyncedIndex`, which has the
unsharded index's interface.

A shard whose actor dies is restarted by Ray (``max_restarts``) and reloads from its snapshot
plus the change log. While it reloads, a query either fails at once with
:class:`ShardUnavailableError` naming the shard (``wait_s=0``), or waits up to ``wait_s``
seconds for it and then fails the same way: a query never returns without every shard's answer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Self

import numpy as np

from hashwatch.errors import ConfigError, HashwatchError
from hashwatch.index.base import HashArray, IdArray, IndexState, PdqIndex, QueryResult
from hashwatch.matching.index_sync import SyncedPdqIndex
from hashwatch.store.database import Database

__all__ = [
    "ShardUnavailableError",
    "ShardedPdqIndex",
    "ShardedSyncedIndex",
    "parse_index_setting",
    "shard_path",
]

# Restarts of a dead shard Ray makes (-1: without limit).
MAX_RESTARTS = -1
# How long a query waits between tries of a reloading shard.
RETRY_S = 0.2


class ShardUnavailableError(HashwatchError):
    """A shard of the PDQ index did not answer (dead or reloading): no partial answer."""


def parse_index_setting(value: str) -> int | None:
    """``HASHWATCH_INDEX``: ``local`` (None: one index in this process) or ``ray-shards:N``."""
    text = value.strip().lower()
    if text in ("", "local"):
        return None
    name, _, count = text.partition(":")
    if name == "ray-shards" and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ConfigError(f"HASHWATCH_INDEX {value!r}: expected 'local' or 'ray-shards:N' (N >= 1)")


def shard_path(index_path: Path | None, shard: int, count: int) -> Path | None:
    """Where shard ``shard`` of ``count`` keeps its snapshot (beside the unsharded index)."""
    if index_path is None:
        return None
    return index_path.with_name(f"{index_path.name}.shard-{shard}-of-{count}")


class PdqShard:
    """One shard, inside a Ray actor: ``SyncedPdqIndex`` over 1/N of the hashes."""

    def __init__(self, database_url: str, path: str | None, shard: int, count: int) -> None:
        self.shard = shard
        self.db = Database(database_url)
        self.synced = SyncedPdqIndex(
            self.db, Path(path) if path else None, shard=(shard, count)
        ).open()

    def refresh(self, rebuild: bool = False) -> tuple[int, int, int]:
        """Catch up with the database (``rebuild``: read the shard's hashes again from it):
        (rows applied, watermark, hashes held)."""
        if rebuild:
            self.synced.watermark = -1
        applied = self.synced.refresh()
        return applied, self.synced.watermark, len(self.synced.index)

    def query(self, hashes: HashArray, radius: int) -> QueryResult:
        return self.synced.index.query(hashes, radius)

    def add(self, ids: IdArray, hashes: HashArray) -> None:
        self.synced.index.add(ids, hashes)

    def remove(self, ids: IdArray) -> None:
        self.synced.index.remove(ids)

    def stats(self) -> tuple[int, int, int]:
        """(hashes held, bytes of arrays, watermark)."""
        index = self.synced.index
        return len(index), index.nbytes, self.synced.watermark

    def save(self) -> None:
        self.synced.save()


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "HASHWATCH_INDEX=ray-shards:N needs Ray: pip install 'hashwatch[ray]'"
        ) from None
    return ray


class ShardedPdqIndex(PdqIndex):
    """The client side: a :class:`PdqIndex` whose hashes live in ``count`` shard actors.

    ``wait_s``: how long a query waits for a shard that is reloading (0: fail at once).
    """

    KIND = "ray-shards"

    def __init__(
        self,
        database_url: str,
        index_path: Path | None,
        count: int,
        *,
        wait_s: float = 0.0,
        address: str | None = None,
    ) -> None:
        ray = self._ray = _ray()
        if not ray.is_initialized():
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False)
        self.count = count
        self.wait_s = wait_s
        self.metadata: dict[str, Any] = {}
        actor = ray.remote(num_cpus=0, max_restarts=MAX_RESTARTS, max_task_retries=0)(PdqShard)
        self.shards = [
            actor.options(scheduling_strategy="SPREAD").remote(
                database_url, str(p) if (p := shard_path(index_path, k, count)) else None, k, count
            )
            for k in range(count)
        ]
        self._size = 0

    # -- calls to every shard ------------------------------------------------------------

    def _all(self, method: str, *args: Any) -> list[Any]:
        """``method(*args)`` on every shard; every answer, or ShardUnavailableError."""
        ray = self._ray
        deadline = time.monotonic() + self.wait_s
        refs = {k: getattr(s, method).remote(*args) for k, s in enumerate(self.shards)}
        answers: dict[int, Any] = {}
        while refs:
            for k, ref in list(refs.items()):
                try:
                    answers[k] = ray.get(ref)  # a live shard answers; a reloading one raises
                    del refs[k]
                except (ray.exceptions.ActorUnavailableError, ray.exceptions.RayActorError) as exc:
                    if time.monotonic() >= deadline:
                        raise self._unavailable(k, exc) from None
                    time.sleep(RETRY_S)  # the shard is reloading: ask it again
                    refs[k] = getattr(self.shards[k], method).remote(*args)
        return [answers[k] for k in range(self.count)]

    def _unavailable(self, shard: int, why: BaseException) -> ShardUnavailableError:
        waited = f" after waiting {self.wait_s:g} s" if self.wait_s else ""
        reason = type(why).__name__
        return ShardUnavailableError(
            f"PDQ index shard {shard} of {self.count} is unavailable (dead or reloading its "
            f"snapshot){waited}: {reason}; no partial answer is given"
        )

    def refresh(self, *, rebuild: bool = False) -> tuple[int, int]:
        """Every shard catches up (or rebuilds from the database): (rows applied, the lowest
        watermark)."""
        answers = self._all("refresh", rebuild)
        self._size = sum(a[2] for a in answers)
        return sum(a[0] for a in answers), min(a[1] for a in answers)

    # -- PdqIndex ------------------------------------------------------------------------

    @classmethod
    def build(cls, ids: IdArray, hashes: HashArray, **params: Any) -> Self:
        raise TypeError("a sharded index is built by its shards from the database")

    def _split(self, ids: IdArray) -> list[np.ndarray[Any, Any]]:
        owner = np.asarray(ids, dtype=np.int64) % self.count
        return [np.flatnonzero(owner == k) for k in range(self.count)]

    def add(self, ids: IdArray, hashes: HashArray) -> None:
        ray = self._ray
        refs = [
            self.shards[k].add.remote(ids[rows], hashes[rows])
            for k, rows in enumerate(self._split(ids))
            if len(rows)
        ]
        ray.get(refs)
        self._size = sum(s[0] for s in self._all("stats"))

    def remove(self, ids: IdArray) -> None:
        ray = self._ray
        refs = [
            self.shards[k].remove.remote(ids[rows])
            for k, rows in enumerate(self._split(ids))
            if len(rows)
        ]
        ray.get(refs)
        self._size = sum(s[0] for s in self._all("stats"))

    def query(self, hashes: HashArray, radius: int) -> QueryResult:
        parts: list[QueryResult] = self._all("query", hashes, radius)
        if not any(len(p) for p in parts):
            return QueryResult.empty()
        return QueryResult.sorted_from(
            np.concatenate([p.query for p in parts]),
            np.concatenate([p.ids for p in parts]),
            np.concatenate([p.distances for p in parts]),
        )

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        return int(sum(s[1] for s in self._all("stats")))

    def to_state(self) -> IndexState:
        raise TypeError("a sharded index is saved by its shards (one snapshot each)")

    @classmethod
    def from_state(cls, state: IndexState) -> Self:
        raise TypeError("a sharded index is loaded by its shards (one snapshot each)")

    def save(self, path: Path | None = None) -> None:
        """Every shard writes its own snapshot (``path`` is not used: each has its own)."""
        self._all("save")

    def close(self) -> None:
        for shard in self.shards:
            self._ray.kill(shard, no_restart=True)
        self.shards = []


class ShardedSyncedIndex(SyncedPdqIndex):
    """What the matcher holds (``Hashwatch.pdq_index``) when the index is sharded: the
    unsharded index's interface, with :class:`ShardedPdqIndex` as its ``index``."""

    def __init__(
        self,
        db: Database,
        path: Path | None,
        count: int,
        *,
        wait_s: float = 0.0,
        address: str | None = None,
    ) -> None:
        super().__init__(db, path)
        self.sharded = ShardedPdqIndex(db.url, path, count, wait_s=wait_s, address=address)
        self.index = self.sharded

    def open(self) -> ShardedSyncedIndex:
        """Each shard has loaded its snapshot and caught up (done when the actors start)."""
        self._loaded = True
        _, self.watermark = self.sharded.refresh()
        return self

    def refresh(self) -> int:
        """Catch up; a watermark set below 0 (``hashwatch index rebuild``) rebuilds every
        shard from the database."""
        applied, self.watermark = self.sharded.refresh(rebuild=self.watermark < 0)
        return applied

    def save(self) -> None:
        self.sharded.save()

    def close(self) -> None:
        self.sharded.close()
