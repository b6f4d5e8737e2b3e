"""Hash lists in the database: create, import (one transaction), export, change status.

An import streams the file in batches and reconciles it with what the list holds, keyed by the
entry's key hash (its first hash, ``"<type>:<value>"``):

* a record not in the list is added; one whose facts or hashes differ is updated; one equal to
  what is stored is left alone;
* in ``replace`` mode (the default) entries the file no longer contains are *withdrawn* —
  kept, with an event saying which version withdrew them, never deleted;
* a curator's decision outlives imports: a revoked or disputed entry stays so when the source
  lists it again.

Into a ``known`` list, a VICS file's uncategorised records are not imported, nor its
pre-categorised leads unless asked (:class:`~hashwatch.lists.formats.vics.KnownFilter`); the
report counts both.

The whole import is one transaction: a malformed record anywhere rolls everything back and the
previous version stays as it was. An import that would change nothing (the same file again)
is rolled back too, so the version moves only when the list changes. A file with no records
is an error, never an empty replace, and a replace that would withdraw more than
``max_withdraw_share`` of the live entries needs ``force``.

Every write (create, configure, delete, import, add, status change) runs in one transaction
that holds the list's writer lock (:meth:`Database.write`) before it reads anything, takes the
next version under it, and writes its audit record (:func:`record_audit`) with the actor
before it commits: two writers of one list run one after the other, and no write escapes the
audit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from hashwatch.config import DEFAULT_PDQ_THRESHOLD
from hashwatch.errors import (
    ConfigError,
    ListExistsError,
    ListFormatError,
)
from hashwatch.lists.categories import check_category
from hashwatch.lists.formats import FORMATS, open_list
from hashwatch.lists.formats.vics import VICS1, VICS2, KnownFilter
from hashwatch.lists.model import (
    CategoryScheme,
    EntryRecord,
    ListHeader,
    ListKind,
    check_list_name,
)
from hashwatch.signals.types import HashType
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_export import ListExportMixin
from hashwatch.store.list_import import (
    LIVE,
    ImportContext,
    batches,
    check_category_map,
    check_text,
    check_withdrawal,
    checked_categories,
    finish_import,
)
from hashwatch.store.list_import import jsonable_header as _jsonable_header
from hashwatch.store.list_status import ListStatusMixin, StatusChange, list_lock, list_row
from hashwatch.store.models import ENTRIES, EVENTS, HASHES, IMPORTS, LISTS, utcnow

__all__ = [
    "DEFAULT_MAX_WITHDRAW_SHARE",
    "HashListInfo",
    "ImportReport",
    "ListStore",
    "StatusChange",
]

# A replace import that would withdraw more than this share of a list's live entries is
# refused unless forced: a truncated or misread file must not empty a list.
DEFAULT_MAX_WITHDRAW_SHARE = 0.5

E = ENTRIES
H = HASHES
L = LISTS
I = IMPORTS  # noqa: E741
EV = EVENTS


@dataclass(frozen=True)
class HashListInfo:
    id: int
    name: str
    kind: ListKind
    scheme: str
    source_org: str | None
    pdq_threshold: int
    version: int
    description: str | None
    category_map: dict[str, str]
    counts: dict[str, int] = field(default_factory=dict)  # entries by status
    video_min_compared_pct: float = 80.0
    video_min_query_pct: float = 0.0
    local_features: bool = False  # media added stores local features; matching uses them


@dataclass
class ImportReport:
    list_name: str
    file: str
    file_sha256: str
    format: str
    mode: str
    version: int
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    reactivated: int = 0
    changed: bool = False
    created_list: bool = False
    forced: bool = False
    # VICS records a known list left out: uncategorised, or pre-categorised (not asked for).
    skipped_uncategorised: int = 0
    skipped_precategorized: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ListStore(ListStatusMixin, ListExportMixin):
    """The hash lists of one database.

    ``max_withdraw_share``: the share of a list's live entries (0 to 1) a replace import may
    withdraw without ``force``.
    """

    def __init__(
        self, db: Database, *, max_withdraw_share: float = DEFAULT_MAX_WITHDRAW_SHARE
    ) -> None:
        if not 0 <= max_withdraw_share <= 1:
            raise ConfigError(
                f"the withdraw share must be between 0 and 1, got {max_withdraw_share}"
            )
        self.db = db
        self.max_withdraw_share = max_withdraw_share

    # -- lists ---------------------------------------------------------------------------

    def _row(self, conn: Connection, name: str) -> Any:
        return list_row(conn, name)

    def _info(self, conn: Connection, row: Any, with_counts: bool = True) -> HashListInfo:
        counts: dict[str, int] = {}
        if with_counts:
            for status, n in conn.execute(
                select(E.c.status, func.count()).where(E.c.list_id == row.id).group_by(E.c.status)
            ):
                counts[status] = int(n)
        return HashListInfo(
            id=row.id,
            name=row.name,
            kind=ListKind(row.kind),
            scheme=row.scheme,
            source_org=row.source_org,
            pdq_threshold=row.pdq_threshold,
            version=row.version,
            description=row.description,
            category_map=dict(row.category_map or {}),
            counts=counts,
            video_min_compared_pct=float(row.video_min_compared_pct),
            video_min_query_pct=float(row.video_min_query_pct),
            local_features=bool(row.local_features),
        )

    def get(self, name: str, *, with_counts: bool = True) -> HashListInfo:
        """``with_counts=False``: no counts (counting reads every entry of the list)."""
        with self.db.read() as conn:
            return self._info(conn, self._row(conn, name), with_counts)

    def all(self) -> list[HashListInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(L).order_by(L.c.name)).all()
            return [self._info(conn, row) for row in rows]

    def create(
        self,
        name: str,
        kind: ListKind = ListKind.KNOWN,
        *,
        scheme: CategoryScheme = CategoryScheme.NONE,
        source_org: str | None = None,
        pdq_threshold: int = DEFAULT_PDQ_THRESHOLD,
        description: str | None = None,
        category_map: dict[str, str] | None = None,
        actor: str | None = None,
    ) -> HashListInfo:
        check_list_name(name)
        _check_threshold(pdq_threshold)
        check_category_map(category_map)
        source_org = check_text("source organisation", source_org, L.c.source_org)
        with self.db.write(list_lock(name)) as conn:
            if conn.execute(select(L.c.id).where(L.c.name == name)).first() is not None:
                raise ListExistsError(f"a hash list named {name!r} exists already")
            self.db.next_change_seq(conn)
            conn.execute(
                insert(L).values(
                    name=name,
                    kind=ListKind(kind).value,
                    scheme=CategoryScheme(scheme).value,
                    source_org=source_org,
                    pdq_threshold=pdq_threshold,
                    version=0,
                    description=description,
                    category_map=category_map or {},
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            info = self._info(conn, self._row(conn, name))
            record_audit(
                conn,
                actor=actor,
                action="list.created",
                target=name,
                details={"kind": info.kind.value, "scheme": info.scheme},
            )
            return info

    def configure(
        self,
        name: str,
        *,
        kind: ListKind | None = None,
        pdq_threshold: int | None = None,
        source_org: str | None = None,
        scheme: CategoryScheme | None = None,
        description: str | None = None,
        category_map: dict[str, str] | None = None,
        video_min_compared_pct: float | None = None,
        video_min_query_pct: float | None = None,
        local_features: bool | None = None,
        actor: str | None = None,
    ) -> HashListInfo:
        """Change a list's settings. Thresholds and kind take effect at the next match;
        ``local_features`` applies to media added from now on and to matching."""
        check_category_map(category_map)
        values: dict[str, Any] = {}
        for column, pct in (
            ("video_min_compared_pct", video_min_compared_pct),
            ("video_min_query_pct", video_min_query_pct),
        ):
            if pct is not None:
                if not 0 <= pct <= 100:
                    raise ConfigError(f"{column} must be between 0 and 100, got {pct}")
                values[column] = float(pct)
        if kind is not None:
            values["kind"] = ListKind(kind).value
        if pdq_threshold is not None:
            _check_threshold(pdq_threshold)
            values["pdq_threshold"] = pdq_threshold
        if source_org is not None:
            values["source_org"] = check_text("source organisation", source_org, L.c.source_org)
        if scheme is not None:
            values["scheme"] = CategoryScheme(scheme).value
        if description is not None:
            values["description"] = description
        if category_map is not None:
            values["category_map"] = category_map
        if local_features is not None:
            values["local_features"] = bool(local_features)
        with self.db.write(list_lock(name)) as conn:
            row = self._row(conn, name)
            if values:
                self.db.next_change_seq(conn)
                record_audit(
                    conn,
                    actor=actor,
                    action="list.configured",
                    target=name,
                    details={k: v for k, v in values.items() if k != "category_map"}
                    | ({"category_map": sorted(category_map)} if category_map is not None else {}),
                )
                values["updated_at"] = utcnow()
                conn.execute(update(L).where(L.c.id == row.id).values(**values))
            return self._info(conn, self._row(conn, name))

    def delete(self, name: str, *, actor: str | None = None) -> None:
        """Remove a list and all its entries. The index drops them at its next refresh.

        The audit trail keeps the list's history: every earlier write has its own audit
        record, and the deletion's record sums up what went (entries by status, imports,
        status changes by new status, the last version)."""
        with self.db.write(list_lock(name)) as conn:
            row = self._row(conn, name)
            self.db.next_change_seq(conn)
            self.db.bump_index_epoch(conn)
            entry_ids = select(E.c.id).where(E.c.list_id == row.id)
            summary = {
                "version": int(row.version),
                "kind": row.kind,
                "entries": self._info(conn, row).counts,
                "imports": conn.execute(
                    select(func.count()).select_from(I).where(I.c.list_id == row.id)
                ).scalar_one(),
                "status_changes": {
                    status: int(n)
                    for status, n in conn.execute(
                        select(EV.c.new_status, func.count())
                        .where(EV.c.entry_id.in_(entry_ids))
                        .group_by(EV.c.new_status)
                    )
                },
            }
            record_audit(conn, actor=actor, action="list.deleted", target=name, details=summary)
            conn.execute(delete(EV).where(EV.c.entry_id.in_(entry_ids)))
            conn.execute(delete(H).where(H.c.list_id == row.id))
            conn.execute(delete(E).where(E.c.list_id == row.id))
            conn.execute(delete(I).where(I.c.list_id == row.id))
            conn.execute(delete(L).where(L.c.id == row.id))

    def imports(self, name: str) -> list[dict[str, Any]]:
        """The import history of a list, newest first."""
        with self.db.read() as conn:
            row = self._row(conn, name)
            rows = conn.execute(
                select(I).where(I.c.list_id == row.id).order_by(I.c.id.desc())
            ).mappings()
            return [dict(r) for r in rows]

    # -- import ----------------------------------------------------------------------------

    def import_file(
        self,
        name: str,
        path: str | Path,
        *,
        fmt: str | None = None,
        kind: ListKind | None = None,
        scheme: CategoryScheme | None = None,
        source_org: str | None = None,
        pdq_threshold: int | None = None,
        mode: str = "replace",
        actor: str | None = None,
        default_hash_type: HashType | None = None,
        force: bool = False,
        display_name: str | None = None,
        include_precategorized: bool = False,
    ) -> ImportReport:
        """Import ``path`` into list ``name`` (created if missing) in one transaction.

        ``display_name`` names the file in messages, the report and the import record (an
        upload's own name, never the server's spool path); by default, ``path``.

        Raises :class:`ListFormatError` for a file without records, and :class:`ConfigError`
        for a replace that would withdraw more than ``max_withdraw_share`` of the list
        unless ``force``. ``include_precategorized``: import a VICS file's pre-categorised
        records into a known list too (by default they are skipped and counted)."""
        check_list_name(name)
        if mode not in ("replace", "append"):
            raise ConfigError("mode must be 'replace' or 'append'")
        path = Path(path)
        shown = display_name if display_name is not None else str(path)
        if not path.is_file():
            raise ConfigError(f"{shown}: no such file")
        sha = _file_sha256(path)
        last = self._last_import(name)
        if (
            last is not None
            and last["file_sha256"] == sha
            and last["mode"] == mode
            and bool((last["header"] or {}).get(_WITH_LEADS)) == include_precategorized
        ):
            # The very file the list was last built from: nothing can change.
            return ImportReport(
                list_name=name,
                file=shown,
                file_sha256=sha,
                format=last["format"],
                mode=mode,
                version=int(last["version"]),
                records=int(last["records"]),
                unchanged=int(last["records"]),
            )
        parsed = open_list(path, fmt, default_hash_type=default_hash_type, display_name=shown)
        return self._import_records(
            name,
            parsed.header,
            parsed.records,
            file=shown,
            file_sha256=sha,
            kind=kind,
            scheme=scheme,
            source_org=source_org,
            pdq_threshold=pdq_threshold,
            mode=mode,
            actor=actor,
            force=force,
            include_precategorized=include_precategorized,
        )

    def add_records(
        self,
        name: str,
        records: Iterable[EntryRecord],
        *,
        source: str,
        kind: ListKind | None = None,
        actor: str | None = None,
    ) -> ImportReport:
        """Add (or update) ``records`` in list ``name`` (created if missing), keeping the
        rest of the list: one transaction and one new version, like an import in append
        mode. ``source`` says where the records came from (e.g. "add-media: 3 files").
        Categories must be codes of the list's scheme (:func:`check_category`)."""
        check_list_name(name)
        batch = list(records)
        if not batch:
            raise ConfigError("no records to add")
        digest = hashlib.sha256()
        for record in batch:
            digest.update(f"{record.hashes[0][0].value}:{record.hashes[0][1]}\n".encode())
        header = ListHeader(format="media", scheme=None)
        return self._import_records(
            name,
            header,
            iter(batch),
            file=source,
            file_sha256=digest.hexdigest(),
            kind=kind,
            scheme=None,
            source_org=None,
            pdq_threshold=None,
            mode="append",
            actor=actor,
            person_given=True,
        )

    def check_category(self, name: str, code: str | None) -> str | None:
        """``code`` as list ``name`` would store it (a list not yet created takes any code),
        or :class:`ConfigError` naming the valid codes of its scheme."""
        with self.db.read() as conn:
            row = conn.execute(select(L).where(L.c.name == name)).first()
        if row is None:
            return code
        return check_category(row.scheme, code, dict(row.category_map or {}))

    def _import_records(
        self,
        name: str,
        header: ListHeader,
        records: Iterator[EntryRecord],
        *,
        file: str,
        file_sha256: str,
        kind: ListKind | None,
        scheme: CategoryScheme | None,
        source_org: str | None,
        pdq_threshold: int | None,
        mode: str,
        actor: str | None,
        force: bool = False,
        person_given: bool = False,
        include_precategorized: bool = False,
    ) -> ImportReport:
        sha = file_sha256
        report = ImportReport(
            list_name=name,
            file=file,
            file_sha256=sha,
            format=header.format,
            mode=mode,
            version=0,
        )
        source_org = check_text("source organisation", source_org, L.c.source_org)
        who = actor_or_user(actor)
        with self.db.write(list_lock(name)) as conn:
            # Under the list's writer lock: the version read here is the one to follow.
            row = conn.execute(select(L).where(L.c.name == name)).first()
            if row is None:
                _check_threshold(pdq_threshold or DEFAULT_PDQ_THRESHOLD)
                list_id = conn.execute(
                    insert(L).values(
                        name=name,
                        kind=ListKind(kind or header.suggested_kind or ListKind.KNOWN).value,
                        scheme=CategoryScheme(scheme or header.scheme or CategoryScheme.NONE).value,
                        source_org=source_org,
                        pdq_threshold=pdq_threshold or DEFAULT_PDQ_THRESHOLD,
                        version=0,
                        category_map={},
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                row = self._row(conn, name)
                report.created_list = True
            else:
                list_id = row.id
                if kind is not None and ListKind(kind).value != row.kind:
                    raise ConfigError(
                        f"list {name!r} is of kind {row.kind!r}; change it with "
                        f"`hashwatch lists set {name} --kind {ListKind(kind).value}` first"
                    )
            version = int(row.version) + 1
            report.version = version
            # Only a replace needs the live count (it bounds what is withdrawn); an append
            # must not pay for counting a list of a million entries (seconds).
            live_before = 0
            if mode == "replace":
                live = and_(E.c.list_id == list_id, E.c.status.in_(LIVE))
                live_before = conn.execute(select(func.count()).where(live)).scalar_one()
            seq = self.db.next_change_seq(conn)
            import_id = conn.execute(
                insert(I).values(
                    list_id=list_id,
                    version=version,
                    file_name=Path(file).name,
                    file_sha256=sha,
                    format=header.format,
                    mode=mode,
                    imported_by=who,
                    started_at=utcnow(),
                    header=_jsonable_header(header)
                    | ({_WITH_LEADS: True} if include_precategorized else {}),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            ctx = ImportContext(
                conn,
                list_id,
                version,
                seq,
                import_id,
                who,
                report,
                analyze=not self.db.is_sqlite,
            )
            if person_given:
                records = checked_categories(records, row.scheme, dict(row.category_map or {}))
            leads = KnownFilter(include_precategorized)
            if header.format in (VICS1, VICS2) and row.kind == ListKind.KNOWN.value:
                records = leads.filter(records)
            for batch in batches(records):
                ctx.apply(batch)
            report.skipped_uncategorised = leads.uncategorised
            report.skipped_precategorized = leads.precategorized
            if report.records == 0 and leads.skipped:
                raise ListFormatError(
                    f"none of the records in {Path(file).name} can enter known list {name!r}: "
                    f"{leads.in_words()}; nothing was imported"
                )
            if report.records == 0:
                fmt = FORMATS.get(header.format)
                expected = f" (expected: {fmt.description})" if fmt is not None else ""
                raise ListFormatError(
                    f"no records found in {Path(file).name} read as {header.format}{expected}; "
                    "nothing was imported"
                )
            if mode == "replace":
                gone = ctx.unseen_live()
                check_withdrawal(
                    len(gone),
                    int(live_before),
                    name,
                    force=force,
                    max_share=self.max_withdraw_share,
                )
                report.forced = force
                ctx.withdraw(gone)
            report.changed = bool(
                report.added
                or report.updated
                or report.withdrawn
                or report.reactivated
                or report.created_list
            )
            if not report.changed:
                # Nothing to record: leave the list exactly as it was (same version).
                report.version = int(row.version)
                conn.rollback()
                return report
            finish_import(conn, import_id, report)
            values: dict[str, Any] = {"version": version, "updated_at": utcnow()}
            if source_org and not row.source_org:
                values["source_org"] = source_org
            if row.scheme == CategoryScheme.NONE.value and (scheme or header.scheme):
                values["scheme"] = CategoryScheme(
                    scheme or header.scheme or CategoryScheme.NONE
                ).value
            conn.execute(update(L).where(L.c.id == list_id).values(**values))
            record_audit(
                conn,
                actor=who,
                action="entries.added" if person_given else "list.imported",
                target=name,
                details={k: v for k, v in report.as_dict().items() if k not in ("list_name",)}
                | {"file": Path(file).name},
            )
        return report

    def _last_import(self, name: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(select(L.c.id, L.c.version).where(L.c.name == name)).first()
            if row is None:
                return None
            imp = (
                conn.execute(
                    select(I)
                    .where(and_(I.c.list_id == row.id, I.c.version == row.version))
                    .order_by(I.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            return dict(imp) if imp is not None else None

    # -- status ----------------------------------------------------------------------------


# In an import's stored header: it took pre-categorised records in (another import's choice).
_WITH_LEADS = "include_precategorized"


def _check_threshold(threshold: int) -> None:
    if not 0 <= threshold <= 256:
        raise ConfigError(f"PDQ threshold must be between 0 and 256, got {threshold}")
