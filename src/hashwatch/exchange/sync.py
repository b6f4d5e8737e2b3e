"""The subscriber: pull each peer's changes, verify them (the exchange does), apply them.

For every page an exchange yields (:meth:`SignalExchange.fetch_iter`), one transaction
applies its changes to the local list, saves the checkpoint after it, adds to the
subscription's counts and writes the audit record: a sync killed at any point resumes from
the last page that committed, without loss or duplicates. Before it writes, the transaction
checks that the saved checkpoint is still the one the sync started from, so two processes
can never apply one page twice; a lease on the peer (renewed with each page) keeps other
replicas from syncing it at the same time.

An upsert becomes an entry with all the shared hashes (PDQ hashes enter the index through the
change sequence as any import's do; video frames are kept), the peer's category mapped onto
ours (:class:`PeerInfo.category_map`; a code of the same scheme as the local list's is kept
as it is; any other is stored as no category, with the raw code in the entry's ``extra`` and
the tag ``category-unmapped``) and its provenance (peer, origin, sequence number, organisation,
list, version, date) in ``extra["peer"]``. A deletion revokes the local entry ("revoked by peer
NAME"). A ``review`` peer's upserts wait in quarantine instead, not matchable, until a person
accepts them; deletions apply at once in both modes and drop what waits in quarantine.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select, update

from hashwatch.errors import ConfigError, ExchangeError, HashwatchError
from hashwatch.exchange.base import RemoteEntry, SignalExchange, exchange_of
from hashwatch.exchange.peers import (
    PeerInfo,
    PeerStore,
    Subscription,
    dispute_reason,
    map_category,
    remote_from_json,
    remote_to_json,
    revoke_reason,
    to_record,
)
from hashwatch.lists.categories import check_category
from hashwatch.lists.model import CategoryScheme, EntryRecord, ListKind
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_apply import AppliedChanges, apply_changes
from hashwatch.store.list_status import list_lock, list_row
from hashwatch.store.lists import ListStore
from hashwatch.store.models import utcnow
from hashwatch.store.peer_models import PEER_QUARANTINE, PEER_SUBSCRIPTIONS, PEERS

__all__ = [
    "ExchangeFactory",
    "QuarantinedEntry",
    "SyncReport",
    "Syncer",
]

P = PEERS
S = PEER_SUBSCRIPTIONS
Q = PEER_QUARANTINE
_CHUNK = 1000

# Builds the exchange that reads one subscription (a test seam: a wrapper can inject faults).
ExchangeFactory = Callable[[PeerInfo, Subscription], SignalExchange[Any]]


def _default_factory(peer: PeerInfo, sub: Subscription) -> SignalExchange[Any]:
    return exchange_of(peer.kind)(peer.config(sub.remote_list))


@dataclass
class SyncReport:
    """What a sync did to one subscription."""

    peer: str
    remote_list: str
    local_list: str
    pages: int = 0
    records: int = 0  # changes received (upserts and deletions)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    revoked: int = 0
    reinstated: int = 0
    quarantined: int = 0
    unreadable: int = 0  # entries with no hash this version can read (left out)
    position: int | None = None  # the checkpoint's "after", when it has one
    skipped: str | None = None  # why the subscription was not synced (another replica)
    error: str | None = None
    failure: HashwatchError | None = field(default=None, repr=False, compare=False)

    def add(self, changes: AppliedChanges) -> None:
        self.added += changes.added
        self.updated += changes.updated
        self.unchanged += changes.unchanged
        self.revoked += changes.revoked
        self.reinstated += changes.reinstated

    def as_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, failure=None))
        del out["failure"]
        return out


@dataclass(frozen=True)
class QuarantinedEntry:
    """An entry waiting for review: the peer's state of it and what it would become here."""

    peer: str
    remote_list: str
    local_list: str
    key: str
    seq: int | None
    entry: RemoteEntry
    category: str | None  # mapped onto ours
    unmapped: bool
    hash_types: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        prov = dict(self.entry.provenance)
        return {
            "peer": self.peer,
            "remote_list": self.remote_list,
            "local_list": self.local_list,
            "key": self.key,
            "seq": self.seq,
            "hash_types": self.hash_types,
            "category": self.category,
            "peer_category": self.entry.category,
            "peer_scheme": self.entry.scheme,
            "category_unmapped": self.unmapped,
            "disputed": self.entry.disputed,
            "provenance": {k: prov.get(k) for k in ("org", "list", "version", "date", "origin")},
        }


class Syncer:
    """Subscribing, syncing and the quarantine, over one database."""

    def __init__(
        self,
        db: Database,
        *,
        factory: ExchangeFactory | None = None,
        lease_s: float = 600.0,
        owner: str | None = None,
    ) -> None:
        self.db = db
        self.peers = PeerStore(db)
        self.lists = ListStore(db)
        self.factory = factory or _default_factory
        self.lease = timedelta(seconds=lease_s)
        self.owner = owner or f"{socket.gethostname()[:60]}:{os.getpid()}"

    # -- subscribing -------------------------------------------------------------------

    def subscribe(
        self,
        name: str,
        url: str,
        *,
        lists: Sequence[tuple[str, str]],
        token: str | None = None,
        key: str | None = None,
        kind: str = "hashwatch",
        trust: str = "auto",
        category_map: Mapping[str, str] | None = None,
        scheme: CategoryScheme = CategoryScheme.US,
        options: Mapping[str, str] | None = None,
        actor: str | None = None,
    ) -> PeerInfo:
        """Add a peer: reach it, verify and pin each feed's origin from its signed checkpoint
        (remembered, so that a later rewrite of history is caught), create the local lists
        (kind known, ``scheme``) that do not exist, and record the subscriptions."""
        mapping = dict(category_map or {})
        origins: dict[str, str] = {}
        checkpoints: dict[str, dict[str, Any]] = {}
        draft = PeerInfo(0, name, url, kind, token, key, trust, mapping, dict(options or {}), [])
        with self.db.read() as conn:
            if conn.execute(select(P.c.id).where(P.c.name == name)).first() is not None:
                raise ExchangeError(f"a peer named {name!r} exists already")
        for remote, local in lists:
            sub = Subscription(0, remote, local, None, None)
            exchange = self.factory(replace(draft, subscriptions=[sub]), sub)
            start = getattr(exchange, "initial_checkpoint", None)
            if callable(start):
                checkpoints[remote] = start().to_json()
            origin = getattr(exchange, "origin", None)
            if isinstance(origin, str):
                origins[remote] = origin
        for _, local in lists:
            try:
                info = self.lists.get(local, with_counts=False)
            except HashwatchError:
                info = self.lists.create(local, ListKind.KNOWN, scheme=scheme, actor=actor)
            for code in mapping.values():
                check_category(info.scheme, code, info.category_map)
        self.peers.add(
            name,
            url,
            lists=lists,
            token=token,
            key=key,
            kind=kind,
            trust=trust,
            category_map=mapping,
            options=options,
            origins=origins,
            checkpoints=checkpoints,
            actor=actor,
        )
        return self.peers.get(name)

    # -- syncing -----------------------------------------------------------------------

    def sync_all(self, *, on_page: Callable[[SyncReport], None] | None = None) -> list[SyncReport]:
        """Sync every peer; a failing peer is recorded and the others still run."""
        reports: list[SyncReport] = []
        for peer in self.peers.all():
            reports += self.sync(peer.name, on_page=on_page, raise_errors=False)
        return reports

    def sync(
        self,
        name: str,
        *,
        on_page: Callable[[SyncReport], None] | None = None,
        raise_errors: bool = True,
    ) -> list[SyncReport]:
        """Sync every subscription of peer ``name``. Errors are recorded on the subscription
        (``peers list`` shows them) and audited; with ``raise_errors`` the first is raised
        once all subscriptions were tried."""
        peer = self.peers.get(name)
        reports = [SyncReport(name, s.remote_list, s.local_list) for s in peer.subscriptions]
        if not self._take_lease(name):
            for report in reports:
                report.skipped = "another process is syncing this peer"
            return reports
        first: BaseException | None = None
        try:
            for sub, report in zip(peer.subscriptions, reports, strict=True):
                try:
                    self._sync_one(peer, sub, report, on_page)
                except HashwatchError as exc:
                    report.error, report.failure = str(exc), exc
                    self.peers.record_error(name, sub.remote_list, str(exc))
                    first = first or exc
                except Exception as exc:
                    self.peers.record_error(name, sub.remote_list, type(exc).__name__)
                    raise
        finally:
            self._release_lease(name)
        if first is not None and raise_errors:
            raise first
        return reports

    def _take_lease(self, name: str) -> bool:
        now = utcnow()
        with self.db.begin() as conn:
            taken = conn.execute(
                update(P)
                .where(
                    and_(
                        P.c.name == name,
                        or_(
                            P.c.sync_owner.is_(None),
                            P.c.sync_owner == self.owner,
                            P.c.sync_until < now,
                        ),
                    )
                )
                .values(sync_owner=self.owner, sync_until=now + self.lease)
            ).rowcount
        return bool(taken)

    def _release_lease(self, name: str) -> None:
        with self.db.begin() as conn:
            conn.execute(
                update(P)
                .where(and_(P.c.name == name, P.c.sync_owner == self.owner))
                .values(sync_owner=None, sync_until=None)
            )

    def _sync_one(
        self,
        peer: PeerInfo,
        sub: Subscription,
        report: SyncReport,
        on_page: Callable[[SyncReport], None] | None,
    ) -> None:
        exchange = self.factory(peer, sub)
        expected = sub.checkpoint
        start = None if expected is None else exchange.checkpoint_from_json(expected)
        scheme = self.lists.get(sub.local_list, with_counts=False).scheme
        report.position = None if expected is None else expected.get("after")
        for delta in exchange.fetch_iter(start):
            with self.db.write(list_lock(sub.local_list)) as conn:
                current = conn.execute(select(S.c.checkpoint).where(S.c.id == sub.id)).first()
                if current is None:
                    raise ExchangeError(f"peer {peer.name}'s subscription was removed meanwhile")
                if current.checkpoint != expected:
                    raise ExchangeError(
                        f"peer {peer.name}, list {sub.remote_list}: another process applied "
                        "pages meanwhile; sync again to continue from there"
                    )
                conn.execute(
                    update(P)
                    .where(P.c.id == peer.id)
                    .values(sync_owner=self.owner, sync_until=utcnow() + self.lease)
                )
                page = self._apply(conn, peer, sub, delta.updates, scheme)
                saved = delta.checkpoint.to_json()
                conn.execute(
                    update(S)
                    .where(S.c.id == sub.id)
                    .values(
                        checkpoint=saved,
                        pages=S.c.pages + 1,
                        upserts=S.c.upserts + page.upserts,
                        revocations=S.c.revocations + page.deletions,
                        quarantined=S.c.quarantined + page.quarantined,
                        last_sync_at=utcnow(),
                        last_error=None,
                        last_error_at=None,
                    )
                )
                record_audit(
                    conn,
                    actor=f"peer:{peer.name}",
                    action="peer.page_applied",
                    target=peer.name,
                    details={
                        "list": sub.remote_list,
                        "local_list": sub.local_list,
                        "upserts": page.upserts,
                        "deletions": page.deletions,
                        "quarantined": page.quarantined,
                        "position": saved.get("after"),
                    },
                )
            expected = saved
            report.pages += 1
            report.records += page.upserts + page.deletions
            report.quarantined += page.quarantined
            report.unreadable += page.unreadable
            report.position = saved.get("after")
            if page.changes is not None:
                report.add(page.changes)
            if on_page is not None:
                on_page(report)
        if report.pages == 0 or sub.checkpoint is None:
            with self.db.begin() as conn:
                conn.execute(
                    update(S)
                    .where(S.c.id == sub.id)
                    .values(last_sync_at=utcnow(), last_error=None, last_error_at=None)
                )

    def _apply(
        self,
        conn: Connection,
        peer: PeerInfo,
        sub: Subscription,
        updates: Mapping[str, RemoteEntry | None],
        scheme: str,
    ) -> _Page:
        page = _Page()
        upserts: list[EntryRecord] = []
        held: list[tuple[str, RemoteEntry]] = []
        deletions: list[str] = []
        for key, entry in updates.items():
            if entry is None:
                deletions.append(key)
                continue
            page.upserts += 1
            if peer.trust == "review":
                held.append((key, entry))
                continue
            record = to_record(entry, peer.name, peer.category_map, scheme)
            if record is None:
                page.unreadable += 1
            else:
                upserts.append(record)
        page.deletions = len(deletions)
        if peer.trust == "review":
            _drop_quarantined(conn, sub.id, deletions)
            page.quarantined = _hold(conn, sub.id, held)
        elif _holds_any(conn, sub.id):  # what waited from an earlier review is superseded
            _drop_quarantined(conn, sub.id, list(updates))
        if upserts or deletions:
            page.changes = apply_changes(
                self.db,
                conn,
                sub.local_list,
                upserts,
                deletions,
                actor=f"peer:{peer.name}",
                source=f"peer {peer.name}: {sub.remote_list}",
                revoke_reason=revoke_reason(peer.name),
                dispute_reason=dispute_reason(peer.name),
                details={"peer": peer.name},
            )
        return page

    # -- quarantine --------------------------------------------------------------------

    def quarantine(
        self, name: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[QuarantinedEntry]:
        """Entries waiting for review (of peer ``name``, or all), oldest first."""
        peers = [self.peers.get(name)] if name else self.peers.all()
        out: list[QuarantinedEntry] = []
        for peer in peers:
            for sub in peer.subscriptions:
                scheme = self._scheme(sub.local_list)
                with self.db.read() as conn:
                    rows = conn.execute(
                        select(Q)
                        .where(Q.c.subscription_id == sub.id)
                        .order_by(Q.c.id)
                        .limit(limit + offset)
                    ).all()
                for row in rows:
                    entry = remote_from_json(row.entry)
                    category, unmapped = map_category(entry, peer.category_map, scheme)
                    types = sorted({h.hash_type for h in entry.hashes})
                    out.append(
                        QuarantinedEntry(
                            peer.name,
                            sub.remote_list,
                            sub.local_list,
                            row.key,
                            row.seq,
                            entry,
                            category,
                            unmapped,
                            types,
                        )
                    )
        return out[offset : offset + limit]

    def _scheme(self, local: str) -> str:
        try:
            return self.lists.get(local, with_counts=False).scheme
        except HashwatchError:
            return CategoryScheme.NONE.value

    def accept(
        self, name: str, keys: Iterable[str] | None = None, *, actor: str | None = None
    ) -> dict[str, int]:
        """Move quarantined entries (``keys``; None: all) of peer ``name`` into its lists."""
        return self._decide(name, keys, accept=True, actor=actor)

    def reject(
        self, name: str, keys: Iterable[str] | None = None, *, actor: str | None = None
    ) -> dict[str, int]:
        """Drop quarantined entries (``keys``; None: all). The peer's later changes to them
        come back to quarantine."""
        return self._decide(name, keys, accept=False, actor=actor)

    def _decide(
        self, name: str, keys: Iterable[str] | None, *, accept: bool, actor: str | None
    ) -> dict[str, int]:
        peer = self.peers.get(name)
        wanted = None if keys is None else list(dict.fromkeys(keys))
        if wanted is not None and not wanted:
            raise ConfigError("name the entries (keys) to decide, or --all")
        counts = {"accepted" if accept else "rejected": 0, "added": 0, "updated": 0}
        found: set[str] = set()
        for sub in peer.subscriptions:
            last = 0
            while True:
                with self.db.write(list_lock(sub.local_list)) as conn:
                    query = select(Q).where(and_(Q.c.subscription_id == sub.id, Q.c.id > last))
                    if wanted is not None:
                        query = query.where(Q.c.key.in_(wanted))
                    rows = conn.execute(query.order_by(Q.c.id).limit(_CHUNK)).all()
                    if not rows:
                        break
                    last = int(rows[-1].id)
                    found.update(r.key for r in rows)
                    if accept:
                        scheme = list_row(conn, sub.local_list).scheme
                        records = [
                            rec
                            for r in rows
                            if (
                                rec := to_record(
                                    remote_from_json(r.entry), name, peer.category_map, scheme
                                )
                            )
                            is not None
                        ]
                        changes = apply_changes(
                            self.db,
                            conn,
                            sub.local_list,
                            records,
                            actor=actor,
                            source=f"peer {name}: {sub.remote_list} (accepted)",
                            revoke_reason=revoke_reason(name),
                            dispute_reason=dispute_reason(name),
                            action="entries.accepted",
                            details={"peer": name},
                        )
                        counts["added"] += changes.added
                        counts["updated"] += changes.updated
                    conn.execute(delete(Q).where(Q.c.id.in_([int(r.id) for r in rows])))
                    counts["accepted" if accept else "rejected"] += len(rows)
                    record_audit(
                        conn,
                        actor=actor,
                        action="peer.accepted" if accept else "peer.rejected",
                        target=name,
                        details={"list": sub.remote_list, "entries": len(rows)},
                    )
        if wanted is not None and (missing := [k for k in wanted if k not in found]):
            raise ExchangeError(
                f"not waiting in peer {name}'s quarantine: {', '.join(missing[:10])}"
                + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            )
        return counts


@dataclass
class _Page:
    upserts: int = 0
    deletions: int = 0
    quarantined: int = 0
    unreadable: int = 0
    changes: AppliedChanges | None = None


def _holds_any(conn: Connection, sub_id: int) -> bool:
    """Whether anything of the subscription waits in quarantine (one index probe)."""
    found = conn.execute(select(Q.c.id).where(Q.c.subscription_id == sub_id).limit(1)).first()
    return found is not None


def _drop_quarantined(conn: Connection, sub_id: int, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        conn.execute(delete(Q).where(and_(Q.c.subscription_id == sub_id, Q.c.key.in_(chunk))))


def _hold(conn: Connection, sub_id: int, held: Sequence[tuple[str, RemoteEntry]]) -> int:
    """Put (or refresh) entries in quarantine; returns how many."""
    for start in range(0, len(held), _CHUNK):
        chunk = held[start : start + _CHUNK]
        there = {
            r.key: int(r.id)
            for r in conn.execute(
                select(Q.c.id, Q.c.key).where(
                    and_(Q.c.subscription_id == sub_id, Q.c.key.in_([k for k, _ in chunk]))
                )
            )
        }
        fresh, stale = [], []
        now = utcnow()
        for key, entry in chunk:
            values = {"entry": remote_to_json(entry), "seq": entry.provenance.get("seq")}
            if key in there:
                stale.append(
                    {"b_id": there[key], "b_entry": values["entry"], "b_seq": values["seq"]}
                )
            else:
                fresh.append({"subscription_id": sub_id, "key": key, "received_at": now, **values})
        if stale:  # one statement for the entries already waiting, not one each
            conn.execute(
                update(Q)
                .where(Q.c.id == bindparam("b_id"))
                .values(entry=bindparam("b_entry"), seq=bindparam("b_seq"), received_at=now),
                stale,
            )
        if fresh:
            conn.execute(insert(Q), fresh)
    return len(held)
