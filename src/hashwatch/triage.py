"""``hashwatch scan`` orchestrated: evidence in, a case directory out — known, ignorable, NEW first.

The scan walks the evidence (file system only; archives are opened inside the workers), groups
evidence files into work units (up to 64 files or 256 MB), and maps a worker over the units
through the runner. Workers read evidence read-only, expand archives in memory, and return one
record per file or member with its signals (a video's frame hashes), EXIF leads and thumbnail
(a video's contact sheet). The main process matches each unit's records against the lists (a
video by its frames, with vPDQ's rules), decides their status, and stores the unit atomically
in the case's state file — which is what makes ``--resume`` exact after a kill.

When every unit is done the new media are clustered and ranked, and the outputs are written
from the state: ``results.jsonl``, ``report.html``, ``case.vics.json``, ``clusters.jsonl``,
``thumbnails.jsonl``, ``manifest.json``; every
step is recorded in the hash-chained ``audit.log``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from hashwatch import __version__
from hashwatch.audit import AuditLog
from hashwatch.config import DEFAULT_PDQ_THRESHOLD
from hashwatch.errors import ConfigError
from hashwatch.lists.model import ListKind
from hashwatch.matching.matcher import Matcher, MatchResult
from hashwatch.matching.salted import DEFAULT_MAX_ENTRIES as DEFAULT_SALTED_MAX
from hashwatch.matching.salted import SaltedAnswer, count_ed2k, match_salted_ed2k
from hashwatch.report.case import CaseDetails
from hashwatch.report.collect import DETAILED_CLUSTERS
from hashwatch.report.html import MAX_THUMBNAILS, ClusterSource, write_html_report
from hashwatch.report.manifest import roots_from_sorted_records, write_manifest
from hashwatch.report.review_data import (
    CLUSTERS_FILE,
    THUMBNAILS_FILE,
    write_cluster_lines,
    write_thumbnails,
)
from hashwatch.report.vics_case import write_vics_case_from_state
from hashwatch.runner import Runner, report_progress_of
from hashwatch.scan.archive_split import ARCHIVE_SPLIT_BYTES, ArchivePlanner
from hashwatch.scan.cluster import MediaColumns, cluster_columns
from hashwatch.scan.images import ImagePlanner
from hashwatch.scan.model import Cluster, ItemRecord, ItemStatus, ScanSummary
from hashwatch.scan.p2p.link import link_p2p_records
from hashwatch.scan.p2p.salted_records import SaltedRecords
from hashwatch.scan.state import STATE_FILE, ScanState
from hashwatch.scan.walk import EvidenceFile, walk_evidence
from hashwatch.scan.worker import UnitResult, WorkerOptions, process_unit
from hashwatch.signals.hasher import HashOptions
from hashwatch.store.lists import HashListInfo

__all__ = [
    "ScanConfig",
    "ScanOutcome",
    "ScanProgress",
    "Scanner",
    "decide_status",
    "summary_lines",
]

UNIT_MAX_FILES = 64
UNIT_MAX_BYTES = 256 * 1024 * 1024
NEAR_MISS_MARGIN = 16  # near misses: up to threshold + 16 bits (different pictures: >= 40)
# Up to this many files to do are held from the count to the units (~270 bytes each: 27 MB)
# rather than walked and planned again (0.05 ms a file: the planners open every large file).
PLANNED_KEPT = 100_000
OUTPUTS = ("results.jsonl", "report.html", "case.vics.json", CLUSTERS_FILE, THUMBNAILS_FILE)


class ScanProgress(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, files: int, nbytes: int) -> None: ...
    def phase(self, text: str) -> None: ...


class _NoProgress:
    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class ScanConfig:
    """One scan. ``options`` are the hashing options as the caller built them (PDQ policy,
    pixel limit, frame interval, sampling; ``dihedral``: match rotated/flipped copies)."""

    evidence: Sequence[Path]
    case_dir: Path
    lists: Sequence[str] | None = None
    resume: bool = False
    options: HashOptions = field(default_factory=HashOptions)
    unit_max_files: int = UNIT_MAX_FILES
    unit_max_bytes: int = UNIT_MAX_BYTES
    case: CaseDetails = field(default_factory=CaseDetails)  # case number, agency, examiner...
    carve: bool = False  # search disk images' free space for pictures (hashwatch.scan.carve)
    report_thumbnails: int = MAX_THUMBNAILS  # at most this many in report.html (docs/scan.md)
    # Each picture's thumbnail made from its decode while scanning. Off (--no-thumbnails):
    # pictures decode in luma only, the case holds no thumbnails and the review makes them
    # from the evidence when they are shown (hashwatch.review.cases).
    thumbnails: bool = True
    # eMule cancelled.met records: the lists' ED2K values salted per seed up to this many
    # (hashwatch.scan.p2p.salted_records); above it the records say they were not checked.
    salted_ed2k_max: int = DEFAULT_SALTED_MAX
    # Zips above this size become parts of member ranges (hashwatch.scan.archive_split).
    archive_split_bytes: int = ARCHIVE_SPLIT_BYTES


@dataclass
class ScanOutcome:
    case_dir: Path
    summary: ScanSummary
    clusters: list[Cluster] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.case_dir / "report.html"


def decide_status(record: ItemRecord, result: MatchResult) -> ItemStatus:
    """known > ignorable (incl. known false positives) > error > new media > other.

    Only decisive matches count: a partial video match (below the list's video thresholds)
    leaves a video ``new``, with the match listed for the examiner. A damaged video whose
    readable frames were hashed is media to review (``new`` unless matched), its ``error``
    kept; ``error`` is for what could not be checked at all.
    """
    kinds = result.kinds
    if "known" in kinds:
        return ItemStatus.KNOWN
    if kinds & {"ignorable", "negative"}:
        return ItemStatus.IGNORABLE
    if record.error and not record.frames:
        return ItemStatus.ERROR
    if record.media_type in ("image", "video"):
        return ItemStatus.NEW
    return ItemStatus.OTHER


def _units(
    files: Iterable[EvidenceFile], max_files: int, max_bytes: int
) -> Iterator[list[EvidenceFile]]:
    unit: list[EvidenceFile] = []
    size = 0
    for ef in files:
        if unit and (len(unit) >= max_files or size + ef.size > max_bytes):
            yield unit
            unit, size = [], 0
        unit.append(ef)
        size += ef.size
    if unit:
        yield unit


class _FileCounter:
    """Moves the scan's progress per file as workers report them, and makes up at the end
    of each unit for files a runner did not report (progress never runs behind a unit)."""

    def __init__(self, progress: ScanProgress) -> None:
        self.progress = progress
        self.reported = [0, 0]  # files, bytes advanced so far
        self.done = [0, 0]  # files, bytes of finished units

    def event(self, event: Any) -> None:
        """A worker hashed one evidence file (with its archive members): ``event`` is its
        size (``report_progress_of("size", file)``)."""
        assert isinstance(event, int)
        self._advance(1, event)

    def _advance(self, files: int, nbytes: int) -> None:
        self.reported[0] += files
        self.reported[1] += nbytes
        self.progress.advance(files, nbytes)

    def unit_done(self, files: int, nbytes: int) -> None:
        self.done[0] += files
        self.done[1] += nbytes
        missing = (max(0, self.done[0] - self.reported[0]), max(0, self.done[1] - self.reported[1]))
        if any(missing):
            self._advance(*missing)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Scanner:
    """One scan of evidence into a case directory."""

    def __init__(
        self,
        config: ScanConfig,
        matcher: Matcher,
        lists: Sequence[HashListInfo],
        runner: Runner,
        progress: ScanProgress | None = None,
    ) -> None:
        self.config = config
        self.matcher = matcher
        self.lists = list(lists)
        self.runner = runner
        self.progress: ScanProgress = progress or _NoProgress()
        self.case_dir = config.case_dir.resolve()
        self.roots = [str(Path(p).resolve()) for p in config.evidence]
        self.case = config.case
        self.clock = time.monotonic()  # this run's start; phases are timed from their own
        self.phases: dict[str, float] = {}  # seconds each phase took in this run
        self.salted = SaltedRecords(self._salted_check)  # eMule cancelled.met records
        self._ed2k_stored: int | None = None  # counted at the first seed, once a scan

    def _check_paths(self) -> None:
        for root in self.roots:
            if not Path(root).exists():
                raise ConfigError(f"evidence {root} does not exist")
            if self.case_dir == Path(root) or Path(root) in self.case_dir.parents:
                raise ConfigError(f"the case directory {self.case_dir} is inside evidence {root}")
        state = self.case_dir / STATE_FILE
        if state.exists() and not self.config.resume:
            raise ConfigError(
                f"{self.case_dir} holds a scan already: add --resume to continue it, "
                "or choose a new case directory"
            )
        if not state.exists() and self.config.resume:
            raise ConfigError(f"nothing to resume in {self.case_dir}")
        if not state.exists() and self.case_dir.exists() and any(self.case_dir.iterdir()):
            raise ConfigError(f"{self.case_dir} is not empty: choose a new case directory")
        self.runner.check_readable(self.roots)  # a cluster: from every node, before any work

    def run(self) -> ScanOutcome:
        self._check_paths()
        self.case_dir.mkdir(parents=True, exist_ok=True)
        state = ScanState(self.case_dir)
        audit = AuditLog(self.case_dir / "audit.log")
        started = self.clock = time.monotonic()
        try:
            self._begin(state, audit)
            phase_start = (_now(), time.monotonic())
            self._process(state, audit)
            self._phase_done(audit, "hash and match", phase_start)
            outcome = self._finish(state, audit)
        finally:
            state.close()
        outcome.summary.seconds = round(time.monotonic() - started, 3)
        return outcome

    # -- phases --------------------------------------------------------------------------

    def _begin(self, state: ScanState, audit: AuditLog) -> None:
        lists = [
            {
                "name": i.name,
                "kind": i.kind.value,
                "version": i.version,
                "source_org": i.source_org,
                "pdq_threshold": i.pdq_threshold,
            }
            for i in self.lists
        ]
        if state.get_meta("started") is None:
            state.set_meta("started", _now())
            state.set_meta("case_id", str(uuid.uuid4()))  # one CaseID for every export
            state.set_meta("roots", self.roots)
            state.set_meta("lists", lists)
            state.set_meta("settings", self._settings())
            state.set_meta("case", self.case.given_json())
            # Kept for --resume: the parts of a split zip are its resume keys.
            state.set_meta("archive_split_bytes", self.config.archive_split_bytes)
            audit.append(
                "scan.started",
                roots=self.roots,
                lists=lists,
                settings=self._settings(),
                hashwatch=__version__,
                case=self.case.as_json(),
            )
            return
        self.case = self.case.resumed_from(state.get_meta("case"))
        if state.get_meta("roots") != self.roots:
            raise ConfigError("--resume must be given the same evidence as the scan it continues")
        if state.get_meta("lists") != lists:
            audit.append("scan.lists_changed", before=state.get_meta("lists"), now=lists)
            state.set_meta("lists", lists)
        audit.append("scan.resumed", done_files=len(state.done_keys()), case=self.case.as_json())

    def _thumbnails(self, state: ScanState) -> bool:
        """Whether this scan makes thumbnails: a resumed scan goes on as it began (one begun
        before the setting was recorded made them)."""
        settings = state.get_meta("settings")
        if not settings:
            return self.config.thumbnails
        return bool(settings.get("thumbnails", True))

    def _phase_done(self, audit: AuditLog, name: str, start: tuple[str, float]) -> None:
        """Record a phase's true duration in the audit log (``scan.phase``)."""
        elapsed = round(time.monotonic() - start[1], 3)
        self.phases[name] = elapsed
        audit.append("scan.phase", phase=name, started=start[0], finished=_now(), elapsed_s=elapsed)

    def _settings(self) -> dict[str, Any]:
        options = self.config.options
        return {
            "pdq_policy": options.policy,
            "dihedral": options.dihedral,
            "border_trim": options.border_trim,
            "min_pdq_quality": self.matcher.min_quality,
            "frame_interval": options.frame_interval,
            "sampling": options.sampling,
            "list_filter": list(self.config.lists) if self.config.lists else None,
            "thumbnails": self.config.thumbnails,
            "carve": self.config.carve,
        }

    def _process(self, state: ScanState, audit: AuditLog) -> None:
        done = state.done_keys()
        total_files = total_bytes = 0
        options = WorkerOptions(
            hashing=self.config.options,
            local_features=self.matcher.wants_local,
            thumbnails=self._thumbnails(state),
        )
        # Disk images become parts (file systems, free space) and large zips parts of member
        # ranges (sharing the archive's limits), so that several workers share one of them.
        images = ImagePlanner(carve=self.config.carve)
        # A resumed scan splits as it began (a state from before splitting: never).
        split = state.get_meta("archive_split_bytes") or 0
        zips = ArchivePlanner(split, limits=options.limits)

        def planned() -> Iterator[EvidenceFile]:
            files = zips.expand(images.expand(walk_evidence(self.roots)))
            # A key is JSON (~15 us): made only when there are done files to skip.
            return (ef for ef in files if ef.key not in done) if done else files

        # The files to do are counted first (the progress bar's total), and kept for the
        # units unless there are more than PLANNED_KEPT: walked and planned again then.
        kept: list[EvidenceFile] | None = []
        for ef in planned():
            total_files += 1
            total_bytes += ef.size
            if kept is not None:
                kept.append(ef)
                if len(kept) > PLANNED_KEPT:
                    kept = None
        self.progress.start(total_files, total_bytes)
        todo = iter(kept) if kept is not None else planned()
        del kept
        units = _units(todo, self.config.unit_max_files, self.config.unit_max_bytes)
        counted = _FileCounter(self.progress)
        # Workers report each evidence file as it is done, so progress moves per file: its
        # size is all the counter reads, and all that is sent.
        work = partial(process_unit, options, on_file=partial(report_progress_of, "size"))
        for result in self.runner.map_units(work, units, on_progress=counted.event):
            self._store_unit(state, result)
            counted.unit_done(len(result.keys), result.bytes)

    def _store_unit(self, state: ScanState, result: UnitResult) -> None:
        records = result.records
        # One call for the unit: images and files in one batch, videos by their frames. The
        # matcher's own dihedral setting decides whether the rotated hashes are tried.
        matched = self.matcher.match_media(result.queries)
        self.salted.match(records, matched)
        for record, match, query in zip(records, matched, result.queries, strict=True):
            if query.features is not None:  # described by the worker (WorkerOptions)
                self.matcher.match_local(match, query.features)
            record.matches = list(match.matches)
            record.suppressed = list(match.suppressed)
            record.status = decide_status(record, match)
        state.save_unit(result.keys, records)

    def _salted_check(self, seed: int, wanted: set[str]) -> SaltedAnswer:
        """One pass over the stored ED2K hashes salted with a cancelled.met's seed."""
        if self._ed2k_stored is None:
            self._ed2k_stored = count_ed2k(self.matcher)
        # The bar says what the main process is doing (a million hashes: seconds).
        self.progress.phase(f"salting {self._ed2k_stored:,} ED2K hashes (cancelled.met)")
        try:
            return match_salted_ed2k(
                self.matcher,
                seed,
                wanted,
                max_entries=self.config.salted_ed2k_max,
                listed=self._ed2k_stored,
            )
        finally:
            self.progress.phase("scanning")

    def _finish(self, state: ScanState, audit: AuditLog) -> ScanOutcome:
        self.progress.phase("clustering new media")
        phase_start = (_now(), time.monotonic())
        link_p2p_records(state)  # P2P records to the files of the scan they name
        # Clustering holds the new media as columns (hashes as bytes, a few numbers, the
        # path), read from the state with json_extract; cluster numbers are written back in
        # SQL. Every other pass reads the records from the state as it goes.
        threshold = min(
            (i.pdq_threshold for i in self.lists if i.kind.value == "known"),
            default=DEFAULT_PDQ_THRESHOLD,
        )
        media = MediaColumns(state.new_media())
        numbers, clusters = cluster_columns(
            media,
            threshold=threshold,
            min_quality=self.matcher.min_quality,
            nearest_known=lambda hashes: self.matcher.nearest_known(
                hashes, threshold + NEAR_MISS_MARGIN
            ),
        )
        state.set_clusters(media.keys, numbers)
        del media, numbers
        # The clusters go to the state too: the outputs read them back in number order (the
        # page only its first ones) rather than holding a list of every cluster.
        state.set_cluster_list(clusters)
        summary = self._summarise(state.summary_records(), clusters)  # fields it counts
        first_clusters = clusters[:DETAILED_CLUSTERS]  # for the caller (all: clusters.jsonl)
        del clusters
        self._phase_done(audit, "cluster", phase_start)
        self.progress.phase("writing outputs")
        phase_start = (_now(), time.monotonic())
        # path, root, size, SHA-256 only, in path order: each root's digest taken as it goes
        evidence = roots_from_sorted_records(state.files)
        case_info = {
            "case_id": state.get_meta("case_id"),
            "evidence": [root.as_json() for root in evidence],
            "case_dir": str(self.case_dir),
            "hashwatch": __version__,
            "started": state.get_meta("started"),
            "finished": _now(),
            "roots": self.roots,
            "lists": state.get_meta("lists"),
            "settings": state.get_meta("settings"),
            **self.case.as_json(),
        }
        with (self.case_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
            # The stored JSON is the record's as_json (its cluster set in SQL): re-encoded,
            # not decoded into a record and back; json.dumps(..., ensure_ascii=False) made a
            # new encoder for every record, these are made once (the same text).
            encode = json.JSONEncoder(ensure_ascii=False).encode
            decode = json.JSONDecoder().decode
            for text in state.record_texts():
                fh.write(encode(decode(text)) + "\n")
        # Grouped by MD5 in SQL: no record held per MD5.
        write_vics_case_from_state(self.case_dir / "case.vics.json", state, case_info)
        # Read from the state as they are written (a second list of every record, with its
        # thumbnail, doubled the main process's peak: 1.2 GB at 100,000 P2P records).
        with_thumbs = state.records(thumbnails=True, dihedral=False)  # the page shows none
        write_html_report(
            self.case_dir / "report.html",
            with_thumbs,
            ClusterSource(summary.new_clusters, state.cluster_sizes, self._first_clusters(state)),
            summary,
            case_info,
            max_thumbnails=self.config.report_thumbnails if self._thumbnails(state) else 0,
        )
        # The same clusters and thumbnails for machines (``hashwatch cases import``).
        write_cluster_lines(self.case_dir / CLUSTERS_FILE, state.cluster_texts())  # as stored
        write_thumbnails(self.case_dir / THUMBNAILS_FILE, state.thumbnails())
        # The outputs now hold everything: the working state has done its job.
        state.close()
        state.remove()
        brief = summary.as_json()
        brief["camera_serials"] = dict(list(summary.camera_serials.items())[:20])  # bounded
        self._phase_done(audit, "write outputs", phase_start)
        audit.append(
            "scan.finished",
            summary=brief,
            outputs=list(OUTPUTS),
            started=case_info["started"],
            finished=_now(),
            elapsed_s=round(time.monotonic() - self.clock, 3),  # this run (a resume: since it)
            phases=self.phases,
        )
        write_manifest(self.case_dir, case_info=case_info, evidence=evidence, outputs=list(OUTPUTS))
        return ScanOutcome(self.case_dir, summary, first_clusters)

    @staticmethod
    def _first_clusters(state: ScanState) -> Callable[[int], list[Cluster]]:
        """The first ``n`` clusters in number order, read from the state (the report's)."""
        return lambda n: list(state.cluster_list(n))

    def _summarise(self, records: Iterable[ItemRecord], clusters: Sequence[Cluster]) -> ScanSummary:
        """The scan's counts, in one pass over ``records`` (read from the state)."""
        by_status: Counter[str] = Counter()
        files = total_bytes = 0
        by_list: Counter[str] = Counter()
        by_category: Counter[str] = Counter()
        serials: Counter[str] = Counter()
        videos: Counter[str] = Counter()
        videos_partial = 0
        p2p: Counter[str] = Counter()  # P2P records are counted apart from files
        for r in records:
            by_status[r.status.value] += 1
            files += 1
            if "!/" not in r.path:
                total_bytes += r.size or 0
            if r.p2p is not None:
                p2p[r.status.value] += 1
                continue
            if r.status is ItemStatus.KNOWN:
                known = [m for m in r.matches if m.kind == ListKind.KNOWN and not m.partial]
                for name in {m.list for m in known}:
                    by_list[name] += 1
                best = known[0]
                by_category[best.category_label or best.category or "uncategorised"] += 1
            if r.status is ItemStatus.NEW and r.exif and r.exif.get("serial"):
                e = r.exif
                serials[f"{e.get('make', '')} {e.get('model', '')} #{e['serial']}".strip()] += 1
            if r.media_type == "video":
                videos[r.status.value] += 1
                if r.status is ItemStatus.NEW and any(
                    m.partial and m.kind == ListKind.KNOWN for m in r.matches
                ):
                    videos_partial += 1
        return ScanSummary(
            files=files - p2p.total(),
            bytes=total_bytes,
            by_status=dict(by_status - p2p),
            new_clusters=len(clusters),
            known_by_list=dict(by_list),
            known_by_category=dict(by_category),
            errors=by_status.get("error", 0),
            camera_serials=dict(serials.most_common()),
            videos_by_status=dict(videos),
            videos_partial=videos_partial,
            p2p_records=p2p.total(),
            p2p_by_status=dict(p2p),
        )


def summary_lines(outcome: ScanOutcome) -> list[str]:
    s = outcome.summary
    order = ["new", "known", "ignorable", "other", "error"]
    counts = ", ".join(f"{s.by_status.get(k, 0)} {k}" for k in order)
    lines = [
        f"{s.files} files ({s.bytes / 2**20:,.1f} MiB) in {s.seconds:.1f} s: {counts}",
        f"{s.new_clusters} clusters of new media, first in review order",
    ]
    if s.videos_by_status:
        videos = ", ".join(f"{n} {k}" for k in order if (n := s.videos_by_status.get(k, 0)))
        lines.append(f"videos: {sum(s.videos_by_status.values())} ({videos})")
        if s.videos_partial:
            lines.append(
                f"lead: {s.videos_partial} new video(s) share frames with a known video "
                "(partial match, see the report)"
            )
    if s.p2p_records:
        known = s.p2p_by_status.get("known", 0)
        lines.append(f"P2P client records: {s.p2p_records} ({known} known), see the report")
    if s.known_by_list:
        lines.append("known by list: " + ", ".join(f"{k} {v}" for k, v in s.known_by_list.items()))
    for serial, n in list(s.camera_serials.items())[:3]:
        lines.append(f"lead: {n} new images from camera {serial}")
    return lines
