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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update
from sqlalchemy.sql.expression import bindparam

from hashwatch.errors import ExchangeError, ListNotFoundError
from hashwatch.exchange.checkpoint import Checkpoint, SigningKey
from hashwatch.exchange.merkle import Frontier, leaf_hash
from hashwatch.lists.model import EntryStatus
from hashwatch.store.database import Database
from hashwatch.store.feed_models import (
    FEED_CHECKPOINTS,
    FEED_NODES,
    FEED_RECORDS,
    FEED_STATE,
    FEEDS,
)
from hashwatch.store.models import ENTRIES, HASHES, LISTS, utcnow

__all__ = ["BATCH", "FeedPublisher", "canonical", "feed_lock"]

BATCH = 5000  # entries read, and records written, per round trip
E = ENTRIES
H = HASHES
FS = FEED_STATE
_SHOWN = (EntryStatus.ACTIVE.value, EntryStatus.DISPUTED.value)


def canonical(obj: Mapping[str, Any]) -> str:
    """The one text of a record (the design's canonical JSON): what the leaf hashes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


@dataclass(frozen=True)
class _Shared:
    """What leaves of one entry, and the parts its op is decided by."""

    entry: dict[str, Any]
    digest: bytes  # hashes, scheme and fields
    category: str | None
    disputed: bool


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
        """Cheap check (two indexed reads, no lock): has the list changed since the feed's
        last catch-up, or has the feed no checkpoint yet?"""
        with self.db.read() as conn:
            feed = conn.execute(
                select(FEEDS, LISTS.c.scheme.label("list_scheme"))
                .join(LISTS, LISTS.c.id == FEEDS.c.list_id)
                .where(LISTS.c.name == list_name)
            ).first()
            if feed is None or not feed.active:
                return False
            newest = conn.execute(
                select(func.max(E.c.change_seq)).where(E.c.list_id == feed.list_id)
            ).scalar()
            signed = conn.execute(
                select(FEED_CHECKPOINTS.c.size)
                .where(FEED_CHECKPOINTS.c.feed_id == feed.id)
                .order_by(FEED_CHECKPOINTS.c.size.desc())
                .limit(1)
            ).scalar()
        return (
            int(newest or 0) > int(feed.last_change_seq)
            or feed.list_scheme != feed.scheme
            or signed != feed.size
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
        for batch in _changed(conn, int(lst.id), last):
            writer.write(batch)
            newest = max(newest, int(batch[-1].change_seq))
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


def _changed(conn: Connection, list_id: int, after_seq: int) -> Iterator[list[Any]]:
    """The list's entries changed after ``after_seq``, in (change_seq, id) order, in batches.
    Two plain index ranges of ``ix_entries_list_change_seq`` (the rest of one change, then
    the changes after it), never an OR the planner cannot range-scan."""
    columns = (
        E.c.id,
        E.c.key,
        E.c.category,
        E.c.series,
        E.c.victim_identified,
        E.c.tags,
        E.c.date,
        E.c.comment,
        E.c.status,
        E.c.updated_version,
        E.c.change_seq,
    )
    seq, last_id = after_seq, None
    while True:
        if last_id is None:
            where = and_(E.c.list_id == list_id, E.c.change_seq > seq)
        else:
            where = and_(E.c.list_id == list_id, E.c.change_seq == seq, E.c.id > last_id)
        rows = conn.execute(
            select(*columns).where(where).order_by(E.c.change_seq, E.c.id).limit(BATCH)
        ).all()
        if not rows:
            if last_id is None:
                return
            last_id = None  # the rest of change ``seq`` is done: on to the later ones
            continue
        yield list(rows)
        seq, last_id = int(rows[-1].change_seq), int(rows[-1].id)


class _Writer:
    """Turns batches of changed entries into records, nodes and state rows."""

    def __init__(self, conn: Connection, feed: Any, lst: Any, frontier: Frontier, at: str):
        self.conn = conn
        self.feed_id = int(feed.id)
        self.origin = str(feed.origin)
        self.types = list(feed.hash_types)
        self.fields = list(feed.fields)
        self.provenance = {"org": feed.org, "list": lst.name}
        self.scheme = lst.scheme
        self.frontier = frontier
        self.at = at

    def write(self, batch: list[Any]) -> None:
        conn = self.conn
        hashes = self._hashes([int(r.id) for r in batch])
        states = self._states([r.key for r in batch])
        records: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        new_states: list[dict[str, Any]] = []
        changed_states: list[dict[str, Any]] = []
        for row in batch:
            shared = self._shared(row, hashes.get(int(row.id), []))
            old = states.get(row.key)
            record = self._record(row, shared, old)
            if record is None:
                continue
            seq = self.frontier.size + 1
            text = canonical({"origin": self.origin, "seq": seq, "key": row.key, **record})
            records.append({"feed_id": self.feed_id, "seq": seq, "record": text})
            for level, index, digest in self.frontier.append(leaf_hash(text.encode("utf-8"))):
                nodes.append(
                    {"feed_id": self.feed_id, "level": level, "idx": index, "hash": digest}
                )
            state = {
                "digest": shared.digest if shared else (old.digest if old else b""),
                "category": shared.category if shared else None,
                "disputed": shared.disputed if shared else False,
                "gone": shared is None,
                "seq": seq,
            }
            if old is None:
                new_states.append({"feed_id": self.feed_id, "key": row.key, **state})
            else:
                changed_states.append({"b_key": row.key, **state})
        if records:
            conn.execute(insert(FEED_RECORDS), records)
            conn.execute(insert(FEED_NODES), nodes)
        if new_states:
            conn.execute(insert(FS), new_states)
        if changed_states:
            conn.execute(
                update(FS)
                .where(and_(FS.c.feed_id == self.feed_id, FS.c.key == bindparam("b_key")))
                .values(
                    digest=bindparam("digest"),
                    category=bindparam("category"),
                    disputed=bindparam("disputed"),
                    gone=bindparam("gone"),
                    seq=bindparam("seq"),
                ),
                changed_states,
            )

    def _hashes(self, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        rows = self.conn.execute(
            select(H.c.entry_id, H.c.hash_type, H.c.value, H.c.frame, H.c.frame_time, H.c.quality)
            .where(and_(H.c.entry_id.in_(ids), H.c.active, H.c.hash_type.in_(self.types)))
            .order_by(H.c.entry_id, H.c.position)
        )
        for r in rows:
            shared: dict[str, Any] = {"type": r.hash_type, "value": r.value}
            if r.frame is not None:
                shared.update(frame=r.frame, frame_time=r.frame_time, quality=r.quality)
            out.setdefault(int(r.entry_id), []).append(shared)
        return out

    def _states(self, keys: list[str]) -> dict[str, _State]:
        rows = self.conn.execute(
            select(FS.c.key, FS.c.digest, FS.c.category, FS.c.disputed, FS.c.gone).where(
                and_(FS.c.feed_id == self.feed_id, FS.c.key.in_(keys))
            )
        )
        return {
            r.key: _State(bytes(r.digest), r.category, bool(r.disputed), bool(r.gone)) for r in rows
        }

    def _shared(self, row: Any, hashes: list[dict[str, Any]]) -> _Shared | None:
        """What leaves of ``row``; None when nothing may (revoked, withdrawn, no shared hash)."""
        if row.status not in _SHOWN or not hashes:
            return None
        values = {
            "series": row.series,
            "victim_identified": row.victim_identified,
            "tags": list(row.tags or []) or None,
            "date": row.date,
            "comment": row.comment,
        }
        fields = {f: values[f] for f in self.fields if values.get(f) is not None}
        category = row.category if "category" in self.fields else None
        disputed = row.status == EntryStatus.DISPUTED.value
        body = {"hashes": hashes, "scheme": self.scheme, "fields": fields}
        digest = hashlib.sha256(canonical(body).encode("utf-8")).digest()
        entry = {
            **body,
            "category": category,
            "disputed": disputed,
            "provenance": {
                **self.provenance,
                "version": int(row.updated_version),
                "date": self.at[:10],
            },
        }
        return _Shared(entry, digest, category, disputed)

    def _record(
        self, row: Any, shared: _Shared | None, old: _State | None
    ) -> dict[str, Any] | None:
        """The record's op and body, or None when the feed already says this."""
        at = {"at": self.at}
        if shared is None:
            if old is None or old.gone:
                return None
            reason = "revoked" if row.status == EntryStatus.REVOKED.value else "withdrawn"
            return {"op": "revoke", "reason": reason, **at}
        if old is None or old.gone:
            op = "add"
        elif shared.digest != old.digest:
            op = "update"
        elif shared.category != old.category:
            op = "category" if shared.disputed == old.disputed else "update"
        elif shared.disputed != old.disputed:
            op = "dispute" if shared.disputed else "update"
        else:
            return None
        return {"op": op, "entry": shared.entry, **at}
