"""Catching a feed up with its list: new records appended to the log, a new checkpoint signed.

Every writer of a list (import, add, revoke, dispute, review decisions) bumps the changed
entries' ``change_seq``; a feed remembers the highest one it has taken in. A catch-up reads the
list's entries with a higher ``change_seq`` in order, a batch at a time, and for each compares
what may leave (the feed's hash types and fields) with what the feed last said of that key
(``feed_state``): nothing changed -> no record; otherwise one record whose ``op`` says what
happened (docs/exchange.md, "Publishing"):

========  ============================================================
add       a key the feed has not shared, or shared and then revoked
update    its shared hashes, scheme or fields changed (or a dispute lifted)
category  only its category changed
dispute   only its disputed flag went up
revoke    revoked, withdrawn, or no hash of a shared type left
========  ============================================================

The whole catch-up is one write transaction under the feed's lock
(:meth:`~hashwatch.store.database.Database.write`), so two replicas catching up the same feed
at once append one log, not two forks of it. Memory is bounded by the batch, whatever the
list's size: the tree's right edge is ~20 hashes, and each record's perfect nodes are written
as they complete.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from hashwatch.errors import ExchangeError, ListNotFoundError
from hashwatch.exchange.checkpoint import Checkpoint, SigningKey
from hashwatch.exchange.feed_text import RecordText, canonical, hash_text
from hashwatch.exchange.merkle import Frontier, leaf_hash
from hashwatch.lists.model import EntryStatus
from hashwatch.store.database import Database
from hashwatch.store.feed_models import FEED_CHECKPOINTS, FEEDS
from hashwatch.store.models import ENTRIES, LISTS, utcnow

__all__ = ["BATCH", "DriverSql", "FeedPublisher", "canonical", "feed_lock"]

BATCH = 5000  # entries read, and records written, per round trip
E = ENTRIES
_SHOWN = frozenset((EntryStatus.ACTIVE.value, EntryStatus.DISPUTED.value))
_REVOKED = EntryStatus.REVOKED.value
_DISPUTED = EntryStatus.DISPUTED.value


def feed_lock(list_name: str) -> str:
    return f"feed:{list_name}"


def pack(frontier: Frontier) -> bytes:
    return b"".join(frontier.hashes)


def unpack(size: int, data: bytes) -> Frontier:
    frontier = Frontier(size, [data[i : i + 32] for i in range(0, len(data), 32)])
    frontier.check()
    return frontier


@dataclass
class _State:
    digest: bytes
    category: str | None
    disputed: bool
    gone: bool


class FeedPublisher:
    """Appends a feed's records and signs its checkpoints with ``key``."""

    def __init__(self, db: Database, key: SigningKey | None) -> None:
        self.db = db
        self.key = key

    def _signing_key(self) -> SigningKey:
        if self.key is None:
            raise ExchangeError(
                "no signing key: create one with `hashwatch exchange keygen --name ORG` "
                "(serve: --signing-key PATH)"
            )
        return self.key

    def needs_catch_up(self, list_name: str) -> bool:
        """Cheap check (one statement of indexed reads, no lock): has the list changed since
        the feed's last catch-up, or has the feed no checkpoint yet?"""
        with self.db.read() as conn:
            newest = (
                select(func.max(E.c.change_seq))
                .where(E.c.list_id == FEEDS.c.list_id)
                .scalar_subquery()
            )
            signed = (
                select(FEED_CHECKPOINTS.c.size)
                .where(FEED_CHECKPOINTS.c.feed_id == FEEDS.c.id)
                .order_by(FEED_CHECKPOINTS.c.size.desc())
                .limit(1)
                .scalar_subquery()
            )
            feed = conn.execute(
                select(
                    FEEDS.c.active,
                    FEEDS.c.size,
                    FEEDS.c.scheme,
                    FEEDS.c.last_change_seq,
                    LISTS.c.scheme.label("list_scheme"),
                    newest.label("newest"),
                    signed.label("signed"),
                )
                .join(LISTS, LISTS.c.id == FEEDS.c.list_id)
                .where(LISTS.c.name == list_name)
            ).first()
        if feed is None or not feed.active:
            return False
        return (
            int(feed.newest or 0) > int(feed.last_change_seq)
            or feed.list_scheme != feed.scheme
            or feed.signed != feed.size
        )

    def catch_up(self, list_name: str) -> int:
        """Append the records of the list's changes since the last catch-up and sign the new
        size; returns how many records were appended (0: nothing changed)."""
        if not self.needs_catch_up(list_name):
            return 0
        key = self._signing_key()
        with self.db.write(feed_lock(list_name)) as conn:
            row = conn.execute(select(LISTS).where(LISTS.c.name == list_name)).first()
            if row is None:
                raise ListNotFoundError(f"no hash list named {list_name!r}")
            feed = conn.execute(select(FEEDS).where(FEEDS.c.list_id == row.id)).first()
            if feed is None or not feed.active:
                return 0
            return self._append(conn, feed, row, key)

    def _append(self, conn: Connection, feed: Any, lst: Any, key: SigningKey) -> int:
        frontier = unpack(int(feed.size), bytes(feed.frontier))
        start = frontier.size
        last = int(feed.last_change_seq)
        if lst.scheme != feed.scheme:
            last = 0  # every entry's shared scheme changed: compare them all again
        at = datetime.now(UTC).replace(microsecond=0)
        writer = _Writer(conn, feed, lst, frontier, at.isoformat().replace("+00:00", "Z"))
        newest = last
        for batch in _changed(writer.sql, int(lst.id), last):
            writer.write(batch)
            newest = max(newest, int(batch[-1][10]))
        conn.execute(
            update(FEEDS)
            .where(FEEDS.c.id == feed.id)
            .values(
                size=frontier.size,
                frontier=pack(frontier),
                last_change_seq=newest,
                scheme=lst.scheme,
                updated_at=utcnow(),
            )
        )
        signed = conn.execute(
            select(FEED_CHECKPOINTS.c.size).where(
                and_(
                    FEED_CHECKPOINTS.c.feed_id == feed.id, FEED_CHECKPOINTS.c.size == frontier.size
                )
            )
        ).first()
        if signed is None:
            checkpoint = Checkpoint(feed.origin, frontier.size, frontier.root())
            conn.execute(
                insert(FEED_CHECKPOINTS).values(
                    feed_id=feed.id,
                    size=frontier.size,
                    root=checkpoint.root,
                    note=checkpoint.sign(key),
                    signed_at=utcnow(),
                )
            )
        return frontier.size - start


class DriverSql:
    """The catch-up's statements, sent as the driver's own SQL: a catch-up moves every entry
    of a list, and SQLAlchemy's per-row parameter and result processing cost more than the
    database's work. Placeholders are written ``?`` (SQLite) and become ``%s`` (psycopg);
    PostgreSQL takes the batch's keys as one array and the new rows by ``COPY``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"

    def rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return list(self.conn.exec_driver_sql(self._sql(sql), params).all())

    def run(self, sql: str, params: tuple[Any, ...] | list[tuple[Any, ...]]) -> None:
        """One statement, or one per row of a list (the driver's executemany)."""
        self.conn.exec_driver_sql(self._sql(sql), params)

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def any_of(self, column: str, values: list[Any]) -> tuple[str, tuple[Any, ...]]:
        """``column`` is one of ``values``: an IN list (SQLite), ``= ANY(array)`` (PostgreSQL)."""
        if self.sqlite:
            return f"{column} IN ({','.join('?' * len(values))})", tuple(values)
        return f"{column} = ANY(?)", (values,)

    def insert(self, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.sqlite:
            marks = ",".join("?" * (columns.count(",") + 1))
            self.run(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            return
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()


_ENTRY_COLUMNS = (
    'id, "key", category, series, victim_identified, tags, "date", comment, status, '
    "updated_version, change_seq"
)


def _changed(sql: DriverSql, list_id: int, after_seq: int) -> Iterator[list[Any]]:
    """The list's entries changed after ``after_seq``, in (change_seq, id) order, in batches.
    Two plain index ranges of ``ix_entries_list_change_seq`` (the rest of one change, then
    the changes after it), never an OR the planner cannot range-scan."""
    head = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE list_id = ? AND "
    tail = " ORDER BY change_seq, id LIMIT ?"
    seq, last_id = after_seq, None
    while True:
        if last_id is None:
            rows = sql.rows(head + "change_seq > ?" + tail, (list_id, seq, BATCH))
        else:
            rows = sql.rows(
                head + "change_seq = ? AND id > ?" + tail, (list_id, seq, last_id, BATCH)
            )
        if not rows:
            if last_id is None:
                return
            last_id = None  # the rest of change ``seq`` is done: on to the later ones
            continue
        yield rows
        seq, last_id = int(rows[-1][10]), int(rows[-1][0])


def _tags(value: Any) -> list[Any] | None:
    """An entry's tags as stored (JSON text on SQLite, a list from psycopg); None when none."""
    if isinstance(value, str):
        value = None if value in ("[]", "null") else json.loads(value)
    return list(value) if value else None


class _Writer:
    """Turns batches of changed entries into records, nodes and state rows: per batch one
    read of the entries, one of their hashes, one of the feed's state for their keys (none
    while the feed has no state yet), one write each of records, nodes, new and changed
    states."""

    def __init__(self, conn: Connection, feed: Any, lst: Any, frontier: Frontier, at: str):
        self.sql = DriverSql(conn)
        self.feed_id = int(feed.id)
        self.types = frozenset(feed.hash_types)
        fields = set(feed.fields)
        self.share_category = "category" in fields
        # Row positions of the shared fields (``_ENTRY_COLUMNS``), in the text's key order.
        positions = {"series": 3, "victim_identified": 4, "tags": 5, "date": 6, "comment": 7}
        self.picks = [(f, positions[f]) for f in sorted(fields) if f in positions]
        self.text = RecordText(str(feed.origin), at, str(lst.scheme), str(feed.org), lst.name)
        self.frontier = frontier
        found = self.sql.rows("SELECT 1 FROM feed_state WHERE feed_id = ? LIMIT 1", (self.feed_id,))
        self.has_state = bool(found)

    def write(self, batch: list[Any]) -> None:
        hashes = self._hashes([int(r[0]) for r in batch])
        states = self._states([r[1] for r in batch]) if self.has_state else {}
        feed_id, frontier, text = self.feed_id, self.frontier, self.text
        records: list[tuple[Any, ...]] = []
        nodes: list[tuple[Any, ...]] = []
        new_states: list[tuple[Any, ...]] = []
        changed_states: list[tuple[Any, ...]] = []
        for row in batch:
            entry_id, key, status = row[0], row[1], row[8]
            old = states.get(key)
            shared = hashes.get(int(entry_id)) if status in _SHOWN else None
            seq = frontier.size + 1
            if shared is None:  # revoked, withdrawn, or no hash of a shared type left
                if old is None or old.gone:
                    continue
                reason = "revoked" if status == _REVOKED else "withdrawn"
                record = text.revoke(seq, key, reason)
                state: tuple[Any, ...] = (old.digest, None, False, True, seq)
            else:
                hashes_text = "[" + ",".join(shared) + "]"
                fields_text = self._fields(row)
                digest = hashlib.sha256(text.body(hashes_text, fields_text).encode()).digest()
                category = row[2] if self.share_category else None
                disputed = status == _DISPUTED
                op = _op(digest, category, disputed, old)
                if op is None:
                    continue
                entry = text.entry(hashes_text, fields_text, category, disputed, row[9])
                record = text.record(seq, key, op, entry)
                state = (digest, category, disputed, False, seq)
            records.append((feed_id, seq, record))
            # Level 0 (the leaf) is not stored: it is the hash of the record itself.
            for level, index, node in frontier.append(leaf_hash(record.encode("utf-8")))[1:]:
                nodes.append((feed_id, level, index, node))
            if old is None:
                new_states.append((feed_id, key, *state))
            else:
                changed_states.append((*state, feed_id, key))
        sql = self.sql
        sql.insert("feed_records", "feed_id, seq, record", records)
        sql.insert("feed_nodes", "feed_id, level, idx, hash", nodes)
        sql.insert(
            "feed_state", 'feed_id, "key", digest, category, disputed, gone, seq', new_states
        )
        if changed_states:
            self._update_states(changed_states)

    def _fields(self, row: Any) -> str:
        shared: dict[str, Any] = {}
        for name, i in self.picks:
            value = row[i]
            if i == 5:
                value = _tags(value)
            elif i == 4 and value is not None:
                value = bool(value)  # SQLite hands a flag back as 0 or 1
            if value is not None:
                shared[name] = value
        return RecordText.fields(shared)

    def _update_states(self, rows: list[tuple[Any, ...]]) -> None:
        sql = self.sql
        if sql.sqlite:
            sql.run(
                "UPDATE feed_state SET digest = ?, category = ?, disputed = ?, gone = ?, seq = ? "
                'WHERE feed_id = ? AND "key" = ?',
                rows,
            )
            return
        columns = list(zip(*rows, strict=True))
        sql.run(
            "UPDATE feed_state AS s SET digest = v.digest, category = v.category, "
            "disputed = v.disputed, gone = v.gone, seq = v.seq "
            "FROM unnest(?::bytea[], ?::varchar[], ?::boolean[], ?::boolean[], ?::bigint[], "
            '?::text[]) AS v(digest, category, disputed, gone, seq, "key") '
            'WHERE s.feed_id = ? AND s."key" = v."key"',
            (*(list(c) for c in columns[:5]), list(columns[6]), self.feed_id),
        )

    def _hashes(self, ids: list[int]) -> dict[int, list[str]]:
        """Each entry's active hashes of the feed's types, in their order, as canonical
        texts. The type is checked here, not in the query: with it
        there, SQLite seeks the (hash_type, value) index and reads every hash of the types in
        the database for each batch."""
        out: dict[int, list[str]] = {}
        types = self.types
        if not types:
            return out
        by_id, params = self.sql.any_of("entry_id", ids)
        rows = self.sql.rows(
            "SELECT entry_id, hash_type, value, frame, frame_time, quality FROM entry_hashes "
            f"WHERE {by_id} AND active = TRUE ORDER BY entry_id, position",
            params,
        )
        for entry_id, hash_type, value, frame, frame_time, quality in rows:
            if hash_type in types:
                text = hash_text(hash_type, value, frame, frame_time, quality)
                out.setdefault(int(entry_id), []).append(text)
        return out

    def _states(self, keys: list[str]) -> dict[str, _State]:
        by_key, params = self.sql.any_of('"key"', keys)
        rows = self.sql.rows(
            'SELECT "key", digest, category, disputed, gone FROM feed_state '
            f"WHERE feed_id = ? AND {by_key}",
            (self.feed_id, *params),
        )
        return {
            key: _State(bytes(digest), category, bool(disputed), bool(gone))
            for key, digest, category, disputed, gone in rows
        }


def _op(digest: bytes, category: str | None, disputed: bool, old: _State | None) -> str | None:
    """The op of a record of an entry that may leave, or None when the feed already says this."""
    if old is None or old.gone:
        return "add"
    if digest != old.digest:
        return "update"
    if category != old.category:
        return "category" if disputed == old.disputed else "update"
    if disputed != old.disputed:
        return "dispute" if disputed else "update"
    return None
