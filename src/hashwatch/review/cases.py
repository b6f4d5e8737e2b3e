"""Cases in the database: a scan's output directory recorded so that a team can review it.

``import_case`` verifies the case directory first (:func:`hashwatch.report.manifest.verify_case`:
a modified, missing or added output, or a broken audit log, refuses the import), then records
the case's details, every item of ``results.jsonl`` (digests, scan status, cluster, rank and
its reasons, EXIF leads, matches, error), the clusters of ``clusters.jsonl`` and the small
JPEGs of ``thumbnails.jsonl`` in one transaction with its audit record. Full-size media stays
in the evidence (:mod:`hashwatch.review.media`). A case scanned without thumbnails
(``hashwatch scan --no-thumbnails``) gets each item's thumbnail made from the evidence the
first time it is shown (:meth:`CaseStore.make_thumbnail`), stored with its own audit record.

A case is keyed by the scan's own case id (the manifest's ``case.case_id``): importing the
same case again changes nothing; a case directory with that id but another manifest (the
scan's outputs written again) is refused rather than merged into what reviewers have seen.

Every item and cluster starts ``pending``; votes and settled decisions come with review.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select

from hashwatch.errors import CaseNotFoundError, CaseRefusedError, HashwatchError
from hashwatch.report.manifest import MANIFEST, verify_case
from hashwatch.report.review_data import (
    CLUSTERS_FILE,
    THUMBNAILS_FILE,
    read_clusters,
    read_thumbnails,
)
from hashwatch.review.list_step import pending_count
from hashwatch.review.media import MediaRead, read_evidence_item, read_evidence_thumbnail
from hashwatch.scan.model import Cluster, ItemRecord, ItemStatus
from hashwatch.store.audit import actor_or_user, record_audit
from hashwatch.store.database import Database
from hashwatch.store.models import CASE_CLUSTERS, CASE_ITEMS, CASE_THUMBNAILS, CASES, utcnow

__all__ = [
    "DEFAULT_CONSENSUS",
    "PENDING",
    "CaseImport",
    "CaseInfo",
    "CaseItem",
    "CaseStatus",
    "CaseStore",
]

DEFAULT_CONSENSUS = 3
PENDING = "pending"  # the review state of every item and cluster until votes exist
RESULTS = "results.jsonl"
MAX_PROBLEMS_SHOWN = 5
# The queue's order after the clusters of new media: known matches to confirm, then the rest.
_STATUS_ORDER = {
    ItemStatus.NEW: 0,
    ItemStatus.KNOWN: 1,
    ItemStatus.ERROR: 2,
    ItemStatus.IGNORABLE: 3,
    ItemStatus.OTHER: 4,
}
_DIGEST_FIELDS = (
    "md5",
    "sha1",
    "sha256",
    "ed2k",
    "ed2k_red",
    "sha1_base32",
    "pdq",
    "pdq_quality",
    "pdq_dihedral",
    "pdq_policy",
    "frames",
)


@dataclass(frozen=True)
class CaseInfo:
    """A case as recorded: the examiner's details, where it came from, who imported it."""

    id: int
    case_uid: str
    case_number: str | None
    agency: str | None
    examiner: str | None
    case_dir: str
    evidence: list[dict[str, Any]]
    consensus_k: int
    imported_at: datetime
    imported_by: str
    scan: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["imported_at"] = self.imported_at.isoformat()
        return out


@dataclass(frozen=True)
class CaseStatus:
    """Counts of a case's items and clusters by review state, and of items by scan status."""

    case: CaseInfo
    items: int
    clusters: int
    items_by_review: dict[str, int]
    clusters_by_review: dict[str, int]
    items_by_scan_status: dict[str, int]
    thumbnails: int
    # standing decisions whose list entries are still to be added (see review.list_step)
    list_steps_pending: int = 0

    def as_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["case"] = self.case.as_json()
        return out


@dataclass(frozen=True)
class CaseImport:
    """What ``import_case`` did: ``created`` False when the case was imported before."""

    case: CaseInfo
    created: bool
    items: int
    clusters: int
    thumbnails: int

    def as_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["case"] = self.case.as_json()
        return out


@dataclass(frozen=True)
class CaseItem:
    """One item of a case as recorded (what a review page shows and reads media by)."""

    id: int
    root: str
    path: str
    size: int | None
    sha256: str | None
    media_type: str | None
    scan_status: str
    cluster_number: int | None
    rank: int
    priority: float | None
    reasons: list[str]
    exif: dict[str, Any] | None
    matches: list[dict[str, Any]]
    error: str | None
    review_status: str
    # A P2P client record (no media: its facts are shown instead), kept in the digests column.
    p2p: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _refuse_unverified(case_dir: Path) -> None:
    result = verify_case(case_dir)
    if result.ok:
        return
    shown = "; ".join(str(p) for p in result.problems[:MAX_PROBLEMS_SHOWN])
    more = len(result.problems) - MAX_PROBLEMS_SHOWN
    if more > 0:
        shown += f"; and {more} more"
    raise CaseRefusedError(
        f"{case_dir} does not verify against its manifest, not imported: {shown} "
        "(see 'hashwatch verify')"
    )


def _read_records(path: Path) -> list[ItemRecord]:
    records = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(ItemRecord.from_json(json.loads(line)))
            except (ValueError, TypeError, KeyError) as exc:
                raise CaseRefusedError(
                    f"{RESULTS} line {number} is not a scan record ({type(exc).__name__})"
                ) from None
    return records


def _ranked(
    records: Sequence[ItemRecord], clusters: Sequence[Cluster]
) -> Iterator[tuple[ItemRecord, int, float | None, list[str]]]:
    """Records in the scan's priority order with rank, priority and reasons: clusters of
    new media by number (each one's representative first), then the other new media,
    known matches, errors, ignorable and other files, each in scan order."""
    by_number = {c.number: c for c in clusters}

    def key(pair: tuple[int, ItemRecord]) -> tuple[int, int, int, int]:
        position, record = pair
        cluster = by_number.get(record.cluster) if record.cluster is not None else None
        if cluster is not None:
            first = 0 if record.path == cluster.representative else 1
            return (0, cluster.number, first, position)
        return (1 + _STATUS_ORDER.get(record.status, 9), 0, 0, position)

    for rank, (_, record) in enumerate(sorted(enumerate(records), key=key), 1):
        cluster = by_number.get(record.cluster) if record.cluster is not None else None
        if cluster is not None:
            yield record, rank, cluster.priority, list(cluster.reasons)
            continue
        # One reason per list entry matched, naming every hash it matched by.
        by_entry: dict[tuple[str, Any], tuple[str | None, list[str]]] = {}
        for match in record.matches:
            label = match.category_label or match.category
            _, hashes = by_entry.setdefault((match.list, match.entry_id), (label, []))
            if match.hash_type not in hashes:
                hashes.append(match.hash_type)
        reasons = [
            f"matches list {name}"
            + (f" (category {label})" if label else "")
            + f" by {', '.join(hashes)}"
            for (name, _), (label, hashes) in by_entry.items()
        ]
        yield record, rank, None, reasons


def _item_row(
    case_id: int, record: ItemRecord, rank: int, priority: float | None, reasons: list[str]
) -> dict[str, Any]:
    data = record.as_json()
    digests = {k: data[k] for k in _DIGEST_FIELDS if data.get(k) is not None}
    digests.update(record.signals)
    if record.p2p is not None:  # a P2P record's facts: client, name, dates, ... (no media)
        digests["p2p"] = record.p2p
    return {
        "case_id": case_id,
        "root": record.root,
        "path": record.path,
        "size": record.size,
        "sha256": record.sha256,
        "digests": digests,
        "media_type": record.media_type,
        "mime": record.mime,
        "scan_status": record.status.value,
        "cluster_number": record.cluster,
        "rank": rank,
        "priority": priority,
        "reasons": reasons,
        "exif": record.exif,
        "matches": data.get("matches", []),
        "error": record.error,
        "review_status": PENDING,
    }


def _info(row: Any) -> CaseInfo:
    return CaseInfo(
        id=int(row.id),
        case_uid=row.case_uid,
        case_number=row.case_number,
        agency=row.agency,
        examiner=row.examiner,
        case_dir=row.case_dir,
        evidence=list(row.evidence or []),
        consensus_k=int(row.consensus_k),
        imported_at=row.imported_at,
        imported_by=row.imported_by,
        scan=dict(row.scan or {}),
    )


class CaseStore:
    """The cases of one database: import, list, show, status, thumbnails and full-size media."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- import --------------------------------------------------------------------------

    def import_case(
        self,
        case_dir: str | Path,
        *,
        actor: str | None = None,
        consensus_k: int = DEFAULT_CONSENSUS,
    ) -> CaseImport:
        """Record the case in ``case_dir`` (verified first); nothing changes when it is in
        the database already. ``consensus_k``: reviewers who must agree (1 for a lone
        investigator)."""
        if consensus_k < 1:
            raise HashwatchError("the number of agreeing reviewers must be at least 1")
        root = Path(case_dir).resolve()
        if not (root / MANIFEST).is_file():
            raise CaseRefusedError(f"{root} holds no {MANIFEST}: not a finished hashwatch scan")
        _refuse_unverified(root)
        manifest_bytes = (root / MANIFEST).read_bytes()
        manifest = json.loads(manifest_bytes)
        case = manifest.get("case") or {}
        case_uid = case.get("case_id")
        if not isinstance(case_uid, str) or not case_uid:
            raise CaseRefusedError(f"{root}: the manifest names no case id")
        if RESULTS not in manifest.get("outputs", {}):
            raise CaseRefusedError(f"{root}: the manifest records no {RESULTS}")
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        existing = self._existing(case_uid, manifest_sha, root)
        if existing is not None:
            return existing
        records = _read_records(root / RESULTS)
        try:
            clusters = read_clusters(root / CLUSTERS_FILE)
            thumbs = list(read_thumbnails(root / THUMBNAILS_FILE))
        except HashwatchError as exc:
            raise CaseRefusedError(f"{root}: {exc}") from None
        who = actor_or_user(actor)
        scan = {
            "manifest_sha256": manifest_sha,
            "started": manifest.get("started"),
            "finished": manifest.get("finished"),
            "hashwatch_version": manifest.get("hashwatch_version"),
            "operator": case.get("operator"),
            "host": case.get("host"),
            "lists": manifest.get("lists", []),
            "settings": manifest.get("settings", {}),
        }
        done: CaseImport | None = None
        with self.db.write(lock="cases") as conn:
            if self._row(conn, case_uid) is None:  # not imported meanwhile by another writer
                inserted = conn.execute(
                    insert(CASES).values(
                        case_uid=case_uid,
                        case_number=case.get("case_number"),
                        agency=case.get("agency"),
                        examiner=case.get("examiner"),
                        case_dir=str(root),
                        evidence=manifest.get("evidence", []),
                        scan=scan,
                        consensus_k=consensus_k,
                        imported_at=utcnow(),
                        imported_by=who,
                    )
                ).inserted_primary_key
                assert inserted is not None
                self._insert_contents(conn, int(inserted[0]), records, clusters, thumbs)
                record_audit(
                    conn,
                    actor=who,
                    action="case.import",
                    target=f"case:{case_uid}",
                    details={
                        "case_number": case.get("case_number"),
                        "case_dir": str(root),
                        "items": len(records),
                        "clusters": len(clusters),
                        "thumbnails": len(thumbs),
                        "manifest_sha256": manifest_sha,
                        "consensus_k": consensus_k,
                    },
                )
                info = _info(self._row(conn, case_uid))
                done = CaseImport(info, True, len(records), len(clusters), len(thumbs))
        if done is None:
            done = self._existing(case_uid, manifest_sha, root)
            assert done is not None
        return done

    def _existing(self, case_uid: str, manifest_sha: str, root: Path) -> CaseImport | None:
        with self.db.read() as conn:
            row = self._row(conn, case_uid)
            if row is None:
                return None
            info = _info(row)
            if info.scan.get("manifest_sha256") != manifest_sha:
                raise CaseRefusedError(
                    f"{root}: case {case_uid} is in the database already, imported from "
                    "other outputs (its manifest differs): not imported again"
                )
            counts = self._counts(conn, info.id)
        return CaseImport(info, False, counts[0], counts[1], counts[2])

    def _insert_contents(
        self,
        conn: Connection,
        case_id: int,
        records: Sequence[ItemRecord],
        clusters: Sequence[Cluster],
        thumbs: Sequence[tuple[str, str, bytes]],
    ) -> None:
        if clusters:
            conn.execute(
                insert(CASE_CLUSTERS),
                [
                    {
                        "case_id": case_id,
                        "number": c.number,
                        "priority": c.priority,
                        "reasons": list(c.reasons),
                        "representative": c.representative,
                        "members": list(c.members),
                        "nearest_known_distance": c.nearest_known_distance,
                        "review_status": PENDING,
                    }
                    for c in clusters
                ],
            )
        rows = [_item_row(case_id, *ranked) for ranked in _ranked(records, clusters)]
        if rows:
            conn.execute(insert(CASE_ITEMS), rows)
        if thumbs:
            ids = {
                (r.root, r.path): int(r.id)
                for r in conn.execute(
                    select(CASE_ITEMS.c.id, CASE_ITEMS.c.root, CASE_ITEMS.c.path).where(
                        CASE_ITEMS.c.case_id == case_id
                    )
                )
            }
            kept = [
                {"item_id": ids[(r, p)], "jpeg": jpeg} for r, p, jpeg in thumbs if (r, p) in ids
            ]
            if kept:
                conn.execute(insert(CASE_THUMBNAILS), kept)

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _row(conn: Connection, case_uid: str) -> Any:
        return conn.execute(select(CASES).where(CASES.c.case_uid == case_uid)).first()

    @staticmethod
    def _counts(conn: Connection, case_id: int) -> tuple[int, int, int]:
        items = conn.execute(
            select(func.count()).select_from(CASE_ITEMS).where(CASE_ITEMS.c.case_id == case_id)
        ).scalar_one()
        clusters = conn.execute(
            select(func.count())
            .select_from(CASE_CLUSTERS)
            .where(CASE_CLUSTERS.c.case_id == case_id)
        ).scalar_one()
        thumbs = conn.execute(
            select(func.count())
            .select_from(CASE_THUMBNAILS.join(CASE_ITEMS))
            .where(CASE_ITEMS.c.case_id == case_id)
        ).scalar_one()
        return int(items), int(clusters), int(thumbs)

    def _resolve(self, conn: Connection, ref: str) -> Any:
        """A case by its case id, case number (when only one case has it) or database id."""
        row = self._row(conn, ref)
        if row is not None:
            return row
        rows = conn.execute(select(CASES).where(CASES.c.case_number == ref)).all()
        if len(rows) == 1:
            return rows[0]
        if len(rows) > 1:
            raise CaseNotFoundError(
                f"{len(rows)} cases have case number {ref!r}: name one by its case id"
            )
        if ref.isascii() and ref.isdigit():  # not "²", which int() refuses
            row = conn.execute(select(CASES).where(CASES.c.id == int(ref))).first()
            if row is not None:
                return row
        raise CaseNotFoundError(f"no case {ref!r} (give its case id or case number)")

    def row_of(self, conn: Connection, ref: str) -> Any:
        """The case's row in ``conn`` (for review's writes in their own transaction)."""
        return self._resolve(conn, ref)

    def all(self) -> list[CaseInfo]:
        """Every case, the latest imported first."""
        with self.db.read() as conn:
            rows = conn.execute(select(CASES).order_by(CASES.c.id.desc())).all()
        return [_info(r) for r in rows]

    def get(self, ref: str) -> CaseInfo:
        with self.db.read() as conn:
            return _info(self._resolve(conn, ref))

    def status(self, ref: str) -> CaseStatus:
        """Items and clusters by review state (all ``pending`` until votes exist) and items by
        the scan's status (known, new, ignorable, other, error)."""
        with self.db.read() as conn:
            info = _info(self._resolve(conn, ref))
            items_review, items_scan = self._grouped(conn, info.id)
            clusters_review = {
                str(k): int(n)
                for k, n in conn.execute(
                    select(CASE_CLUSTERS.c.review_status, func.count())
                    .where(CASE_CLUSTERS.c.case_id == info.id)
                    .group_by(CASE_CLUSTERS.c.review_status)
                )
            }
            items, clusters, thumbs = self._counts(conn, info.id)
            pending = pending_count(conn, info.id)
        return CaseStatus(
            info, items, clusters, items_review, clusters_review, items_scan, thumbs, pending
        )

    @staticmethod
    def _grouped(conn: Connection, case_id: int) -> tuple[dict[str, int], dict[str, int]]:
        """Items by review state and by scan status, in one pass over the case's items (a
        pass per grouping cost 0.1 s each at 100,000 items)."""
        review: Counter[str] = Counter()
        scan: Counter[str] = Counter()
        rows = conn.execute(
            select(CASE_ITEMS.c.review_status, CASE_ITEMS.c.scan_status, func.count())
            .where(CASE_ITEMS.c.case_id == case_id)
            .group_by(CASE_ITEMS.c.review_status, CASE_ITEMS.c.scan_status)
        )
        for state, status, n in rows:
            review[str(state)] += int(n)
            scan[str(status)] += int(n)
        return dict(sorted(review.items())), dict(sorted(scan.items()))

    def items(self, ref: str, *, limit: int | None = None) -> list[CaseItem]:
        """The case's items in the scan's priority order (rank 1 first)."""
        with self.db.read() as conn:
            info = _info(self._resolve(conn, ref))
            query = (
                select(CASE_ITEMS)
                .where(CASE_ITEMS.c.case_id == info.id)
                .order_by(CASE_ITEMS.c.rank)
                .limit(limit)
            )
            rows = conn.execute(query).all()
        return [_item(r) for r in rows]

    def item(self, item_id: int) -> CaseItem:
        with self.db.read() as conn:
            row = conn.execute(select(CASE_ITEMS).where(CASE_ITEMS.c.id == item_id)).first()
        if row is None:
            raise CaseNotFoundError(f"no case item {item_id}")
        return _item(row)

    def thumbnail(self, item_id: int) -> bytes | None:
        """The item's small JPEG (a video's contact sheet) as stored, None when there is none
        (the scan made none, or none has been made from the evidence yet)."""
        with self.db.read() as conn:
            jpeg = conn.execute(
                select(CASE_THUMBNAILS.c.jpeg).where(CASE_THUMBNAILS.c.item_id == item_id)
            ).scalar()
        return None if jpeg is None else bytes(jpeg)

    def make_thumbnail(self, item_id: int, *, actor: str | None = None) -> MediaRead:
        """The item's small JPEG, made from the evidence when its scan made none at all
        (``hashwatch scan --no-thumbnails``: :func:`.media.read_evidence_thumbnail`, the
        scan's own bytes) and stored with its audit record (``case.thumbnail``, ``actor``),
        so that it is made once; a stored one as it is. Not available: a scan that made
        thumbnails but none for this item (that outcome stands), a P2P client record, an
        item that is not a picture or video, evidence that cannot be read or decoded."""
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    CASE_ITEMS.c.root,
                    CASE_ITEMS.c.path,
                    CASE_ITEMS.c.sha256,
                    CASE_ITEMS.c.media_type,
                    CASE_ITEMS.c.digests,
                    CASES.c.case_uid,
                    CASES.c.scan,
                    CASE_THUMBNAILS.c.jpeg,
                )
                .join(CASES, CASES.c.id == CASE_ITEMS.c.case_id)
                .outerjoin(CASE_THUMBNAILS, CASE_THUMBNAILS.c.item_id == CASE_ITEMS.c.id)
                .where(CASE_ITEMS.c.id == item_id)
            ).first()
        if row is None:
            raise CaseNotFoundError(f"no case item {item_id}")
        if row.jpeg is not None:
            return MediaRead(True, bytes(row.jpeg))
        settings = (row.scan or {}).get("settings") or {}
        if (
            settings.get("thumbnails", True) is not False
            or (row.digests or {}).get("p2p") is not None
            or row.media_type not in ("image", "video")
        ):
            what = "contact sheet" if row.media_type == "video" else "thumbnail"
            return MediaRead.missing(f"the scan made no {what} for this item")
        made = read_evidence_thumbnail(
            row.path, row.sha256, row.media_type, root=row.root, policy=settings.get("pdq_policy")
        )
        if not made.available or made.data is None:
            return made
        return MediaRead(True, self._store_thumbnail(item_id, row.case_uid, made.data, actor))

    def _store_thumbnail(
        self, item_id: int, case_uid: str, jpeg: bytes, actor: str | None
    ) -> bytes:
        """Store ``jpeg`` as the item's thumbnail with its audit record, unless one was
        stored meanwhile (then that one is returned: an item has one thumbnail)."""
        with self.db.write(lock=f"case_thumbnail:{item_id}") as conn:
            stored = conn.execute(
                select(CASE_THUMBNAILS.c.jpeg).where(CASE_THUMBNAILS.c.item_id == item_id)
            ).scalar()
            if stored is not None:
                return bytes(stored)
            conn.execute(insert(CASE_THUMBNAILS).values(item_id=item_id, jpeg=jpeg))
            record_audit(
                conn,
                actor=actor_or_user(actor),
                action="case.thumbnail",
                target=f"case:{case_uid}/item:{item_id}",
                details={"made_from": "evidence", "bytes": len(jpeg)},
            )
        return jpeg

    def media(self, item_id: int) -> MediaRead:
        """The item's full-size bytes read from the evidence (see :mod:`.media`)."""
        item = self.item(item_id)
        if item.p2p is not None:
            return MediaRead.missing("a P2P client record names a file; it holds no media")
        return read_evidence_item(item.path, item.sha256, root=item.root)


def _item(row: Any) -> CaseItem:
    return CaseItem(
        id=int(row.id),
        root=row.root,
        path=row.path,
        size=row.size,
        sha256=row.sha256,
        media_type=row.media_type,
        scan_status=row.scan_status,
        cluster_number=row.cluster_number,
        rank=int(row.rank),
        priority=row.priority,
        reasons=list(row.reasons or []),
        exif=row.exif,
        matches=list(row.matches or []),
        error=row.error,
        review_status=row.review_status,
        p2p=(row.digests or {}).get("p2p"),
    )
