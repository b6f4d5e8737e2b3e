"""Project VIC "VICS" JSON: 1.x case files, 2.0 case files and 2.0 flat hash sets.

VICS files run to hundreds of MB, so nothing here loads a whole file. Reading takes two
streaming passes with ``ijson``:

1. :func:`scan_header` reads events from the start of the file only until it knows the
   layout: the OData context (version and category scheme) and, for a case file, the case
   fields written before the case's ``Media`` array. It stops there, so it costs one buffer.
2. The records come from ``ijson.items`` at ``value.item.Media.item`` (case files) or
   ``value.item`` (flat hash sets), which builds one Media object at a time in C.

Case fields written *after* ``Media`` and the fields of a second case in one file are not in
``header.metadata``: finding them means tokenising the whole Media array a second time
(measured: twice the cost of reading the records). Writers, ours included, put them first.

Every Media field hashwatch does not model (OffenderIdentified, IsDistributed, MediaFiles,
Segments, PhotoDNA, MediaID, unknown AlternativeHashes ...) is kept, as written, in
``EntryRecord.extra`` so that :func:`write_vics2` re-creates it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import ijson

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats._common import (
    add_hash,
    join_tags,
    parse_bool,
    reorder_hashes,
    split_tags,
    type_from_name,
)
from hashwatch.lists.formats.vpdq import parse_frame_line
from hashwatch.lists.model import (
    CategoryScheme,
    EntryRecord,
    EntryStatus,
    ListHeader,
    ParsedList,
    VideoFrameHash,
    frame_set_digest,
)
from hashwatch.signals.types import HashType

__all__ = [
    "PRECATEGORIZED",
    "VICS1",
    "VICS2",
    "KnownFilter",
    "VicsLayout",
    "is_precategorized",
    "read_vics",
    "scan_header",
    "write_vics2",
]

VICS1 = "vics1"
VICS2 = "vics2"

BOM = b"\xef\xbb\xbf"
CONTEXT_KEYS = ("@odata.context", "odata.metadata")
CONTEXT_BASE = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml"
_VERSION = re.compile(r"DataModels/(\d+)\.(\d+)\.xml", re.IGNORECASE)
_SCHEME_SEGMENT = re.compile(r"\.xml/([^/#$]+)/", re.IGNORECASE)
_ODATA_ID = re.compile(r'^Media\(\s*"?([^")]*)"?\s*\)$')
_INT = re.compile(r"^-?[0-9]+$")

_SCHEMES = {
    "US": CategoryScheme.US,
    "DEFAULT": CategoryScheme.US,
    "UK": CategoryScheme.UK,
    "CUSTOM": CategoryScheme.CUSTOM,
}
_SEGMENTS = {
    CategoryScheme.US: "US",
    CategoryScheme.UK: "UK",
    CategoryScheme.CUSTOM: "CUSTOM",
    CategoryScheme.NONE: "Default",
}
# How the writer names hash types in AlternativeHashes (the reader accepts any spelling
# that ``parse_hash_type`` knows).
_HASH_NAMES = {
    HashType.MD5: "MD5",
    HashType.SHA1: "SHA1",
    HashType.SHA256: "SHA256",
    HashType.ED2K: "ED2K",
    HashType.SHA1_BASE32: "SHA1Base32",
    HashType.PDQ: "PDQ",
    HashType.VPDQ: "vPDQ",
    HashType.BT_V2_ROOT: "bt_v2_root",
    HashType.BT_V1_PIECES: "bt_v1_pieces",
}
# A video's frame hashes travel as AlternativeHashes named "vPDQ" whose value is one vPDQ
# line, "frame,quality,pdq_hex,timestamp" (hashwatch's convention: VICS has no frame field;
# readers that do not know it keep them as unknown hashes). Time ranges the curator
# categorised stay in the record's Segments (Start, End, Category), kept as written.
_FRAME_NAME = "vPDQ"
# VICS marks a category that a hash lookup set, not a person, with IsPrecategorized (and
# names the lookup in PrecategorizationSource): such a record is a lead, not a decision.
PRECATEGORIZED = "IsPrecategorized"
# Media fields the reader maps onto EntryRecord; everything else goes to ``extra``.
_MODELLED = frozenset(
    {
        "MediaID",
        "Category",
        "MD5",
        "SHA1",
        "AlternativeHashes",
        "VictimIdentified",
        "Series",
        "Tags",
        "Comments",
        "DateUpdated",
        "Status",
        "HashOrder",
        "odata.id",
    }
)
# Media fields the writer sets itself from the record (extra never overrides them).
_WRITTEN = _MODELLED - {"odata.id", "Status", "AlternativeHashes", "HashOrder"}


@dataclass(frozen=True, slots=True)
class VicsLayout:
    """What :func:`scan_header` learnt: version, case file or hash set, scheme, case fields."""

    version: int
    cases: bool
    context: str | None
    scheme: CategoryScheme
    case_fields: dict[str, Any]
    media_key: str = "Media"  # as the file spells it ("Media", "media", ...)

    @property
    def format(self) -> str:
        return VICS1 if self.version == 1 else VICS2


def open_json(path: Path) -> BinaryIO:
    """Open a JSON file positioned after its UTF-8 byte-order mark, if any (yajl rejects it)."""
    f = path.open("rb")
    if f.read(3) != BOM:
        f.seek(0)
    return f


def _version_and_scheme(context: str) -> tuple[int, CategoryScheme]:
    match = _VERSION.search(context)
    if match is None:
        raise ListFormatError(f"OData context {context!r} names no VICS DataModels version")
    version = int(match.group(1))
    if version not in (1, 2):
        raise ListFormatError(f"VICS version {match.group(1)}.{match.group(2)} is not supported")
    if version == 1:
        return 1, CategoryScheme.US  # 1.x predates scheme segments: US/DHS categories
    seg = _SCHEME_SEGMENT.search(context)
    if seg is None:
        return 2, CategoryScheme.US
    scheme = _SCHEMES.get(seg.group(1).upper())
    if scheme is None:
        raise ListFormatError(
            f"unknown VICS category scheme {seg.group(1)!r} in the OData context "
            "(expected US, UK, CUSTOM or Default)"
        )
    return 2, scheme


def scan_header(path: Path) -> VicsLayout:
    """Read the start of a VICS file: context, layout and the first case's leading fields."""
    context: str | None = None
    builder: Any = None  # ijson.ObjectBuilder for the first item of "value"
    saw_value = False
    media_key = False
    media_name = "Media"
    with open_json(path) as f:
        try:
            for prefix, event, value in ijson.parse(f, use_float=True):
                if media_key:
                    # The event after the case's Media key: its value must be an array.
                    if event != "start_array":
                        kind = {"start_map": "an object"}.get(event, f"a {event}")
                        raise ListFormatError(
                            f"'{media_name}' holds {kind}; expected an array of Media records",
                            where="case 1",
                        )
                    break
                if builder is not None:
                    if prefix == "value.item" and event == "end_map":
                        break
                    if (
                        prefix == "value.item"
                        and event == "map_key"
                        and str(value).lower() == "media"
                    ):
                        media_key, media_name = True, str(value)
                        continue
                    builder.event(event, value)
                elif prefix == "" and event not in ("start_map", "map_key", "end_map"):
                    raise ListFormatError("the top level is not a JSON object: not a VICS file")
                elif prefix in CONTEXT_KEYS and event == "string":
                    context = value
                elif prefix == "value" and event == "start_array":
                    saw_value = True
                elif prefix == "value" and event == "end_array":
                    break  # an empty list
                elif prefix == "value.item":
                    if event != "start_map":
                        raise ListFormatError("'value' holds a non-object", where="record 1")
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
        except ijson.JSONError as exc:
            raise ListFormatError(f"not valid JSON: {exc}") from None
    if not saw_value:
        raise ListFormatError("no 'value' array at the top level: not a VICS file")
    first: dict[str, Any] = builder.value if builder is not None else {}
    if context is not None:
        version, scheme = _version_and_scheme(context)
        cases = context.rstrip().endswith("#Cases") or media_key
    else:
        # A bare {"value": [...]}: a 2.0 hash set, unless 1.x "odata.id" keys give it away.
        version = 1 if "odata.id" in first else 2
        scheme, cases = CategoryScheme.US, media_key
    case_fields = first if cases else {}
    return VicsLayout(version, cases, context, scheme, case_fields, media_name)


def read_vics(
    path: Path, *, default_hash_type: HashType | None = None, display_name: str | None = None
) -> ParsedList:
    """Open a VICS 1.x/2.0 file; ``default_hash_type`` is unused (VICS names every hash)."""
    del display_name  # messages name lines and records, not the file
    del default_hash_type
    layout = scan_header(path)
    header = ListHeader(
        format=layout.format, scheme=layout.scheme, metadata=dict(layout.case_fields)
    )
    return ParsedList(header=header, records=_iter_records(path, layout))


def _iter_records(path: Path, layout: VicsLayout) -> Iterator[EntryRecord]:
    prefix = f"value.item.{layout.media_key}.item" if layout.cases else "value.item"
    n = 0
    with open_json(path) as f:
        items = ijson.items(f, prefix, use_float=True)
        while True:
            try:
                item = next(items)
            except StopIteration:
                if n == 0:
                    expected = (
                        f"an array '{layout.media_key}' of Media records in each case of 'value'"
                        if layout.cases
                        else "Media records in the 'value' array"
                    )
                    raise ListFormatError(f"no Media records found (expected {expected})") from None
                return
            except ijson.JSONError as exc:
                where = f"record {n + 1}"
                raise ListFormatError(
                    f"invalid JSON after record {n}: {exc}", where=where
                ) from None
            n += 1
            yield media_to_record(item, n)


def _text(value: Any, where: str, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ListFormatError(f"{field}: expected text, got {value!r}", where=where)


def _category(value: Any, where: str) -> str | None:
    """Category as a raw code string: 1 and "1" are both "1"; null stays uncategorised."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ListFormatError(f"Category: expected a number or code, got {value!r}", where=where)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value.strip() or None
    raise ListFormatError(f"Category: expected a number or code, got {value!r}", where=where)


def media_to_record(item: Any, n: int) -> EntryRecord:
    """One VICS Media object to an EntryRecord; ``n`` is its 1-based position in the file."""
    where = f"record {n}"
    if not isinstance(item, dict):
        raise ListFormatError(f"Media record is not a JSON object but {item!r}", where=where)
    hashes: list[tuple[HashType, str]] = []
    frames: list[VideoFrameHash] = []
    extra: dict[str, Any] = {}
    add_hash(hashes, HashType.MD5, item.get("MD5"), where, "MD5")
    odata_id = item.get("odata.id")
    if odata_id is not None:
        match = _ODATA_ID.match(odata_id) if isinstance(odata_id, str) else None
        if match is None:
            extra["odata.id"] = odata_id
        elif not hashes and match.group(1):
            add_hash(hashes, HashType.MD5, match.group(1), where, "odata.id")
    add_hash(hashes, HashType.SHA1, item.get("SHA1"), where, "SHA1")
    alternatives = item.get("AlternativeHashes")
    if alternatives is not None:
        if not isinstance(alternatives, list):
            raise ListFormatError(
                f"AlternativeHashes: expected a list, got {alternatives!r}", where=where
            )
        unknown = []
        for i, alt in enumerate(alternatives):
            name = alt.get("HashName") if isinstance(alt, dict) else None
            if not isinstance(name, str):
                raise ListFormatError(
                    f"AlternativeHashes[{i}]: expected {{HashName, HashValue}}, got {alt!r}",
                    where=where,
                )
            value = alt.get("HashValue")
            if name.strip().lower() == "vpdq" and isinstance(value, str) and "," in value:
                frames.append(parse_frame_line(value, f"{where} AlternativeHashes[{i}]"))
                continue
            hash_type = type_from_name(name)
            if hash_type is None:
                unknown.append(alt)  # PhotoDNA and friends: kept, never dropped
            else:
                add_hash(hashes, hash_type, alt.get("HashValue"), where, f"AlternativeHashes[{i}]")
        if unknown:
            extra["AlternativeHashes"] = unknown
    order = item.get("HashOrder")
    if isinstance(order, str) and order.strip():
        hashes = reorder_hashes(hashes, order, where, "HashOrder")
    elif order is not None:
        extra["HashOrder"] = order
    if not hashes and frames:
        hashes.append((HashType.VPDQ, frame_set_digest(frames)))
    if not hashes:
        raise ListFormatError(
            "Media record has no usable hash (MD5, SHA1 or a known AlternativeHashes entry)",
            where=where,
        )
    status = EntryStatus.ACTIVE
    raw_status = item.get("Status")
    if raw_status is not None:
        try:
            status = EntryStatus(str(raw_status).strip().lower())
        except ValueError:
            extra["Status"] = raw_status
    parse_bool(item.get(PRECATEGORIZED), where, PRECATEGORIZED)  # kept as written, checked
    for key, value in item.items():
        if key not in _MODELLED:
            extra[key] = value
    if "MediaID" in item:
        extra["MediaID"] = item["MediaID"]  # provenance; the writer renumbers
    return EntryRecord(
        hashes=tuple(hashes),
        category=_category(item.get("Category"), where),
        series=_text(item.get("Series"), where, "Series"),
        victim_identified=parse_bool(item.get("VictimIdentified"), where, "VictimIdentified"),
        tags=split_tags(item.get("Tags"), where),
        comment=_text(item.get("Comments"), where, "Comments"),
        date=_text(item.get("DateUpdated"), where, "DateUpdated"),
        status=status,
        source=where,
        extra=extra,
        frames=tuple(frames),
    )


def is_precategorized(record: EntryRecord) -> bool:
    """Whether a VICS record's category is a pre-categorisation (``IsPrecategorized`` true):
    set by a hash lookup, such as a scan's list match, and not yet confirmed by a person."""
    return bool(parse_bool(record.extra.get(PRECATEGORIZED), record.source, PRECATEGORIZED))


@dataclass
class KnownFilter:
    """The records of a VICS file that a ``known`` list takes, counting those it leaves out.

    A VICS file says which of its media a person graded. A record without a category (null,
    not pre-categorised) is uncategorised media: not known material, never a known entry (a
    scan's ``case.vics.json`` lists every new item so; Griffeye imports such media as
    uncategorised). A pre-categorised record is a hash lookup's lead (a scan's list match, at
    a PDQ distance perhaps): left out unless ``include_precategorized``, and then taken with
    its category and a comment saying it is a pre-categorised lead, naming its source.
    """

    include_precategorized: bool = False
    uncategorised: int = 0
    precategorized: int = 0

    @property
    def skipped(self) -> int:
        return self.uncategorised + self.precategorized

    def filter(self, records: Iterable[EntryRecord]) -> Iterator[EntryRecord]:
        for record in records:
            if is_precategorized(record):
                if not self.include_precategorized:
                    self.precategorized += 1
                    continue
                source = record.extra.get("PrecategorizationSource")
                note = "pre-categorised lead" + (f" ({source})" if isinstance(source, str) else "")
                comment = f"{note}; {record.comment}" if record.comment else note
                yield dataclasses.replace(record, comment=comment)
            elif record.category is None:
                self.uncategorised += 1
            else:
                yield record

    def in_words(self) -> str:
        """What was left out, and why, for the curator ("" when nothing was)."""
        parts = []
        if self.uncategorised:
            parts.append(f"{self.uncategorised} uncategorised (no Category: not known material)")
        if self.precategorized:
            parts.append(
                f"{self.precategorized} pre-categorised (IsPrecategorized: a hash match's lead, "
                "not a decision; --include-precategorized imports them)"
            )
        return ", ".join(parts)


def record_to_media(record: EntryRecord, media_id: int) -> dict[str, Any]:
    """The VICS 2.0 Media object for ``record``: the inverse of :func:`media_to_record`.

    MD5 and SHA1 get their own fields (VICS keys media by MD5); every other hash goes to
    AlternativeHashes in record order, followed by the unknown ones kept in ``extra``. When
    that layout would read back in another order (a record keyed by SHA-256 that also has an
    MD5), a ``HashOrder`` property (``"sha256 md5"``) keeps the key hash: other VICS readers
    ignore it, hashwatch's restores the order.
    """
    where = f"record {media_id}"
    media: dict[str, Any] = {"MediaID": media_id}
    category = record.category
    if category is not None and _INT.match(category) and str(int(category)) == category:
        media["Category"] = int(category)
    else:
        media["Category"] = category
    alternatives: list[dict[str, Any]] = []
    for hash_type, value in record.hashes:
        if hash_type is HashType.MD5 and "MD5" not in media:
            media["MD5"] = value
        elif hash_type is HashType.SHA1 and "SHA1" not in media:
            media["SHA1"] = value
        else:
            alternatives.append({"HashName": _HASH_NAMES[hash_type], "HashValue": value})
    alternatives.extend(
        {"HashName": _FRAME_NAME, "HashValue": f"{f.frame},{f.quality},{f.pdq},{f.timestamp:.3f}"}
        for f in record.frames
    )
    if record.victim_identified is not None:
        media["VictimIdentified"] = record.victim_identified
    if record.series is not None:
        media["Series"] = record.series
    if record.tags:
        media["Tags"] = join_tags(record.tags, where)
    if record.comment is not None:
        media["Comments"] = record.comment
    if record.date is not None:
        media["DateUpdated"] = record.date
    if record.status is not EntryStatus.ACTIVE:
        media["Status"] = record.status.value
    for key, value in record.extra.items():
        if key == "AlternativeHashes":
            if not isinstance(value, list):
                raise ListFormatError("extra AlternativeHashes must be a list", where=where)
            alternatives.extend(value)
        elif key not in _WRITTEN and key not in media:
            media[key] = value
    if alternatives:
        media["AlternativeHashes"] = alternatives
    wanted = list(dict.fromkeys(record.hashes))  # the reader drops repeated pairs
    read_order = [(HashType.MD5, media["MD5"])] if "MD5" in media else []
    read_order += [(HashType.SHA1, media["SHA1"])] if "SHA1" in media else []
    read_order += [p for p in wanted if p not in read_order]
    if read_order != wanted:
        media["HashOrder"] = " ".join(t.value for t, _ in wanted)
    return media


# json.dumps(value, ensure_ascii=False, separators=(",", ":")) with the encoder made once
# (dumps with arguments makes one for every Media).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _dumps(value: Any, where: str) -> bytes:
    try:
        return _COMPACT(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ListFormatError(f"cannot be written as JSON: {exc}", where=where) from None


def write_vics2(
    out: IO[bytes],
    header: ListHeader,
    records: Iterable[EntryRecord],
    *,
    cases: bool | None = None,
) -> int:
    """Write VICS 2.0 record by record; return the number of Media written.

    ``cases=None`` writes a case file (``#Cases``, with ``header.metadata`` as the case
    fields) when the header has case metadata, otherwise a flat hash set (``#Media``).
    MediaID is assigned 1..n. The scheme segment comes from ``header.scheme``
    (none given: ``Default``).
    """
    if cases is None:
        cases = bool(header.metadata)
    segment = _SEGMENTS[header.scheme] if header.scheme is not None else "Default"
    context = f"{CONTEXT_BASE}/{segment}/$metadata#{'Cases' if cases else 'Media'}"
    out.write(b'{"@odata.context":' + _dumps(context, "header") + b',"value":[')
    if cases:
        case = {k: v for k, v in header.metadata.items() if k != "Media"}
        opening = _dumps(case, "case metadata")[:-1]  # '{"CaseID":...' without its '}'
        out.write(opening + (b',"Media":[' if case else b'"Media":['))
    n = 0
    for n, record in enumerate(records, 1):
        out.write((b",\n" if n > 1 else b"\n") + _dumps(record_to_media(record, n), f"record {n}"))
    out.write(b"\n]}]}\n" if cases else b"\n]}\n")
    return n
