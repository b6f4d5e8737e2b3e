"""Published feeds: which lists leave, what of them leaves, and the pages peers read.

A curator publishes a list (``hashwatch exchange publish LIST``): the feed is an append-only
log of records about the list's entries (:mod:`hashwatch.exchange.feed_log` appends them), a
Merkle tree over the records, and a checkpoint signed at every size the log reaches. What may
leave is set per feed: the hash types (MD5, SHA-1, PDQ, ...) and the fields (category,
series, tags, date by default; ``victim_identified`` and ``comment`` only when named). Case
paths, the import's source and ``extra`` never leave, and neither does media.

A page (:meth:`FeedStore.page`) carries the records as the exact texts that were hashed, the
latest signed checkpoint, and two consistency proofs: from the end of the page, and from the
size the subscriber verified before, to the checkpoint. The proofs read only the perfect nodes
they need (:func:`~hashwatch.exchange.merkle.needed_nodes`), in one query, so a page of a feed
of a million records costs what a page of a small one does.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from hashwatch.errors import ConfigError, ListNotFoundError
from hashwatch.exchange.checkpoint import SigningKey
from hashwatch.exchange.feed_log import DriverSql, FeedPublisher, feed_lock
from hashwatch.exchange.merkle import (
    EMPTY_ROOT,
    PerfectNode,
    PerfectNodes,
    consistency_proof,
    leaf_hash,
    needed_nodes,
)
from hashwatch.signals.types import HashType, parse_hash_type
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.feed_models import FEED_CHECKPOINTS, FEEDS
from hashwatch.store.models import LISTS, utcnow

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "SHAREABLE_FIELDS",
    "FeedInfo",
    "FeedPage",
    "FeedPublisher",
    "FeedStore",
    "default_origin",
]

SHAREABLE_FIELDS = ("category", "series", "victim_identified", "tags", "date", "comment")
DEFAULT_FIELDS = ("category", "series", "tags", "date")
DEFAULT_PAGE = 500
MAX_PAGE = 1000
CP = FEED_CHECKPOINTS


def default_origin(key_name: str, list_name: str) -> str:
    return f"{key_name}/feeds/{list_name}"


def _check_origin(origin: str) -> str:
    if not origin or len(origin) > 200 or any(c.isspace() or c == "+" for c in origin):
        raise ConfigError(
            "a feed origin is 1 to 200 characters without spaces or '+', "
            "e.g. agency.example.org/feeds/known"
        )
    return origin


def _b64(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@dataclass(frozen=True)
class FeedInfo:
    """A feed as ``exchange feeds`` and ``GET /v1/feeds`` show it."""

    list_name: str
    origin: str
    org: str
    hash_types: tuple[str, ...]
    fields: tuple[str, ...]
    size: int  # records signed (the latest checkpoint's size)
    root: bytes
    checkpoint: str | None  # the latest signed note
    signed_at: datetime | None
    active: bool
    feed_id: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "origin": self.origin,
            "org": self.org,
            "hash_types": list(self.hash_types),
            "fields": list(self.fields),
            "size": self.size,
            "root": base64.b64encode(self.root).decode(),
            "checkpoint": self.checkpoint,
            "last_checkpoint_at": self.signed_at.isoformat() if self.signed_at else None,
            "published": self.active,
        }


@dataclass(frozen=True)
class FeedPage:
    """One answer of ``GET /v1/feeds/{list}/records`` (docs/exchange.md, wire format)."""

    origin: str
    after: int
    records: list[str]
    more: bool
    checkpoint: str
    page_proof: list[bytes]
    known_size: int
    known_proof: list[bytes]

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "after": self.after,
            "records": self.records,
            "next": self.after + len(self.records) if self.records else None,
            "more": self.more,
            "checkpoint": self.checkpoint,
            "page_proof": _b64(self.page_proof),
            "known_size": self.known_size,
            "known_proof": _b64(self.known_proof),
        }


class FeedRangeError(ConfigError):
    """A page or proof asked beyond the feed's signed size (HTTP 409: the subscriber holds
    more than the publisher signed, a rollback)."""


class FeedStore:
    """The feeds of one database: publishing settings, listings, pages and proofs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- publishing ----------------------------------------------------------------------

    def publish(
        self,
        list_name: str,
        key: SigningKey,
        *,
        origin: str | None = None,
        hash_types: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        actor: str | None = None,
    ) -> FeedInfo:
        """Publish ``list_name`` (or change what leaves of a published one, or publish it
        again) and catch its feed up, signing with ``key``. The origin of a feed never
        changes: subscribers pin it."""
        types = _hash_types(hash_types)
        shared = _fields(fields)
        with self.db.write(feed_lock(list_name)) as conn:
            lst = conn.execute(select(LISTS).where(LISTS.c.name == list_name)).first()
            if lst is None:
                raise ListNotFoundError(f"no hash list named {list_name!r}")
            feed = conn.execute(select(FEEDS).where(FEEDS.c.list_id == lst.id)).first()
            details: dict[str, Any] = {"hash_types": types, "fields": shared}
            if feed is None:
                chosen = _check_origin(origin or default_origin(key.name, list_name))
                taken = conn.execute(select(FEEDS.c.id).where(FEEDS.c.origin == chosen)).first()
                if taken is not None:
                    raise ConfigError(f"another feed has the origin {chosen!r}")
                conn.execute(
                    insert(FEEDS).values(
                        list_id=lst.id,
                        origin=chosen,
                        org=key.name,
                        hash_types=types,
                        fields=shared,
                        size=0,
                        frontier=b"",
                        last_change_seq=0,
                        scheme=lst.scheme,
                        active=True,
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
                details["origin"] = chosen
            else:
                if origin is not None and origin != feed.origin:
                    raise ConfigError(
                        f"the feed of {list_name!r} has the origin {feed.origin!r}, which "
                        "subscribers have pinned: it cannot change"
                    )
                values: dict[str, Any] = {"active": True, "updated_at": utcnow()}
                if list(feed.hash_types) != types or list(feed.fields) != shared:
                    # What leaves changed: compare every entry again; only those whose
                    # shared state differs get a record.
                    values.update(hash_types=types, fields=shared, last_change_seq=0)
                conn.execute(update(FEEDS).where(FEEDS.c.id == feed.id).values(**values))
                details["origin"] = feed.origin
            record_audit(
                conn,
                actor=actor,
                action="feed.published",
                target=f"feed:{list_name}",
                details=details,
            )
        FeedPublisher(self.db, key).catch_up(list_name)
        return self.get(list_name)

    def unpublish(self, list_name: str, *, actor: str | None = None) -> FeedInfo:
        """Stop serving the feed. Its log is kept: publishing it again continues the same
        log, so subscribers resume where they stopped."""
        with self.db.write(feed_lock(list_name)) as conn:
            feed = self._row(conn, list_name)
            conn.execute(
                update(FEEDS).where(FEEDS.c.id == feed.id).values(active=False, updated_at=utcnow())
            )
            record_audit(
                conn,
                actor=actor,
                action="feed.unpublished",
                target=f"feed:{list_name}",
                details={"origin": feed.origin, "size": int(feed.size)},
            )
        return self.get(list_name)

    # -- reading -------------------------------------------------------------------------

    def _row(self, conn: Connection, list_name: str) -> Any:
        feed = conn.execute(
            select(FEEDS)
            .join(LISTS, LISTS.c.id == FEEDS.c.list_id)
            .where(LISTS.c.name == list_name)
        ).first()
        if feed is None:
            raise ListNotFoundError(f"the list {list_name!r} is not published")
        return feed

    def get(self, list_name: str) -> FeedInfo:
        """The feed of ``list_name`` (published or not); ListNotFoundError when it never was."""
        with self.db.read() as conn:
            return self._info(conn, self._row(conn, list_name), list_name)

    def all(self, *, published_only: bool = False) -> list[FeedInfo]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(FEEDS, LISTS.c.name.label("list_name"))
                .join(LISTS, LISTS.c.id == FEEDS.c.list_id)
                .order_by(LISTS.c.name)
            ).all()
            return [
                self._info(conn, r, r.list_name) for r in rows if r.active or not published_only
            ]

    @staticmethod
    def _info(conn: Connection, feed: Any, list_name: str) -> FeedInfo:
        cp = conn.execute(
            select(CP.c.size, CP.c.root, CP.c.note, CP.c.signed_at)
            .where(CP.c.feed_id == feed.id)
            .order_by(CP.c.size.desc())
            .limit(1)
        ).first()
        return FeedInfo(
            list_name,
            feed.origin,
            feed.org,
            tuple(feed.hash_types),
            tuple(feed.fields),
            int(cp.size) if cp else 0,
            bytes(cp.root) if cp else EMPTY_ROOT,
            cp.note if cp else None,
            cp.signed_at if cp else None,
            bool(feed.active),
            int(feed.id),
        )

    def page(
        self, info: FeedInfo, after: int = 0, limit: int = DEFAULT_PAGE, known_size: int = 0
    ) -> FeedPage:
        """Records ``after+1 ..`` (at most ``limit``) of the feed as of ``info`` (its signed
        size N), with the proofs a subscriber checks them by. FeedRangeError when ``after``
        or ``known_size`` is beyond N."""
        size = info.size
        _check_range(after, known_size, size)
        if info.checkpoint is None:
            raise FeedRangeError(f"the feed of {info.list_name!r} has no signed checkpoint yet")
        limit = max(1, min(MAX_PAGE, limit))
        end = min(size, after + limit)
        with self.db.read() as conn:
            sql = DriverSql(conn)
            records = [
                str(r[0])
                for r in sql.rows(
                    "SELECT record FROM feed_records WHERE feed_id = ? AND seq > ? AND seq <= ? "
                    "ORDER BY seq",
                    (info.feed_id, after, end),
                )
            ]
            proofs = self._proofs(
                conn,
                info.feed_id,
                lambda p: (consistency_proof(end, size, p), consistency_proof(known_size, size, p)),
            )
        page_proof, known_proof = proofs
        return FeedPage(
            info.origin,
            after,
            records,
            end < size,
            info.checkpoint,
            page_proof,
            known_size,
            known_proof,
        )

    def consistency(self, info: FeedInfo, first: int, second: int) -> list[bytes]:
        """The consistency proof between two sizes the feed has reached."""
        if not 0 <= first <= second:
            raise ConfigError("a consistency proof needs 0 <= first <= second")
        _check_range(first, second, info.size)
        with self.db.read() as conn:
            proof, _ = self._proofs(
                conn, info.feed_id, lambda p: (consistency_proof(first, second, p), [])
            )
        return proof

    @staticmethod
    def _proofs(
        conn: Connection,
        feed_id: int,
        compute: Callable[[PerfectNodes], tuple[list[bytes], list[bytes]]],
    ) -> tuple[list[bytes], list[bytes]]:
        """Run ``compute`` over the perfect nodes it needs, loaded in one query."""
        needed: set[PerfectNode] = needed_nodes(compute)
        by_level: dict[int, list[int]] = {}
        for level, index in sorted(needed):
            by_level.setdefault(level, []).append(index)
        # One statement: a leaf is the hash of its record (seq = index + 1), not a stored
        # node; above it, one primary-key seek per level (a row-value IN over (level, idx),
        # or an OR of the levels, made SQLite scan every node of the feed). Written as the
        # driver's SQL: building and compiling it through SQLAlchemy took longer than its run.
        parts: list[str] = []
        params: list[Any] = []
        for level, indexes in by_level.items():
            marks = ",".join("?" * len(indexes))
            if level == 0:
                parts.append(
                    "SELECT 0, seq - 1, NULL, record FROM feed_records "
                    f"WHERE feed_id = ? AND seq IN ({marks})"
                )
                params += [feed_id, *(i + 1 for i in indexes)]
            else:
                parts.append(
                    "SELECT level, idx, hash, NULL FROM feed_nodes "
                    f"WHERE feed_id = ? AND level = ? AND idx IN ({marks})"
                )
                params += [feed_id, level, *indexes]
        nodes: dict[PerfectNode, bytes] = {}
        if parts:
            for level, index, digest, record in DriverSql(conn).rows(
                " UNION ALL ".join(parts), tuple(params)
            ):
                node = bytes(digest) if record is None else leaf_hash(record.encode("utf-8"))
                nodes[(int(level), int(index))] = node
        missing = needed - nodes.keys()
        if missing:
            raise RuntimeError(f"the feed's tree lacks {len(missing)} of its nodes")
        return compute(lambda level, index: nodes[(level, index)])

    def record_read(
        self, info: FeedInfo, page: FeedPage, *, actor: str, source: str | None = None
    ) -> None:
        """Audit that ``actor`` read a page of the feed (which range, at which size)."""
        with self.db.begin() as conn:
            record_audit(
                conn,
                actor=actor,
                action="feed.read",
                target=f"feed:{info.list_name}",
                details={
                    "after": page.after,
                    "count": len(page.records),
                    "size": info.size,
                    "known_size": page.known_size,
                    **({"via": source} if source else {}),
                },
            )


def _check_range(first: int, second: int, size: int) -> None:
    if first < 0 or second < 0:
        raise ConfigError("record numbers and sizes are not negative")
    if first > size or second > size:
        raise FeedRangeError(
            f"the feed holds {size} signed records; {max(first, second)} were asked for "
            "(a subscriber ahead of the publisher: a rollback)"
        )


def _hash_types(names: Sequence[str] | None) -> list[str]:
    if not names:
        return [t.value for t in HashType]
    types = {parse_hash_type(n).value for n in names}
    return [t.value for t in HashType if t.value in types]


def _fields(names: Sequence[str] | None) -> list[str]:
    if names is None:
        return list(DEFAULT_FIELDS)
    chosen = {n.strip().lower() for n in names if n.strip()}
    unknown = chosen - set(SHAREABLE_FIELDS)
    if unknown:
        raise ConfigError(
            f"fields {', '.join(sorted(unknown))} cannot be shared; "
            f"choose from {', '.join(SHAREABLE_FIELDS)}"
        )
    return [f for f in SHAREABLE_FIELDS if f in chosen]
