"""``case.vics.json``: the scan's media as a VICS 2.0 case, for review tools that read VICS.

Griffeye, Autopsy and other review tools import a VICS case to show the media of a case with
what is already known about it. hashwatch writes one case (``#Cases``) whose Media are:

* every image and video that was hashed (known, new or ignorable alike: the review tool
  wants the whole picture set), and
* every other file with a *known* match (a known list can name any file type).

Media are keyed by MD5 as VICS requires: several files with one MD5 become one Media with
one MediaFiles entry per path.

A scan decides nothing, so nothing in its case file reads as a person's decision. A known
match is a *pre-categorised lead*, as VICS 2.0 marks one: ``IsPrecategorized`` true,
``PrecategorizationSource`` naming the list, and ``Category`` the raw code of the first known
match (never mapped or guessed), which a VICS reader shows as pre-categorised until a
reviewer confirms it. Every other Media is ``IsPrecategorized`` false with ``Category`` null:
new and ignorable media are uncategorised. Only a reviewer's settled decision may carry a
Category of its own; a scan has none, so it writes none (hashwatch's import keeps this
apart too: it never makes an uncategorised record a known entry, nor a pre-categorised
one unless asked, see :class:`hashwatch.lists.formats.vics.KnownFilter`). The file's category scheme
(the OData context segment) is the scheme most known matches use; a match from a list
of another scheme keeps its code out of ``Category`` (it would read as another grade) and
its facts in ``MediaMetadata``. hashwatch's own findings (status, cluster, list, entry,
distance) are ``MediaMetadata`` properties named ``hashwatch.*``; other tools ignore them,
hashwatch's reader keeps them.

A video carries its sampled frame hashes as AlternativeHashes named ``vPDQ`` (one vPDQ line
``frame,quality,pdq,timestamp`` each, hashwatch's convention; see
:mod:`hashwatch.lists.formats.vics`), so a case imported as a list matches the video again —
a re-encoded copy too — and its duration and frame rate as ``hashwatch.duration`` and
``hashwatch.fps``. A video's partial match with a known video (shown, no alert) is named in
``hashwatch.partial_match``.

The file is written with :func:`hashwatch.lists.formats.write_list`, so it is complete or
absent, and reads back with :func:`hashwatch.lists.formats.open_list`.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from hashwatch import __version__
from hashwatch.errors import InvalidHashError
from hashwatch.lists.formats import VICS2, write_list
from hashwatch.lists.formats.vics import PRECATEGORIZED
from hashwatch.lists.model import (
    CategoryScheme,
    EntryRecord,
    ListHeader,
    ListKind,
    VideoFrameHash,
)
from hashwatch.matching.match import Match
from hashwatch.report.p2p import p2p_vics_entry
from hashwatch.scan.model import ARCHIVE_SEPARATOR, ItemRecord, ItemStatus
from hashwatch.scan.state import Md5Row, ScanState
from hashwatch.signals.signal_type import HexDigestType
from hashwatch.signals.types import SIGNAL_TYPES, HashType, normalize_hash

__all__ = ["CASE_FIELDS", "MEDIA_TYPES", "write_vics_case", "write_vics_case_from_state"]

MEDIA_TYPES = frozenset({"image", "video"})
# case_info keys (hashwatch spelling) -> VICS case fields; VICS spellings are accepted too.
CASE_FIELDS = {
    "case_id": "CaseID",
    "case_number": "CaseNumber",
    "contact_name": "ContactName",
    "contact_phone": "ContactPhone",
    "contact_email": "ContactEmail",
    "contact_title": "ContactTitle",
    "contact_organization": "ContactOrganization",
}
# VICS has no examiner or agency field: the case's contact is the examiner, of that agency.
_CONTACT_FROM = {"ContactName": "examiner", "ContactOrganization": "agency"}
_STATUS_ORDER = {
    ItemStatus.KNOWN: 0,
    ItemStatus.NEW: 1,
    ItemStatus.IGNORABLE: 2,
    ItemStatus.OTHER: 3,
    ItemStatus.ERROR: 4,
}
_SEP = re.compile(r"[/\\]")
_ALT = (
    (HashType.SHA256, "sha256"),
    (HashType.PDQ, "pdq"),
    (HashType.ED2K, "ed2k"),
)
# The hex digest types whose canonical form is lowercase hex of their length (and nothing
# else: their normalize is HexDigestType's own), for _canonical.
_HEX_LENGTHS = {
    t: impl.hex_length
    for t, impl in SIGNAL_TYPES.items()
    if isinstance(impl, HexDigestType) and type(impl).normalize is HexDigestType.normalize
}
_LOWER_HEX = re.compile(r"[0-9a-f]*")


@dataclass
class _Media:
    """One MD5's Media object being assembled from every record with that MD5."""

    record: ItemRecord
    files: list[dict[str, Any]] = field(default_factory=list)


def _slim(record: ItemRecord) -> ItemRecord:
    """The record as held until the case is written: without its thumbnail and dihedral
    hashes (an entry names neither; ~1 KB a picture)."""
    return ItemRecord(**{**record.__dict__, "thumbnail": None, "pdq_dihedral": None})


def _known(record: ItemRecord) -> Match | None:
    """The first decisive known match (partial video matches are not)."""
    for match in record.matches:
        if match.kind == ListKind.KNOWN and not match.partial:
            return match
    return None


def _frames(record: ItemRecord) -> tuple[VideoFrameHash, ...]:
    """A video's frame hashes (a malformed one is left out rather than failing the export)."""
    out: list[VideoFrameHash] = []
    for f in record.frames or ():
        try:
            pdq = normalize_hash(HashType.PDQ, str(f["pdq"]))
            out.append(
                VideoFrameHash(
                    int(f["frame"]), float(f["timestamp"]), pdq, int(f.get("quality", 0))
                )
            )
        except (InvalidHashError, KeyError, TypeError, ValueError):
            continue
    return tuple(out)


def _partial(record: ItemRecord) -> str | None:
    """The partial known video matches of a record, in words."""
    parts = []
    for m in record.matches:
        if m.partial and m.kind == ListKind.KNOWN and m.video is not None:
            parts.append(
                f"list {m.list} entry {m.entry_id}: query "
                f"{m.video.query_pct}%, compared {m.video.compared_pct}%"
            )
    return "; ".join(parts[:5]) or None


def _included(record: ItemRecord) -> bool:
    if not record.md5:
        return False
    return record.media_type in MEDIA_TYPES or (
        record.status is ItemStatus.KNOWN and _known(record) is not None
    )


def _media_file(record: ItemRecord, md5: str) -> dict[str, Any]:
    """A MediaFiles entry: FilePath is the full display path; archive members name a parent."""
    name = _SEP.split(record.path.rsplit(ARCHIVE_SEPARATOR, 1)[-1])[-1]
    entry: dict[str, Any] = {"MD5": md5, "FileName": name, "FilePath": record.path}
    if record.mtime:
        entry["Written"] = record.mtime
    disk = record.disk or {}  # a file inside a disk image: its file system's other times
    for key, fact in (("Created", "created"), ("Accessed", "accessed")):
        if disk.get(fact):
            entry[key] = disk[fact]
    if ARCHIVE_SEPARATOR in record.path:
        parent = record.path.rsplit(ARCHIVE_SEPARATOR, 1)[0]
        entry["ParentFileName"] = _SEP.split(parent.rsplit(ARCHIVE_SEPARATOR, 1)[-1])[-1]
        entry["ParentFilePath"] = parent
    return entry


def _canonical(hash_type: HashType, value: str) -> str:
    """:func:`normalize_hash`, which a digest a scan made (lowercase hex of its length)
    passes unchanged: such a value is taken as it is (one match, not the type's checks)."""
    length = _HEX_LENGTHS.get(hash_type)
    if length is not None and len(value) == length and _LOWER_HEX.fullmatch(value):
        return value
    return normalize_hash(hash_type, value)


def _hashes(record: ItemRecord, md5: str) -> tuple[tuple[HashType, str], ...]:
    pairs: list[tuple[HashType, str]] = [(HashType.MD5, md5)]
    for hash_type, attr in ((HashType.SHA1, "sha1"), *_ALT):
        value = getattr(record, attr)
        if value:
            try:
                pairs.append((hash_type, _canonical(hash_type, value)))
            except InvalidHashError:
                continue  # a malformed digest is left out rather than failing the export
    return tuple(pairs)


def _metadata(record: ItemRecord, match: Match | None, foreign: bool) -> list[Any]:
    props: list[tuple[str, Any]] = [("hashwatch.status", record.status.value)]
    if record.cluster is not None:
        props.append(("hashwatch.cluster", record.cluster))
    if match is not None:
        video = match.video
        props += [
            ("hashwatch.list", match.list),
            ("hashwatch.entry_id", match.entry_id),
            ("hashwatch.hash_type", match.hash_type),
            ("hashwatch.distance", match.distance),
            ("hashwatch.query_pct", video.query_pct if video else None),
            ("hashwatch.compared_pct", video.compared_pct if video else None),
        ]
        if foreign:
            props += [
                ("hashwatch.category", match.category),
                ("hashwatch.category_scheme", match.scheme),
            ]
    if record.width and record.height:
        props.append(("hashwatch.dimensions", f"{record.width}x{record.height}"))
    if record.frames is not None:
        props += [
            ("hashwatch.duration", record.duration),
            ("hashwatch.fps", record.fps),
            ("hashwatch.frames", len(record.frames)),
            ("hashwatch.partial_match", _partial(record)),
        ]
        if record.error:
            props.append(("hashwatch.error", record.error))
    return [{"PropertyName": k, "PropertyValue": str(v)} for k, v in props if v is not None]


def _entry(media: _Media, md5: str, scheme: str | None) -> EntryRecord:
    record = media.record
    match = _known(record) if record.status is ItemStatus.KNOWN else None
    category = series = comment = None
    foreign = False
    if match is not None:
        foreign = match.category is not None and (
            (match.scheme or "").upper() != (scheme or "").upper()
        )
        category = None if foreign else match.category
        series = match.series
        video = match.video
        frames = (
            f"; video frames: query {video.query_pct}%, compared {video.compared_pct}%"
            if video is not None
            else ""
        )
        comment = (
            f"hashwatch: matches known list {match.list} entry {match.entry_id} "
            f"({match.hash_type}, distance {match.distance}{frames}); "
            "a lead for review, not a verdict"
        )
    extra: dict[str, Any] = {PRECATEGORIZED: match is not None}
    if match is not None:
        extra["PrecategorizationSource"] = f"hashwatch: known list {match.list}"
    if record.size is not None:
        extra["MediaSize"] = record.size
    if record.mime:
        extra["MimeType"] = record.mime
    extra["MediaFiles"] = media.files
    extra["MediaMetadata"] = _metadata(record, match, foreign)
    return EntryRecord(
        hashes=_hashes(record, md5),
        category=None if category is None else str(category),
        series=series,
        comment=comment,
        extra=extra,
        frames=_frames(record),
    )


def _scheme(media: Iterable[_Media]) -> str | None:
    """The scheme most categorised known matches use (first seen wins a tie)."""
    counts: Counter[str] = Counter()
    for m in media:
        match = _known(m.record) if m.record.status is ItemStatus.KNOWN else None
        if match is not None and match.category is not None and match.scheme:
            counts[match.scheme] += 1
    return counts.most_common(1)[0][0] if counts else None


def _case_fields(case_info: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for ours, theirs in CASE_FIELDS.items():
        value = case_info.get(ours, case_info.get(theirs))
        if value is None and theirs in _CONTACT_FROM:  # the scan's examiner and agency
            value = case_info.get(_CONTACT_FROM[theirs])
        if value is not None:
            fields[theirs] = str(value)
    if "CaseID" not in fields:
        fields["CaseID"] = str(uuid.uuid4())
    else:
        fields["CaseID"] = str(uuid.UUID(fields["CaseID"]))  # a GUID, or a clear error
    fields.setdefault("CaseNumber", "")
    fields["SourceApplicationName"] = "hashwatch"
    fields["SourceApplicationVersion"] = __version__
    return fields


def _case_scheme(case_info: Mapping[str, Any], taken: Callable[[], str | None]) -> str | None:
    """The case's category scheme: ``case_info``'s ``scheme``, else the one ``taken`` from the
    matches."""
    return str(case_info.get("scheme") or taken() or "").upper() or None


def _write(
    path: str | os.PathLike[str],
    case_info: Mapping[str, Any],
    scheme: str | None,
    media: Iterable[tuple[str, _Media]],
    p2p_known: Iterable[ItemRecord],
) -> int:
    try:
        header_scheme = CategoryScheme(str(scheme).upper()) if scheme else CategoryScheme.NONE
    except ValueError:
        header_scheme = CategoryScheme.CUSTOM
    header = ListHeader(format=VICS2, scheme=header_scheme, metadata=_case_fields(case_info))
    entries = chain(
        (_entry(m, md5, scheme) for md5, m in media),
        filter(None, (p2p_vics_entry(r, scheme) for r in p2p_known)),
    )
    return write_list(path, VICS2, header, entries)


def write_vics_case(
    path: str | os.PathLike[str],
    records: Iterable[ItemRecord],
    case_info: Mapping[str, Any],
) -> int:
    """Write the VICS 2.0 case file; return the number of Media (distinct MD5s) written.

    ``case_info`` may hold ``case_id`` (a GUID; a new one is made when absent),
    ``case_number``, ``contact_*`` (``examiner`` and ``agency`` stand in for the contact's
    name and organisation) and ``scheme`` (the category scheme, to override the one
    taken from the matches). Records are read once; one entry per distinct MD5 is held in
    memory (the MediaFiles of an MD5 can come from anywhere in the scan), thumbnails not kept.
    A scan's state is written by :func:`write_vics_case_from_state` instead, grouped in SQL,
    to the same bytes.
    """
    by_md5: dict[str, _Media] = {}
    p2p_known: list[ItemRecord] = []  # known P2P client records: a Media each (report.p2p)
    for record in records:
        if record.p2p is not None:
            if record.status is ItemStatus.KNOWN:
                p2p_known.append(ItemRecord(**{**record.__dict__, "thumbnail": None}))
            continue
        if not _included(record):
            continue
        md5 = normalize_hash(HashType.MD5, record.md5 or "")
        media = by_md5.get(md5)
        if media is None:
            media = by_md5[md5] = _Media(_slim(record))
        elif media.record.status is not ItemStatus.KNOWN and record.status is ItemStatus.KNOWN:
            media.record = _slim(record)
        media.files.append(_media_file(record, md5))
    scheme = _case_scheme(case_info, lambda: _scheme(by_md5.values()))
    ordered = sorted(
        by_md5.items(),
        key=lambda kv: (
            _STATUS_ORDER[kv[1].record.status],
            kv[1].record.cluster if kv[1].record.cluster is not None else 1 << 62,
        ),
    )
    return _write(path, case_info, scheme, ordered, p2p_known)


def _md5_rows(state: ScanState, p2p_keys: array[int]) -> Iterator[Md5Row]:
    """The first pass over the state: each record that is a Media, as its MD5, key, status
    rank, cluster and scheme (the keys of known P2P records go to ``p2p_keys``)."""
    for c in state.md5_candidates():
        status = ItemStatus(c.status)
        if c.p2p:
            if status is ItemStatus.KNOWN:
                p2p_keys.append(c.key)
            continue
        match = None
        if status is ItemStatus.KNOWN:
            matches = [Match.from_dict(m) for m in json.loads(c.matches or "[]")]
            match = _known(ItemRecord(path="", root="", matches=matches))
        if not c.md5 or not (c.media_type in MEDIA_TYPES or match is not None):
            continue  # as _included decides
        md5 = _canonical(HashType.MD5, c.md5)
        scheme = match.scheme if match is not None and match.category is not None else None
        known = status is ItemStatus.KNOWN
        yield md5, c.key, known, _STATUS_ORDER[status], c.cluster, scheme or None


def write_vics_case_from_state(
    path: str | os.PathLike[str], state: ScanState, case_info: Mapping[str, Any]
) -> int:
    """:func:`write_vics_case` of a scan's state (``state.records()``), byte for byte, with
    no record per MD5 held: which records are Media is decided in one pass over a few of their
    fields, and the state groups them by MD5 in SQL, in the case's order; each group is read
    back, written and let go."""
    p2p_keys: array[int] = array("q")
    grouped = state.by_md5(_md5_rows(state, p2p_keys), p2p_keys)
    try:
        scheme = _case_scheme(case_info, grouped.top_scheme)
        # The state's representative is slim already (read without thumbnail and dihedral
        # hashes): not copied again.
        media = (
            (md5, _Media(rep, [_media_file(r, md5) for r in files]))
            for md5, rep, files in grouped.groups()
        )
        return _write(path, case_info, scheme, media, grouped.p2p_records())
    finally:
        grouped.close()
