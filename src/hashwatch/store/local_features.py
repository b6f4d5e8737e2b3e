"""Feature sets of list entries: written with an audit record, read for matching.

Only media the curator holds gets features (``lists add-media`` on a list with local features
on); entries imported from files or synced from partners carry hashes only. Nothing here is
read by list exports or exchange feeds, which select from the entry and hash tables alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, select

from hashwatch.signals.local_features import FEATURES_VERSION, FeatureSet
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_status import list_lock, list_row
from hashwatch.store.local_feature_models import ENTRY_FEATURES
from hashwatch.store.models import ENTRIES, LISTS, utcnow

__all__ = ["LocalFeatureStore", "StoredFeatures"]

F = ENTRY_FEATURES
E = ENTRIES
L = LISTS
_LIVE = ("active", "disputed")


@dataclass(frozen=True)
class StoredFeatures:
    entry_id: int
    list_id: int
    features: FeatureSet


class LocalFeatureStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(
        self, list_name: str, by_key: Mapping[str, FeatureSet], *, actor: str | None = None
    ) -> int:
        """Store the feature sets of the entries of ``list_name`` keyed ``by_key`` (entry
        keys, ``md5:<hex>``), replacing older sets; one audit record with the count (never
        the features). Returns how many were stored."""
        if not by_key:
            return 0
        with self.db.write(list_lock(list_name)) as conn:
            row = list_row(conn, list_name)
            keys = list(by_key)
            entries: dict[str, int] = {}
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                for entry_id, key in conn.execute(
                    select(E.c.id, E.c.key).where(and_(E.c.list_id == row.id, E.c.key.in_(chunk)))
                ):
                    entries[str(key)] = int(entry_id)
            if not entries:
                return 0
            ids = list(entries.values())
            for start in range(0, len(ids), 1000):
                conn.execute(delete(F).where(F.c.entry_id.in_(ids[start : start + 1000])))
            now = utcnow()
            conn.execute(
                insert(F),
                [
                    {
                        "entry_id": entry_id,
                        "list_id": row.id,
                        "version": FEATURES_VERSION,
                        "keypoints": len(by_key[key]),
                        "data": by_key[key].to_bytes(),
                        "created_at": now,
                    }
                    for key, entry_id in entries.items()
                ],
            )
            record_audit(
                conn,
                actor=actor,
                action="list.features_added",
                target=list_name,
                details={"entries": len(entries), "features_version": FEATURES_VERSION},
            )
            return len(entries)

    def load(self, list_ids: Sequence[int]) -> Iterator[StoredFeatures]:
        """The feature sets of the live entries of ``list_ids`` in the current version."""
        if not list_ids:
            return
        query = (
            select(F.c.entry_id, F.c.list_id, F.c.data)
            .join(E, E.c.id == F.c.entry_id)
            .where(
                and_(
                    F.c.list_id.in_(list(list_ids)),
                    F.c.version == FEATURES_VERSION,
                    E.c.status.in_(_LIVE),
                )
            )
            .order_by(F.c.entry_id)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        for entry_id, list_id, data in rows:
            yield StoredFeatures(int(entry_id), int(list_id), FeatureSet.from_bytes(bytes(data)))

    def count(self, list_name: str) -> int:
        """How many entries of the list hold a feature set."""
        from sqlalchemy import func

        with self.db.read() as conn:
            row = list_row(conn, list_name)
            return int(
                conn.execute(
                    select(func.count()).select_from(F).where(F.c.list_id == row.id)
                ).scalar_one()
            )
