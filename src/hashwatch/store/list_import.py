"""Applying one import to a list, a batch of records at a time (see :mod:`.lists`).

Every field is checked against its column's size before it is written, alike on SQLite
(which would store it) and PostgreSQL (which would fail the statement and log it): a field
too long is an error naming the record, never a database error carrying list data.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, and_, bindparam, insert, select, update

from hashwatch.errors import ConfigError, ListFormatError
from hashwatch.lists.categories import check_category
from hashwatch.lists.model import (
    EntryRecord,
    EntryStatus,
    ListHeader,
    VideoFrameHash,
    matchable_frames,
)
from hashwatch.runner import make_units
from hashwatch.signals.types import HashType
from hashwatch.store.models import ENTRIES, EVENTS, HASHES, IMPORTS, utcnow

if TYPE_CHECKING:
    from hashwatch.store.lists import ImportReport

__all__ = [
    "CATEGORY_SIZE",
    "LIVE",
    "ImportContext",
    "batches",
    "check_category_map",
    "check_text",
    "check_withdrawal",
    "checked_categories",
    "entry_records",
    "finish_import",
    "jsonable_header",
]

BATCH = 2000
LIVE = (EntryStatus.ACTIVE.value, EntryStatus.DISPUTED.value)
E = ENTRIES
H = HASHES
EV = EVENTS


def check_text(
    what: str, value: str | None, column: Column[Any] | None, *, limit: int | None = None
) -> str | None:
    """``value`` if it fits ``column`` (or ``limit``), else :class:`ConfigError` saying so."""
    size = limit if limit is not None else getattr(getattr(column, "type", None), "length", None)
    if value is not None and size is not None and len(value) > size:
        raise ConfigError(f"the {what} has {len(value)} characters, more than the {size} kept")
    return value


# Entry fields with a bounded column: (field, column).
_SIZED = (("category", E.c.category), ("date", E.c.date))
# Characters a category keeps: the one bound for entries' categories and category_map codes.
CATEGORY_SIZE: int = E.c.category.type.length  # type: ignore[attr-defined]


def check_category_map(mapping: dict[str, str] | None) -> dict[str, str] | None:
    """``mapping`` if every code in it (key and value) fits a category, else
    :class:`ConfigError` saying which side and how long: a longer code could never be used."""
    for code, target in (mapping or {}).items():
        for side, value in (("code", code), ("category it maps to", target)):
            if not isinstance(value, str):
                raise ConfigError(f"category_map: every {side} must be a string")
            if not value or len(value) > CATEGORY_SIZE:
                raise ConfigError(
                    f"category_map: a {side} has {len(value)} characters; a category has "
                    f"1 to {CATEGORY_SIZE}"
                )
    return mapping


_KEY_SIZE: int = E.c.key.type.length  # type: ignore[attr-defined]
_HASH_SIZE: int = H.c.value.type.length  # type: ignore[attr-defined]


def _check_sizes(record: EntryRecord, key: str) -> None:
    """A record whose fields fit their columns, or :class:`ListFormatError` naming it (and
    the field, never its value: it may be list data)."""
    where = record.source or None
    for name, column in _SIZED:
        value = getattr(record, name)
        size: int = column.type.length  # type: ignore[attr-defined]
        if value is not None and len(value) > size:
            raise ListFormatError(
                f"{name} has {len(value)} characters, more than the {size} a list keeps",
                where=where,
            )
    if len(key) > _KEY_SIZE or any(len(v) > _HASH_SIZE for _, v in record.hashes):
        raise ListFormatError(
            f"a hash value is longer than the {_HASH_SIZE} characters a list keeps", where=where
        )


def _key(record: EntryRecord) -> str:
    htype, value = record.hashes[0]
    return f"{htype.value}:{value}"


def batches(records: Iterable[EntryRecord], size: int = BATCH) -> Iterator[list[EntryRecord]]:
    return make_units(records, size)


def _stored_frames(record: EntryRecord) -> list[VideoFrameHash]:
    """The frames of a video entry that are stored and indexed: those vPDQ matches with."""
    return matchable_frames(record.frames)


def _hash_keys(record: EntryRecord) -> list[tuple[str, str, int | None]]:
    """What identifies the hash rows of an entry, in order (does an import change them?)."""
    keys: list[tuple[str, str, int | None]] = [(t.value, v, None) for t, v in record.hashes]
    keys += [(HashType.PDQ.value, f.pdq, f.frame) for f in _stored_frames(record)]
    return keys


def _facts(record: EntryRecord) -> dict[str, Any]:
    extra = dict(record.extra or {})
    if record.frames:
        video = dict(extra.get("video") or {})
        video.update(frames_read=len(record.frames), frames_kept=len(_stored_frames(record)))
        extra["video"] = video
    return {
        "category": record.category,
        "series": record.series,
        "victim_identified": record.victim_identified,
        "tags": list(record.tags),
        "comment": record.comment,
        "date": record.date,
        "extra": extra,
    }


_ENTRY_COLUMNS = (
    "list_id",
    "key",
    "category",
    "series",
    "victim_identified",
    "tags",
    "comment",
    "date",
    "extra",
    "status",
    "import_id",
    "source",
    "added_version",
    "updated_version",
    "seen_version",
    "change_seq",
)
_ENTRY_VALUES = operator.itemgetter(*_ENTRY_COLUMNS)
_TAGS, _EXTRA = _ENTRY_COLUMNS.index("tags"), _ENTRY_COLUMNS.index("extra")
_HASH_COLUMNS = (
    "entry_id",
    "list_id",
    "hash_type",
    "value",
    "position",
    "active",
    "change_seq",
    "frame",
    "frame_time",
    "quality",
)


def _entry_row(values: dict[str, Any]) -> tuple[Any, ...]:
    """An entry's values as ``_ENTRY_COLUMNS``, JSON columns as JSON text (as SQLAlchemy's
    JSON type writes them)."""
    row = list(_ENTRY_VALUES(values))
    row[_TAGS], row[_EXTRA] = json.dumps(row[_TAGS]), json.dumps(row[_EXTRA])
    return tuple(row)


def _driver_insert(
    conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` by the driver, inside ``conn``'s transaction: ``executemany`` on
    SQLite, ``COPY`` on PostgreSQL. An import moves every row of a list, and SQLAlchemy's
    per-row parameter processing cost more than the database's own work."""
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    if conn.dialect.name != "postgresql":
        marks = ", ".join("?" * len(columns))
        conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


class ImportContext:
    """The state of one import transaction, applied a batch at a time."""

    def __init__(
        self,
        conn: Connection,
        list_id: int,
        version: int,
        seq: int,
        import_id: int,
        actor: str,
        report: ImportReport,
        *,
        analyze: bool = False,
        track_statuses: bool = False,
    ) -> None:
        self.conn = conn
        self.list_id = list_id
        self.version = version
        self.seq = seq
        self.import_id = import_id
        self.actor = actor
        self.report = report
        # PostgreSQL plans from statistics that do not yet count the rows this transaction
        # inserts; ANALYZE does count them. Without it, key lookups of a large first import
        # scan the growing table (quadratic). Re-analyse as the list grows 4x.
        self.analyze = analyze
        self.next_analyze = BATCH
        # With ``track_statuses``: entry key -> (id, status) of every entry applied, for a
        # caller that settles statuses next (a peer's sync) without reading them again.
        self.statuses: dict[str, tuple[int, str]] | None = {} if track_statuses else None

    def apply(self, batch: list[EntryRecord]) -> None:
        conn = self.conn
        by_key: dict[str, EntryRecord] = {}
        for record in batch:
            if not record.hashes:
                continue
            key = _key(record)
            _check_sizes(record, key)
            by_key[key] = record  # the later record of a duplicated key wins
        self.report.records += len(batch)
        existing = {
            r.key: r
            for r in conn.execute(
                select(E).where(and_(E.c.list_id == self.list_id, E.c.key.in_(list(by_key))))
            )
        }
        stored_hashes: dict[int, list[tuple[str, str, int | None]]] = {}
        if existing:
            for h in conn.execute(
                select(H.c.entry_id, H.c.hash_type, H.c.value, H.c.frame)
                .where(and_(H.c.entry_id.in_([r.id for r in existing.values()]), H.c.active))
                .order_by(H.c.entry_id, H.c.position)
            ):
                stored_hashes.setdefault(h.entry_id, []).append((h.hash_type, h.value, h.frame))
        new_rows: list[dict[str, Any]] = []
        new_hashes: list[tuple[str, EntryRecord]] = []
        seen_ids: list[int] = []
        # Changed entries are written a statement per kind of change, not one per entry:
        # (columns changed) -> [values], entries whose hashes changed, reactivation events.
        changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        rehashed: list[tuple[int, EntryRecord]] = []
        events: list[tuple[int, str, str, str]] = []
        for key, record in by_key.items():
            facts = _facts(record)
            old = existing.get(key)
            if old is None:
                new_rows.append(
                    {
                        "list_id": self.list_id,
                        "key": key,
                        **facts,
                        "status": EntryStatus.ACTIVE.value,
                        "import_id": self.import_id,
                        "source": record.source[:64] or None,
                        "added_version": self.version,
                        "updated_version": self.version,
                        "seen_version": self.version,
                        "change_seq": self.seq,
                    }
                )
                new_hashes.append((key, record))
                continue
            seen_ids.append(old.id)
            status = old.status
            values: dict[str, Any] = {}
            old_facts = {k: getattr(old, k) for k in facts}
            old_facts["tags"] = list(old_facts["tags"] or [])
            old_facts["extra"] = dict(old_facts["extra"] or {})
            facts_changed = old_facts != facts
            if facts_changed:
                values.update(facts)
            hashes_changed = stored_hashes.get(old.id, []) != _hash_keys(record)
            if old.status == EntryStatus.WITHDRAWN.value:
                status = values["status"] = EntryStatus.ACTIVE.value
                events.append((old.id, old.status, EntryStatus.ACTIVE.value, "listed again"))
                self.report.reactivated += 1
            if self.statuses is not None:
                self.statuses[key] = (int(old.id), status)
            if values or hashes_changed:
                values.update(
                    updated_version=self.version,
                    change_seq=self.seq,
                    import_id=self.import_id,
                    source=record.source[:64] or None,
                )
                changed.setdefault(tuple(sorted(values)), []).append(
                    {"b_id": old.id, **{f"b_{k}": v for k, v in values.items()}}
                )
                if hashes_changed:
                    rehashed.append((int(old.id), record))
                if facts_changed or hashes_changed:
                    self.report.updated += 1
            else:
                self.report.unchanged += 1
        for columns, params in changed.items():
            stmt = (
                update(E)
                .where(E.c.id == bindparam("b_id"))
                .values({E.c[k]: bindparam(f"b_{k}") for k in columns})
            )
            conn.execute(stmt, params)
        if rehashed:
            ids = [i for i, _ in rehashed]
            for start in range(0, len(ids), BATCH):
                conn.execute(
                    update(H)
                    .where(and_(H.c.entry_id.in_(ids[start : start + BATCH]), H.c.active))
                    .values(active=False, change_seq=self.seq)
                )
            rows = [row for i, r in rehashed for row in self._hash_rows(i, r)]
            _driver_insert(conn, "entry_hashes", _HASH_COLUMNS, rows)
        if events:
            self._events(events)
        if seen_ids:
            for start in range(0, len(seen_ids), BATCH):
                conn.execute(
                    update(E)
                    .where(E.c.id.in_(seen_ids[start : start + BATCH]))
                    .values(seen_version=self.version)
                )
        if new_rows:
            # The driver's own bulk insert (executemany on SQLite, COPY on PostgreSQL), then
            # the ids by key in one indexed read: a multi-row INSERT ... RETURNING with 16
            # parameters a row cost PostgreSQL ~0.5 s a page of 1,000 to parse and plan.
            _driver_insert(conn, "entries", _ENTRY_COLUMNS, [_entry_row(r) for r in new_rows])
            ids_of: dict[str, int] = {}
            keys = [key for key, _ in new_hashes]
            for start in range(0, len(keys), BATCH):
                chunk = keys[start : start + BATCH]
                for r in conn.execute(
                    select(E.c.key, E.c.id).where(
                        and_(E.c.list_id == self.list_id, E.c.key.in_(chunk))
                    )
                ):
                    ids_of[r.key] = int(r.id)
            rows = [
                row for key, record in new_hashes for row in self._hash_rows(ids_of[key], record)
            ]
            _driver_insert(conn, "entry_hashes", _HASH_COLUMNS, rows)
            self.report.added += len(new_rows)
            if self.statuses is not None:
                for key, _ in new_hashes:
                    self.statuses[key] = (int(ids_of[key]), EntryStatus.ACTIVE.value)
            if self.analyze and self.report.added >= self.next_analyze:
                conn.exec_driver_sql("ANALYZE entries, entry_hashes")
                self.next_analyze *= 4

    def _hash_rows(self, entry_id: int, record: EntryRecord) -> list[tuple[Any, ...]]:
        """The entry's hash rows, as ``_HASH_COLUMNS``."""
        list_id, seq = self.list_id, self.seq
        rows: list[tuple[Any, ...]] = [
            (entry_id, list_id, t.value, v, pos, True, seq, None, None, None)
            for pos, (t, v) in enumerate(record.hashes)
        ]
        first = len(record.hashes)
        pdq = HashType.PDQ.value
        rows += [
            (entry_id, list_id, pdq, f.pdq, first + n, True, seq, f.frame, f.timestamp, f.quality)
            for n, f in enumerate(_stored_frames(record))
        ]
        return rows

    def _events(self, events: list[tuple[int, str, str, str]]) -> None:
        """Status events (entry id, old, new, reason), one statement."""
        self.conn.execute(
            insert(EV),
            [
                {
                    "entry_id": entry_id,
                    "at": utcnow(),
                    "old_status": old,
                    "new_status": new,
                    "actor": self.actor,
                    "reason": reason,
                    "version": self.version,
                }
                for entry_id, old, new, reason in events
            ],
        )

    def unseen_live(self) -> list[tuple[int, str]]:
        """The live entries this import has not listed, (id, status): a replace withdraws
        them (:meth:`withdraw`)."""
        return [
            (r.id, r.status)
            for r in self.conn.execute(
                select(E.c.id, E.c.status).where(
                    and_(
                        E.c.list_id == self.list_id,
                        E.c.seen_version < self.version,
                        E.c.status.in_(LIVE),
                    )
                )
            )
        ]

    def withdraw(self, gone: list[tuple[int, str]]) -> None:
        """Withdraw ``gone`` (from :meth:`unseen_live`), with an event for each entry."""
        conn = self.conn
        for start in range(0, len(gone), BATCH):
            chunk = gone[start : start + BATCH]
            conn.execute(
                update(E)
                .where(E.c.id.in_([i for i, _ in chunk]))
                .values(
                    status=EntryStatus.WITHDRAWN.value,
                    change_seq=self.seq,
                    updated_version=self.version,
                )
            )
            conn.execute(
                insert(EV),
                [
                    {
                        "entry_id": i,
                        "at": utcnow(),
                        "old_status": s,
                        "new_status": EntryStatus.WITHDRAWN.value,
                        "actor": self.actor,
                        "reason": f"not in import of version {self.version}",
                        "version": self.version,
                    }
                    for i, s in chunk
                ],
            )
        self.report.withdrawn += len(gone)


def entry_records(
    conn: Connection, list_id: int, *, include_inactive: bool = False
) -> Iterator[EntryRecord]:
    """Stream a list's entries as records (for export), in entry order, a batch at a time."""
    last = 0
    while True:
        query = select(E).where(and_(E.c.list_id == list_id, E.c.id > last))
        if not include_inactive:
            query = query.where(E.c.status.in_(LIVE))
        entries = conn.execute(query.order_by(E.c.id).limit(BATCH)).all()
        if not entries:
            return
        last = entries[-1].id
        hashes: dict[int, list[tuple[HashType, str]]] = {}
        frames: dict[int, list[VideoFrameHash]] = {}
        for h in conn.execute(
            select(H.c.entry_id, H.c.hash_type, H.c.value, H.c.frame, H.c.frame_time, H.c.quality)
            .where(and_(H.c.entry_id.in_([e.id for e in entries]), H.c.active))
            .order_by(H.c.entry_id, H.c.position)
        ):
            if h.frame is not None:
                frame = VideoFrameHash(h.frame, h.frame_time or 0.0, h.value, h.quality or 0)
                frames.setdefault(h.entry_id, []).append(frame)
            else:
                hashes.setdefault(h.entry_id, []).append((HashType(h.hash_type), h.value))
        for e in entries:
            yield EntryRecord(
                hashes=tuple(hashes.get(e.id, ())),
                category=e.category,
                series=e.series,
                victim_identified=e.victim_identified,
                tags=tuple(e.tags or ()),
                comment=e.comment,
                date=e.date,
                status=EntryStatus(e.status),
                source=f"entry {e.id}",
                extra=dict(e.extra or {}),
                frames=tuple(frames.get(e.id, ())),
            )


def checked_categories(
    records: Iterator[EntryRecord], scheme: str, category_map: dict[str, str]
) -> Iterator[EntryRecord]:
    """Records a person gave (add-media, HTTP entries) with categories of the list's scheme."""
    for record in records:
        try:
            code = check_category(scheme, record.category, category_map)
        except ConfigError as exc:
            raise ConfigError(f"{record.source}: {exc}") from None
        if code != record.category:
            record = replace(record, category=code)
        yield record


def check_withdrawal(
    unseen: int, live_before: int, name: str, *, force: bool, max_share: float
) -> None:
    """Refuse a replace that would withdraw more than ``max_share`` of a list's live entries
    (a truncated or misread file), unless ``force``."""
    if force or not unseen or live_before == 0:
        return
    share = unseen / live_before
    if share > max_share:
        raise ConfigError(
            f"this replace would withdraw {unseen} of the {live_before} live entries of "
            f"{name!r} ({share:.0%}, more than the {max_share:.0%} allowed): "
            "check the file; to withdraw them anyway, import with --force (force=true), or "
            "use --append to keep them; nothing was imported"
        )


def jsonable_header(header: ListHeader) -> dict[str, Any]:
    """What an import records of its file's header: the values JSON can hold."""
    return {
        "format": header.format,
        "scheme": header.scheme.value if header.scheme else None,
        "metadata": {k: v for k, v in header.metadata.items() if _is_jsonable(v)},
    }


def _is_jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def finish_import(
    conn: Connection, import_id: int, report: Any, *, records: int | None = None
) -> None:
    """Close the ``list_imports`` row of an import that changed its list: when it finished and
    what it did (``report``: an :class:`~hashwatch.store.lists.ImportReport`; ``records``:
    the records it read, when not the report's own count)."""
    conn.execute(
        update(IMPORTS)
        .where(IMPORTS.c.id == import_id)
        .values(
            finished_at=utcnow(),
            records=report.records if records is None else records,
            added=report.added,
            updated=report.updated,
            withdrawn=report.withdrawn,
            unchanged=report.unchanged,
        )
    )
