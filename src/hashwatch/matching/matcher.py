"""Match signals against the hash lists of a database.

Exact hash types match by equality (a database index lookup); PDQ matches every list entry
within that list's threshold, found by the exact PDQ index (recall 1.0), optionally trying the
eight dihedral variants of the query. The facts of a match are read from the database at match
time, so a revocation is honoured even before the index has caught up.

* ``known`` list matches are alerts, ``ignorable`` ones mark files to keep out of review;
* a match in a ``negative`` list (known false positives) suppresses every other match of the
  same item; the suppressed matches stay visible under ``suppressed`` for the examiner;
* a PDQ hash of quality below the minimum (50) is not matched, and the result says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Select, and_, select, text

from hashwatch.config import MIN_PDQ_QUALITY
from hashwatch.errors import ListNotFoundError
from hashwatch.index.base import HashArray, hex_to_rows
from hashwatch.lists.categories import category_label
from hashwatch.lists.model import ListKind, VideoFrameHash
from hashwatch.matching.index_sync import SyncedPdqIndex
from hashwatch.matching.local_match import VotingLocalIndex
from hashwatch.matching.match import LocalFacts, Match, VideoFacts, VideoSegment
from hashwatch.matching.video import frames_from_dicts, match_video
from hashwatch.signals.pdq import DIHEDRAL_NAMES
from hashwatch.signals.query import MediaQuery, Signal, signals_from_fields, signals_of
from hashwatch.signals.types import EXACT_HASH_TYPES, SIGNAL_TYPES, HashType, normalize_hash
from hashwatch.store.database import Database, dbapi_call
from hashwatch.store.models import ENTRIES, HASHES, LISTS

if TYPE_CHECKING:
    from hashwatch.signals.hasher import FileSignals
    from hashwatch.signals.local_features import QueryFeatures

__all__ = [
    "LocalFacts",
    "Match",
    "MatchResult",
    "Matcher",
    "MediaQuery",
    "Signal",
    "VideoFacts",
    "VideoSegment",
    "signals_from_fields",
    "signals_of",
]

E = ENTRIES
H = HASHES
L = LISTS
_LIVE = ("active", "disputed")

# Exact values looked up a statement at most: padded to a power of two, 512 stays within
# SQLite's oldest limit of 999 variables (with the hash type's).
_VALUES_CHUNK = 512


class FactsRow(NamedTuple):
    """A row of :meth:`Matcher.facts_query`: a hash and its entry's facts."""

    hash_id: int
    value: str
    list_id: int
    entry_id: int
    category: str | None
    series: str | None
    status: str
    frame_time: float | None


@dataclass
class MatchResult:
    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def kinds(self) -> set[str]:
        """The kinds of list that matched decisively (partial video matches do not count)."""
        return {m.kind for m in self.matches if not m.partial}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"matches": [m.as_dict() for m in self.matches]}
        if self.suppressed:
            out["suppressed"] = [m.as_dict() for m in self.suppressed]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


@dataclass(frozen=True)
class _ListFacts:
    id: int
    name: str
    kind: str
    scheme: str
    threshold: int
    version: int
    category_map: dict[str, str]
    video_min_compared_pct: float = 80.0
    video_min_query_pct: float = 0.0
    local_features: bool = False

    def match(self, row: Any, entry_id: int, hash_type: str, distance: int, **extra: Any) -> Match:
        """A match on entry ``entry_id`` of this list, with the entry's facts from ``row``
        (category, series, status) and ``extra`` what the kind of match adds."""
        return Match(
            list=self.name,
            kind=self.kind,
            hash_type=hash_type,
            distance=distance,
            category=row.category,
            scheme=self.scheme,
            series=row.series,
            entry_id=entry_id,
            category_label=category_label(self.scheme, row.category, self.category_map),
            entry_status=row.status,
            list_version=self.version,
            **extra,
        )


_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")
_EXACT_TYPES = frozenset(EXACT_HASH_TYPES)


def _pdq_rows(values: list[str]) -> HashArray:
    """The index's rows of these PDQ hashes, each as :func:`normalize_hash` takes it (an
    :class:`InvalidHashError` for the first malformed one). A hash a scan's worker made is
    64 hex digits already: the batch is then checked at once (~0.2 µs a hash, where
    normalising each took ~4 µs); otherwise each is normalised."""
    if set(map(len, values)) <= {64} and _HEX_DIGITS.fullmatch("".join(values)):
        return hex_to_rows(values)  # bytes.fromhex reads either case: the same rows
    return hex_to_rows([normalize_hash(HashType.PDQ, v) for v in values])


def _variant_name(picture: str | None, variant: str | None) -> str | None:
    """What a PDQ match names as matched: the dihedral variant, after the picture it was
    computed from when that is not the picture as it is ("trimmed", "trimmed+flipx")."""
    if picture is None:
        return variant
    return picture if variant in (None, "original") else f"{picture}+{variant}"


class Matcher:
    """Matches items (groups of signals of one file or one input line) against lists.

    ``lists`` restricts alerts to the named lists; negative lists always apply, because a
    known false positive is false whichever list it collides with.
    """

    def __init__(
        self,
        db: Database,
        pdq_index: SyncedPdqIndex,
        *,
        lists: Sequence[str] | None = None,
        dihedral: bool = False,
        min_quality: int = MIN_PDQ_QUALITY,
        local_features: bool | None = None,
    ) -> None:
        self.db = db
        self.pdq_index = pdq_index
        self.list_names = list(lists) if lists else None
        self.dihedral = dihedral
        self.min_quality = min_quality
        # None: each list's own setting; True: every list (``match --local-features``).
        self.local_features = local_features
        self._lists: dict[int, _ListFacts] = {}
        self._facts_sql: dict[int, str] = {}  # facts_of's SQL by number of hash ids
        self._values_sql: dict[int, str] = {}  # facts_of_values's, by number of values
        self._local: VotingLocalIndex | None = None
        self.reload_lists()

    def reload_lists(self) -> None:
        with self.db.read() as conn:
            rows = conn.execute(select(L)).all()
        lists = {
            r.id: _ListFacts(
                r.id,
                r.name,
                r.kind,
                r.scheme,
                r.pdq_threshold,
                r.version,
                dict(r.category_map or {}),
                float(r.video_min_compared_pct),
                float(r.video_min_query_pct),
                bool(r.local_features),
            )
            for r in rows
        }
        if self.list_names:
            missing = set(self.list_names) - {f.name for f in lists.values()}
            if missing:
                raise ListNotFoundError(f"no hash list named {', '.join(sorted(missing))}")
        self._lists = {
            i: f
            for i, f in lists.items()
            if not self.list_names or f.name in self.list_names or f.kind == ListKind.NEGATIVE
        }
        self._local = None  # feature sets are read again at the next local match
        self._facts_sql = {}  # built again for these lists at the next match
        self._values_sql = {}

    def refresh(self) -> None:
        """Catch up with list changes made since this matcher was built."""
        self.pdq_index.refresh()
        self.reload_lists()

    @property
    def list_ids(self) -> set[int]:
        """The lists this matcher matches against (named lists plus negative lists)."""
        return set(self._lists)

    def list_facts(self, name: str) -> _ListFacts:
        """The settings of a list this matcher matches against, by name."""
        for facts in self._lists.values():
            if facts.name == name:
                return facts
        raise ListNotFoundError(f"no hash list named {name}")

    @property
    def max_threshold(self) -> int:
        return max((f.threshold for f in self._lists.values()), default=0)

    def match(self, signals: Iterable[Signal]) -> MatchResult:
        return self.match_many([list(signals)])[0]

    def match_many(self, items: Sequence[Sequence[Signal]]) -> list[MatchResult]:
        """Match several items at once (one index query for all their PDQ hashes)."""
        results = [MatchResult() for _ in items]
        raw: list[list[Match]] = [[] for _ in items]
        self._match_exact(items, raw)
        self._match_pdq(items, raw, results)
        for result, found in zip(results, raw, strict=True):
            best: dict[tuple[int, str], Match] = {}
            for m in found:
                key = (m.entry_id, m.hash_type)
                if key not in best or m.distance < best[key].distance:
                    best[key] = m
            ordered = sorted(best.values(), key=lambda m: (m.distance, m.list, m.entry_id))
            negatives = [m for m in ordered if m.kind == ListKind.NEGATIVE]
            if negatives:
                result.matches = negatives
                result.suppressed = [m for m in ordered if m.kind != ListKind.NEGATIVE]
            else:
                result.matches = ordered
        return results

    def match_media(self, items: Sequence[MediaQuery]) -> list[MatchResult]:
        """Match items (a hashed file each): one with ``frames`` by vPDQ's rules, everything
        else in one batch."""
        plain = [n for n, item in enumerate(items) if not item.frames]
        results: list[MatchResult] = [MatchResult() for _ in items]
        for n, result in zip(
            plain, self.match_many([items[n].signals for n in plain]), strict=True
        ):
            results[n] = result
        for n, item in enumerate(items):
            if item.frames:
                # An animated image's own PDQ is its first frame: matched with the frames;
                # its exact digests by equality.
                exact = [s for s in item.signals if SIGNAL_TYPES[s.hash_type].is_exact]
                results[n] = self.match_video(frames_from_dicts(item.frames), exact)
        return results

    def match_files(self, files: Sequence[FileSignals]) -> list[MatchResult]:
        """Match hashed files (see :meth:`match_media`)."""
        return self.match_media([MediaQuery.of_file(fs) for fs in files])

    def match_fields(self, items: Sequence[Mapping[str, Any]]) -> list[MatchResult]:
        """Match hashed files given as their JSON fields (``hashwatch hash`` output read
        back): the JSON edge of :meth:`match_media`."""
        return self.match_media([MediaQuery.from_fields(fields) for fields in items])

    def match_video(
        self, frames: Sequence[VideoFrameHash], signals: Iterable[Signal] = ()
    ) -> MatchResult:
        """Match a video: its file hashes (``signals``) by equality, and its frame hashes with
        vPDQ's semantics (see :mod:`hashwatch.matching.video`)."""
        result = self.match(signals)
        return match_video(self, frames, result)

    def nearest_known(self, pdq_hashes: Sequence[str], radius: int) -> list[int | None]:
        """Per hash, the distance to the closest live entry of a ``known`` list within
        ``radius`` (None if none). Used to rank near misses: new material close to known
        material without matching it."""
        out: list[int | None] = [None] * len(pdq_hashes)
        known = [i for i, f in self._lists.items() if f.kind == ListKind.KNOWN]
        if not pdq_hashes or not known or len(self.pdq_index) == 0:
            return out
        found = self.pdq_index.index.query(hex_to_rows(list(pdq_hashes)), radius)
        if len(found) == 0:
            return out
        ids = sorted({int(i) for i in found.ids.tolist()})
        live: set[int] = set()
        with self.db.read() as conn:
            for start in range(0, len(ids), 1000):
                rows = conn.execute(
                    self.facts_query().where(
                        and_(H.c.id.in_(ids[start : start + 1000]), H.c.list_id.in_(known))
                    )
                )
                live.update(int(r.hash_id) for r in rows)
        for q, hid, dist in zip(
            found.query.tolist(), found.ids.tolist(), found.distances.tolist(), strict=True
        ):
            best = out[q]
            if int(hid) in live and (best is None or dist < best):
                out[q] = int(dist)
        return out

    # -- local features ------------------------------------------------------------------

    @property
    def local_list_ids(self) -> list[int]:
        """The lists matched by local features in this matcher."""
        if self.local_features is False:
            return []
        return sorted(i for i, f in self._lists.items() if self.local_features or f.local_features)

    @property
    def wants_local(self) -> bool:
        """Whether images should be described for :meth:`match_local`."""
        return bool(self.local_list_ids)

    def local_index(self) -> VotingLocalIndex:
        """The feature sets of the local-feature lists' live entries (read once, then kept
        until the lists are reloaded)."""
        if self._local is None:
            from hashwatch.store.local_features import LocalFeatureStore

            index = VotingLocalIndex()
            for stored in LocalFeatureStore(self.db).load(self.local_list_ids):
                index.add(stored.entry_id, stored.features)
            self._local = index
        return self._local

    def match_local(self, result: MatchResult, query: QueryFeatures) -> None:
        """Add to ``result`` the entries ``query`` (a picture's features) shows, verified by
        geometry; an entry the picture already matched by hash is not repeated. A match in a
        negative list suppresses the others, as a hash match there does."""
        if not self.wants_local:
            return
        found = self.local_index().search(query)
        if not found:
            return
        seen = {m.entry_id for m in (*result.matches, *result.suppressed)}
        facts = {m.ref: m.facts() for m in found if m.ref not in seen}
        if not facts:
            return
        with self.db.read() as conn:
            rows = conn.execute(
                select(E.c.id, E.c.list_id, E.c.category, E.c.series, E.c.status).where(
                    and_(
                        E.c.id.in_(list(facts)),
                        E.c.status.in_(_LIVE),
                        E.c.list_id.in_(self.local_list_ids),
                    )
                )
            ).all()
        added = [self._local_match(row, facts[int(row.id)]) for row in rows]
        added.sort(key=lambda m: (-(m.local.inliers if m.local else 0), m.list, m.entry_id))
        ordered = [*result.matches, *result.suppressed, *added]
        negatives = [m for m in ordered if m.kind == ListKind.NEGATIVE]
        if negatives:
            result.matches = negatives
            result.suppressed = [m for m in ordered if m.kind != ListKind.NEGATIVE]
        else:
            result.matches = [*result.matches, *added]

    def _local_match(self, row: Any, local: LocalFacts) -> Match:
        return self._lists[int(row.list_id)].match(row, int(row.id), "local", 0, local=local)

    # -- exact ---------------------------------------------------------------------------

    def _match_exact(self, items: Sequence[Sequence[Signal]], raw: list[list[Match]]) -> None:
        if not self._lists:  # nothing to look up (no list, or none of the named ones)
            return
        wanted: dict[tuple[str, str], list[int]] = {}
        for n, item in enumerate(items):
            for s in item:
                if s.hash_type in _EXACT_TYPES:
                    wanted.setdefault((s.hash_type.value, s.value), []).append(n)
        if not wanted:
            return
        by_type: dict[str, list[str]] = {}
        for htype, value in wanted:
            by_type.setdefault(htype, []).append(value)
        with self.db.read() as conn:
            for htype, values in by_type.items():
                for start in range(0, len(values), _VALUES_CHUNK):
                    chunk = values[start : start + _VALUES_CHUNK]
                    for row in self.facts_of_values(conn, htype, chunk):
                        match = self.to_match(row, htype, 0, None)
                        if match is not None:
                            for n in wanted[(htype, row.value)]:
                                raw[n].append(match)

    # -- PDQ -----------------------------------------------------------------------------

    def _match_pdq(
        self,
        items: Sequence[Sequence[Signal]],
        raw: list[list[Match]],
        results: list[MatchResult],
    ) -> None:
        # With no list or an empty index nothing is looked up: the hashes are checked and
        # the notes of those of too low a quality made, nothing more.
        searching = bool(self._lists) and len(self.pdq_index) > 0
        queries: list[str] = []
        owners: list[tuple[int, str | None]] = []
        pdq = HashType.PDQ
        for n, item in enumerate(items):
            for s in item:
                if s.hash_type is not pdq:  # the index holds PDQ hashes
                    continue
                if s.quality is not None and s.quality < self.min_quality:
                    results[n].notes.append(
                        f"pdq quality {s.quality} is below {self.min_quality}: not matched"
                    )
                    continue
                variants: Sequence[str | None] = [None]
                hashes: Sequence[str] = [s.value]
                if self.dihedral and s.dihedral:
                    hashes = s.dihedral
                    variants = DIHEDRAL_NAMES
                for value, variant in zip(hashes, variants, strict=True):
                    queries.append(value)
                    if searching:
                        owners.append((n, _variant_name(s.picture, variant)))
        # Checked as before (a malformed hash raises, with lists or without).
        rows = _pdq_rows(queries)
        if not queries or not searching:
            return
        radius = self.max_threshold
        found = self.pdq_index.index.query(rows, radius)
        if len(found) == 0:
            return
        hits: dict[int, list[tuple[int, int]]] = {}
        for q, hid, dist in zip(found.query, found.ids, found.distances, strict=True):
            hits.setdefault(int(hid), []).append((int(q), int(dist)))
        with self.db.read() as conn:
            ids = list(hits)
            for start in range(0, len(ids), 1000):
                for row in self.facts_of(conn, ids[start : start + 1000]):
                    for q, dist in hits[int(row.hash_id)]:
                        n, variant = owners[q]
                        match = self.to_match(row, "pdq", dist, variant)
                        if match is not None:
                            raw[n].append(match)

    # -- shared --------------------------------------------------------------------------

    def facts_query(self) -> Select[Any]:
        return (
            select(
                H.c.id.label("hash_id"),
                H.c.value,
                H.c.list_id,
                E.c.id.label("entry_id"),
                E.c.category,
                E.c.series,
                E.c.status,
                H.c.frame_time,
            )
            .join(E, E.c.id == H.c.entry_id)
            .where(and_(H.c.active, E.c.status.in_(_LIVE), H.c.list_id.in_(list(self._lists))))
        )

    def facts_of(self, conn: Connection, hash_ids: list[int]) -> Sequence[FactsRow]:
        """:meth:`facts_query`'s rows for these hash ids (at most 1,000), read on ``conn``'s
        DBAPI cursor: the statement is compiled once per set of lists and number of ids, with
        the lists and statuses as literals (integers and fixed words) and the ids bound in the
        driver's paramstyle, so a lookup pays for neither SQLAlchemy's execution context nor
        its result rows (~95 -> ~20 µs a hit on SQLite). Driver errors leave as SQLAlchemy's
        (``DBAPIError`` and its kinds, as a statement through ``conn`` raises them), and a
        dropped connection is invalidated as SQLAlchemy would."""
        sql = self._facts_sql.get(len(hash_ids))
        if sql is None:
            sql = self._compile_facts(conn, f"{H.name}.{H.c.id.name} IN ({{}})", len(hash_ids))
            self._facts_sql[len(hash_ids)] = sql
        return self._read_facts(conn, sql, tuple(hash_ids))

    def facts_of_values(
        self, conn: Connection, hash_type: str, values: list[str]
    ) -> Sequence[FactsRow]:
        """:meth:`facts_query`'s rows for the hashes of ``hash_type`` equal to one of
        ``values`` (at most :data:`_VALUES_CHUNK`; exact types), read as :meth:`facts_of`
        reads. The values are padded to a power of two with the last one repeated (an ``IN``
        list's repeats change nothing), so that a scan's units of any size share a few
        statements."""
        count = 1 << max(0, len(values) - 1).bit_length()
        sql = self._values_sql.get(count)
        if sql is None:
            column = f"{H.name}.{H.c.hash_type.name} = {{}} AND {H.name}.{H.c.value.name}"
            sql = self._compile_facts(conn, column + " IN ({})", count, 1)
            self._values_sql[count] = sql
        params = (hash_type, *values, *([values[-1]] * (count - len(values))))
        return self._read_facts(conn, sql, params)

    @staticmethod
    def _read_facts(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[FactsRow]:
        def read(cursor: Any) -> list[Any]:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

        return [FactsRow._make(r) for r in dbapi_call(conn, sql, params, read)]

    def _compile_facts(self, conn: Connection, condition: str, count: int, single: int = 0) -> str:
        """:meth:`facts_query` and ``condition`` as SQL text for ``conn``'s driver:
        ``condition``'s first ``single`` ``{}`` become one marker each, the next one ``count``
        markers."""
        dialect = conn.dialect
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        placeholder = "__hashwatch_condition__"
        stmt = self.facts_query().where(text(placeholder))
        sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        markers = [marker] * single + [", ".join([marker] * count)]
        return sql.replace(placeholder, condition.format(*markers))

    def to_match(
        self, row: Any, hash_type: str, distance: int, variant: str | None
    ) -> Match | None:
        facts = self._lists.get(int(row.list_id))
        if facts is None:
            return None
        if hash_type == "pdq" and distance > facts.threshold:
            return None
        return facts.match(
            row,
            int(row.entry_id),
            hash_type,
            distance,
            variant=variant if variant != "original" else None,
            ref_time=row.frame_time,
        )
