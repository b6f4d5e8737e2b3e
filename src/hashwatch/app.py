"""The one library object the CLI, the server and the tests all build.

``Hashwatch`` owns the settings, the database (opened lazily: hashing needs none), the list
store, the persisted PDQ index and the runner. Every command is a method call on it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from hashwatch.config import Settings
from hashwatch.errors import ConfigError, HashwatchError, InvalidHashError
from hashwatch.exchange.opinions import OpinionStore
from hashwatch.exchange.peers import PeerStore
from hashwatch.lists.model import EntryRecord, EntryStatus, ListKind, VideoFrameHash
from hashwatch.matching.index_sync import SyncedPdqIndex
from hashwatch.matching.matcher import Matcher, MatchResult, Signal
from hashwatch.report.case import CaseDetails
from hashwatch.review.cases import CaseStore
from hashwatch.runner import Runner, make_runner, make_units
from hashwatch.scan.model import ARCHIVE_SEPARATOR
from hashwatch.scan.walk import walk_evidence
from hashwatch.signals.hasher import FileSignals, HashOptions, hash_file
from hashwatch.signals.query import signals_of
from hashwatch.signals.types import SIGNAL_TYPES, HashType, normalize_hash, parse_hash_type
from hashwatch.store.database import Database
from hashwatch.store.lists import ImportReport, ListStore
from hashwatch.triage import ScanConfig, Scanner, ScanOutcome, ScanProgress

__all__ = [
    "Hashwatch",
    "MatchedFile",
    "iter_files",
    "parse_hash_ref",
    "parse_signal_line",
    "signals_of",
]


@dataclass(frozen=True)
class MatchedFile:
    signals: FileSignals
    result: MatchResult

    def as_dict(self) -> dict[str, Any]:
        fields = self.signals.as_dict()
        # The 8 rotated/flipped hashes were computed for matching; a match names the variant
        # that matched. ``hashwatch hash --dihedral`` prints them.
        fields.pop("pdq_dihedral", None)
        fields.pop("pdq_trimmed_dihedral", None)
        return {**fields, **self.result.as_dict()}


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[Path, str | None]]:
    """Files under ``paths`` in a stable order, with an error for what cannot be walked.

    Directories are walked without following symbolic links (no loops, nothing outside the
    evidence); a path that is not a regular file is reported, not silently skipped.
    """
    for raw in paths:
        path = Path(raw)
        try:
            st = path.lstat()
        except OSError as exc:
            yield path, f"cannot read: {exc.strerror}"
            continue
        if stat.S_ISDIR(st.st_mode):
            # The evidence walker, with paths kept relative to the directory as given.
            top = os.path.abspath(path)
            for ef in walk_evidence([path]):
                yield path / os.path.relpath(ef.path, top), ef.error
        elif stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and path.is_file()):
            yield path, None
        else:
            yield path, "not a regular file"


def _hash_unit(options: HashOptions, unit: list[tuple[str, str | None]]) -> list[FileSignals]:
    out = []
    for path, error in unit:
        out.append(FileSignals(path, None, error=error) if error else hash_file(path, options))
    return out


_BARE_LENGTHS = {32: HashType.MD5, 40: HashType.SHA1}


def parse_signal_line(line: str) -> Signal:
    """``<type> <hash>`` (HMA's local-file form) or a bare MD5/SHA-1 hash."""
    parts = line.split()
    if len(parts) == 2:
        htype = parse_hash_type(parts[0])
        return Signal(htype, normalize_hash(htype, parts[1]))
    if len(parts) == 1:
        value = parts[0]
        if len(value) in _BARE_LENGTHS:
            htype = _BARE_LENGTHS[len(value)]
            return Signal(htype, normalize_hash(htype, value))
        if value.lower().startswith("urn:sha1:"):
            return Signal(HashType.SHA1_BASE32, normalize_hash(HashType.SHA1_BASE32, value))
        raise InvalidHashError("signal", value, "write '<type> <hash>' (e.g. 'pdq <64 hex>')")
    raise InvalidHashError("signal", line, "expected '<type> <hash>'")


def parse_hash_ref(text: str) -> Signal:
    """A hash named on a command line: ``md5:…``, ``pdq:…``, ``urn:sha1:…`` or bare MD5/SHA-1."""
    if ":" in text and not text.lower().startswith("urn:sha1:"):
        htype, value = text.split(":", 1)
        return parse_signal_line(f"{htype} {value}")
    return parse_signal_line(text)


_ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz"})
_ARCHIVE_TYPES = ("zip", "x-tar", "gzip", "x-7z", "x-rar", "vnd.rar", "x-bzip2", "x-xz")


def _why_not_added(fs: FileSignals, reason: str) -> str:
    """``reason`` with what to do when the path names an archive or a member inside one:
    add-media reads files on disk, never inside archives."""
    path = Path(fs.path)
    archive, sep, _member = str(fs.path).partition(ARCHIVE_SEPARATOR)
    if sep and Path(archive).is_file():  # "a.zip!/pic.png", as a scan names a member
        return (
            f"a member of an archive ({archive}): add-media reads files on disk only; "
            "extract it first"
        )
    container = next((p for p in path.parents if p.is_file()), None)
    if container is not None:
        return (
            f"inside {container}, which is a file, not a folder: add-media reads files on disk "
            "only; extract the member first"
        )
    if path.suffix.lower() in _ARCHIVE_SUFFIXES or (
        fs.mime and any(fs.mime.endswith("/" + t) for t in _ARCHIVE_TYPES)
    ):
        return "an archive: add-media does not open archives; extract its members first"
    return reason


def media_record(
    fs: FileSignals,
    *,
    category: str | None = None,
    series: str | None = None,
    comment: str | None = None,
) -> EntryRecord | str:
    """The list entry for a hashed media file, or why it cannot be one."""
    if fs.digests is None:
        return fs.error or "not readable"
    fields = fs.as_dict()
    frames = tuple(
        VideoFrameHash(f["frame"], f["timestamp"], f["pdq"], f["quality"])
        for f in (fs.video.frames if fs.video is not None else ())
    )
    if fs.pdq is None and not frames:
        why = fs.error or f"not an image or video ({fs.mime or 'unknown type'})"
        return f"{why}: no perceptual hash"
    # The entry's key is its MD5 (first); then every other type a media entry carries (one
    # value each; v1 pieces digests one per piece length asked for).
    hashes = [
        (htype, value)
        for htype, impl in SIGNAL_TYPES.items()
        if impl.media_entry
        for value in impl.values_of(fs)[: None if htype is HashType.BT_V1_PIECES else 1]
    ]
    extra: dict[str, Any] = {"hashed_by": fields["hashed_by"], "pdq_policy": fields["pdq_policy"]}
    if fs.video is not None:
        video = fs.video.to_dict()
        extra["video"] = {
            k: video[k] for k in ("duration", "fps", "width", "height", "mime_type") if k in video
        }
    return EntryRecord(
        hashes=tuple(hashes),
        category=category,
        series=series,
        comment=comment,
        source=f"media {fs.digests.sha256[:12]}",
        extra=extra,
        frames=frames,
    )


class Hashwatch:
    """hashwatch as a library: ``Hashwatch.open()``, then call what the CLI calls."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def open(cls, database_url: str | None = None, data_dir: str | Path | None = None) -> Hashwatch:
        return cls(Settings.from_env(database_url, data_dir))

    @cached_property
    def db(self) -> Database:
        return Database.open(self.settings.database_url)

    @cached_property
    def lists(self) -> ListStore:
        return ListStore(self.db, max_withdraw_share=self.settings.max_withdraw_share)

    @cached_property
    def cases(self) -> CaseStore:
        """Cases recorded for review (``hashwatch cases import``)."""
        return CaseStore(self.db)

    @cached_property
    def opinions(self) -> OpinionStore:
        """Peers' opinions on the entries of published lists (feedback)."""
        return OpinionStore(self.db, self.lists)

    @cached_property
    def peers(self) -> PeerStore:
        """The peers whose lists we subscribe to (``hashwatch peers``)."""
        return PeerStore(self.db)

    #: Load the persisted PDQ index mapped (shared between processes, checksums not read):
    #: the HTTP server sets it before its first match, so its workers share one index.
    map_index = False

    @cached_property
    def pdq_index(self) -> SyncedPdqIndex:
        """The PDQ index: in this process, or in N Ray actors (``HASHWATCH_INDEX``).
        With :attr:`map_index` set first, the file is mapped rather than read."""
        from hashwatch.matching.sharded import parse_index_setting

        shards = parse_index_setting(self.settings.index)
        if shards is None:
            return SyncedPdqIndex(self.db, self.settings.index_path, mmap=self.map_index).open()
        from hashwatch.matching.sharded import ShardedSyncedIndex  # imports ray

        return ShardedSyncedIndex(
            self.db,
            self.settings.index_path,
            shards,
            wait_s=self.settings.index_wait_s,
            address=self.settings.ray_address,
        ).open()

    def matcher(
        self,
        lists: Sequence[str] | None = None,
        *,
        dihedral: bool = True,
        min_quality: int | None = None,
        local_features: bool | None = None,
    ) -> Matcher:
        """A matcher over the lists as they are now (the index catches up with changes).

        ``dihedral``: also find rotated and mirrored copies, through the 8 dihedral hashes a
        file's PDQ comes with (on everywhere by default: the index makes it cheap).
        ``local_features``: None uses each list's setting, True matches every list's stored
        local features (cropped, turned, framed copies; ``docs/matching.md``)."""
        self.pdq_index.refresh()
        return Matcher(
            self.db,
            self.pdq_index,
            lists=lists,
            dihedral=dihedral,
            min_quality=self.settings.min_pdq_quality if min_quality is None else min_quality,
            local_features=local_features,
        )

    def hash_options(
        self,
        *,
        dihedral: bool = True,
        policy: str | None = None,
        frame_interval: float | None = 1.0,
        sampling: str = "fast",
        border_trim: bool | None = None,
    ) -> HashOptions:
        """The one options object for hashing, from the settings and the caller's choices
        (``policy`` None: the settings' PDQ policy; ``border_trim`` None: the settings');
        built once, passed down unchanged."""
        return HashOptions(
            dihedral=dihedral,
            border_trim=self.settings.border_trim if border_trim is None else border_trim,
            policy=policy or self.settings.pdq_policy,
            max_image_pixels=self.settings.max_image_pixels,
            max_decode_pixels=self.settings.max_decode_pixels or None,
            frame_interval=frame_interval,
            sampling=sampling,
        )

    def runner(
        self, workers: int | None = None, *, name: str | None = None, address: str | None = None
    ) -> Runner:
        """The runner ``name`` (default: the settings', ``HASHWATCH_RUNNER``) with ``workers``
        workers, on the cluster at ``address`` (default: ``HASHWATCH_RAY_ADDRESS``)."""
        try:
            return make_runner(
                name or self.settings.runner,
                workers,
                address=address or self.settings.ray_address,
            )
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None

    def hash_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        options: HashOptions | None = None,
        *,
        workers: int | None = 1,
        unit_size: int = 64,
    ) -> Iterator[FileSignals]:
        """Hash every file under ``paths``; results come as work units finish."""
        options = options or self.hash_options()
        files = ((str(p), err) for p, err in iter_files(paths))
        with self.runner(workers) as runner:
            for batch in runner.map_units(
                partial(_hash_unit, options), make_units(files, unit_size)
            ):
                yield from batch

    def match_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        matcher: Matcher,
        options: HashOptions | None = None,
        *,
        workers: int | None = 1,
        on_file: Callable[[FileSignals], None] | None = None,
    ) -> Iterator[MatchedFile]:
        options = options or self.hash_options(dihedral=matcher.dihedral)
        if matcher.wants_local:  # pictures are described from their decode, in the workers
            options = replace(options, local_features=True)
        batch: list[FileSignals] = []
        for fs in self.hash_paths(paths, options, workers=workers):
            if on_file is not None:
                on_file(fs)
            batch.append(fs)
            if len(batch) >= 64:
                yield from self._match_batch(matcher, batch)
                batch = []
        if batch:
            yield from self._match_batch(matcher, batch)

    def _match_batch(self, matcher: Matcher, batch: list[FileSignals]) -> Iterator[MatchedFile]:
        results = matcher.match_files(batch)
        for fs, result in zip(batch, results, strict=True):
            if fs.features is not None and fs.video is None:
                matcher.match_local(result, fs.features)
            yield MatchedFile(fs, result)

    def _decode_limits(self) -> dict[str, Any]:
        return {
            "max_pixels": self.settings.max_image_pixels,
            "max_decode_pixels": self.settings.max_decode_pixels or None,
        }

    def match_signal_lines(
        self, lines: Iterable[str], matcher: Matcher, *, batch_size: int = 256
    ) -> Iterator[dict[str, Any]]:
        """One answer per input line, in order: the signal and its matches, or an error."""
        pending: list[tuple[int, str, Signal | HashwatchError]] = []

        def flush() -> Iterator[dict[str, Any]]:
            good = [(n, s) for n, _, s in pending if isinstance(s, Signal)]
            results = iter(matcher.match_many([[s] for _, s in good]))
            for n, text, item in pending:
                out: dict[str, Any] = {"line": n, "input": text}
                if isinstance(item, Signal):
                    out.update(type=item.hash_type.value, value=item.value)
                    out.update(next(results).as_dict())
                else:
                    out["error"] = str(item)
                yield out
            pending.clear()

        for n, raw in enumerate(lines, start=1):
            text = raw.strip()
            try:
                item: Signal | HashwatchError = parse_signal_line(text)
            except HashwatchError as exc:
                item = exc
            pending.append((n, text, item))
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()

    def add_media(
        self,
        name: str,
        paths: Iterable[str | os.PathLike[str]],
        *,
        kind: ListKind | None = None,
        category: str | None = None,
        series: str | None = None,
        comment: str | None = None,
        frame_interval: float = 0.1,
        actor: str | None = None,
        bt_piece_lengths: Sequence[int] = (),
    ) -> tuple[ImportReport, list[str]]:
        """Hash media files into list ``name`` as one new version: each file becomes an entry
        keyed by its MD5, with SHA-1, SHA-256, the PDQ of an image, or a video's frame hashes
        (one per ``frame_interval`` seconds: densely, so that a copy sampled once a second
        at other instants still finds close frames), and its BitTorrent v2 root (a v2
        torrent's file matches it) plus, for each of ``bt_piece_lengths``, its v1 pieces
        digest (a single-file v1 torrent at that piece length matches it). Returns the
        report and the files left out."""
        options = replace(
            self.hash_options(frame_interval=frame_interval),
            bittorrent=True,
            bt_piece_lengths=tuple(bt_piece_lengths),
        )
        records: list[EntryRecord] = []
        pictures: dict[str, str] = {}  # entry key -> path, for local features
        problems: list[str] = []
        category = self.lists.check_category(name, category)  # before any hashing
        for fs in self.hash_paths(paths, options):
            record = media_record(fs, category=category, series=series, comment=comment)
            if isinstance(record, str):
                problems.append(f"{fs.path}: {_why_not_added(fs, record)}")
            else:
                records.append(record)
                if fs.pdq is not None and fs.video is None:
                    htype, value = record.hashes[0]
                    pictures[f"{htype.value}:{value}"] = fs.path
        if not records:
            shown = "; ".join(problems[:10]) + (
                f"; {len(problems) - 10} more" if problems[10:] else ""
            )
            raise ConfigError(f"nothing added: {shown or 'no files found'}")
        report = self.lists.add_records(
            name, records, source=f"add-media ({len(records)} files)", kind=kind, actor=actor
        )
        if pictures and self.lists.get(name, with_counts=False).local_features:
            self._add_local_features(name, pictures, actor)
        return report, problems

    def _add_local_features(self, name: str, pictures: dict[str, str], actor: str | None) -> None:
        """Store the local features of the pictures just added to list ``name``."""
        from hashwatch.signals.local_features import describe_file
        from hashwatch.store.local_features import LocalFeatureStore

        features = {}
        for key, path in pictures.items():
            fs = describe_file(path, **self._decode_limits())
            if fs is not None:
                features[key] = fs
        LocalFeatureStore(self.db).put(name, features, actor=actor)

    def scan_warnings(self, lists: Sequence[str] | None = None) -> list[str]:
        """What a scan against ``lists`` (None: all) cannot find, to say before it starts.

        With no list, or no list of known material holding entries that match, every picture
        and video comes out as new: the examiner must know that before reading the report.
        """
        infos = self.lists.all()
        if lists:
            infos = [info for info in infos if info.name in set(lists)]
        if not infos:
            where = "selected" if lists else "in the database"
            return [f"no hash list {where}: nothing can match, every file will be reported as new"]
        matched = (EntryStatus.ACTIVE.value, EntryStatus.DISPUTED.value)
        known = [
            info
            for info in infos
            if info.kind is ListKind.KNOWN and any(info.counts.get(s, 0) for s in matched)
        ]
        if not known:
            names = ", ".join(info.name for info in infos)
            return [
                f"no list of known material with entries among the lists used ({names}): "
                "no file can be found as known"
            ]
        return []

    def scan(
        self,
        evidence: Sequence[str | os.PathLike[str]],
        case_dir: str | os.PathLike[str],
        *,
        lists: Sequence[str] | None = None,
        workers: int | None = None,
        resume: bool = False,
        options: HashOptions | None = None,
        progress: ScanProgress | None = None,
        unit_files: int = 64,
        case: CaseDetails | None = None,
        carve: bool = False,
        report_thumbnails: int | None = None,
        thumbnails: bool = True,
        salted_ed2k_max: int | None = None,
        runner: str | None = None,
        runner_address: str | None = None,
    ) -> ScanOutcome:
        """Scan evidence into ``case_dir`` (see :mod:`hashwatch.triage`) with ``options``
        (default: :meth:`hash_options`); ``options.dihedral`` decides whether rotated and
        mirrored copies are matched; ``thumbnails`` False makes none while scanning (the
        review makes them from the evidence). The runner is ``runner`` (at
        ``runner_address``), by default the one the settings name."""
        options = options or self.hash_options()
        matcher = self.matcher(lists, dihedral=options.dihedral)
        used = [info for info in self.lists.all() if info.id in matcher.list_ids]
        config = ScanConfig(
            evidence=[Path(p) for p in evidence],
            case_dir=Path(case_dir),
            lists=lists,
            resume=resume,
            options=options,
            unit_max_files=unit_files,
            case=case or CaseDetails(),
            carve=carve,
            archive_split_bytes=self.settings.archive_split_bytes,
            thumbnails=thumbnails,
            **({} if report_thumbnails is None else {"report_thumbnails": report_thumbnails}),
            **({} if salted_ed2k_max is None else {"salted_ed2k_max": salted_ed2k_max}),
        )
        with self.runner(workers, name=runner, address=runner_address) as chosen:
            return Scanner(config, matcher, used, chosen, progress).run()

    def close(self) -> None:
        if "pdq_index" in self.__dict__:
            self.pdq_index.close()  # a sharded index's actors
        if "db" in self.__dict__:
            self.db.dispose()
