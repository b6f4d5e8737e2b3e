"""P2P client records in the report and in the VICS case.

A P2P record (see :mod:`hashwatch.scan.p2p.scan_records`) is not a file: it says that a P2P
client shared, downloaded or meant to download a file with these hashes, under this name, at
these times. It has no picture, so it is never "new media": a record that matches no list is
``other``, and it is listed here, in a section of its own, not among the files:

* known records first (client, name, size, dates, the list, entry and category matched, the
  artifact and the evidence file it links to when the file is present too);
* counts per client and artifact;
* records that cannot be matched, grouped by the reason (said plainly);
* the other records (no match), capped.

In the VICS case a *known* record is a Media of its own (pre-categorised like a known file)
whose hashes are those the client recorded: MD5 and SHA1 where the record holds them (a
Gnutella SHA-1 is written as the hex SHA1), ED2K and SHA-256 as AlternativeHashes; its
``MediaFiles`` entry names the record's file name with the artifact as its parent, and
``Comments`` and ``hashwatch.p2p.*`` properties say that it is a P2P record, not a file.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hashwatch.errors import InvalidHashError
from hashwatch.lists.formats.vics import PRECATEGORIZED
from hashwatch.lists.model import EntryRecord, ListKind
from hashwatch.matching.match import Match
from hashwatch.report.charts import esc
from hashwatch.report.charts import path_html as _path
from hashwatch.report.charts import table as _table
from hashwatch.report.collect import KNOWN_ROWS, LISTED, category_text
from hashwatch.report.page import more_html, section_html, size_text
from hashwatch.scan.model import ItemRecord, ItemStatus
from hashwatch.signals.types import HashType, normalize_hash

__all__ = ["P2PRows", "p2p_section", "p2p_vics_entry"]

_EXPLAIN = (
    "Records kept by P2P clients (eMule/aMule, Gnutella clients, BitTorrent) of files they "
    "shared, downloaded or meant to download, read from their artifacts (known.met, .torrent, "
    "resume data, ...). A record is not a file: the file itself may have been deleted. It is "
    "matched by the hashes the client recorded; a known record says that a file with a known "
    "hash was shared or downloaded under that name, at those times. A lead for review, not a "
    "verdict. Records that match no list are not new media (there is no picture to review)."
)


def _known(record: ItemRecord) -> Match | None:
    """The first decisive known match of a record."""
    for match in record.matches:
        if match.kind == ListKind.KNOWN and not match.partial:
            return match
    return None


def _dates(p2p: Mapping[str, Any]) -> str:
    dates = p2p.get("dates") or {}
    return "<br>".join(f"{esc(k.replace('_', ' '))}: {esc(v)}" for k, v in sorted(dates.items()))


def _state(p2p: Mapping[str, Any]) -> str:
    complete, share = p2p.get("complete"), p2p.get("completeness")
    if complete is True:
        return "complete"
    if share is not None:
        return f"{float(share) * 100:.0f}% downloaded"
    return "in progress" if complete is False else "—"


@dataclass
class P2PRows:
    """What the page shows of the P2P records, kept in one pass: :meth:`split` hands the
    other records on (to :func:`hashwatch.report.collect.collect`) and keeps these."""

    total: int = 0
    status: Counter[str] = field(default_factory=Counter)
    by_source: Counter[tuple[str, str]] = field(default_factory=Counter)
    known_by_source: Counter[tuple[str, str]] = field(default_factory=Counter)
    artifacts: set[str] = field(default_factory=set)
    known: list[ItemRecord] = field(default_factory=list)
    unmatchable: Counter[str] = field(default_factory=Counter)
    unmatchable_example: dict[str, str] = field(default_factory=dict)
    others: list[ItemRecord] = field(default_factory=list)

    def split(self, records: Iterable[ItemRecord]) -> Iterator[ItemRecord]:
        for record in records:
            if record.p2p is None:
                yield record
            else:
                self.add(record)

    def add(self, record: ItemRecord) -> None:
        p2p = record.p2p or {}
        self.total += 1
        self.status[record.status.value] += 1
        source = (str(p2p.get("client")), str(p2p.get("artifact")))
        self.by_source[source] += 1
        if len(self.artifacts) < 100_000:
            self.artifacts.add(str(p2p.get("artifact_path")))
        slim = ItemRecord(**{**record.__dict__, "thumbnail": None})
        if record.status is ItemStatus.KNOWN:
            self.known_by_source[source] += 1
            if len(self.known) < KNOWN_ROWS:
                self.known.append(slim)
        elif p2p.get("unmatchable"):
            reason = str(p2p["unmatchable"])
            self.unmatchable[reason] += 1
            self.unmatchable_example.setdefault(reason, record.path)
        elif len(self.others) < LISTED:
            self.others.append(slim)


def _known_rows(rows: P2PRows) -> list[list[str]]:
    out = []
    for r in rows.known:
        p2p = r.p2p or {}
        m = _known(r)
        matched = "—"
        if m is not None:
            matched = (
                f"{esc(category_text(m))} · list {esc(m.list)} entry {esc(m.entry_id)} "
                f"(exact {esc(m.hash_type.upper())})"
            )
        linked = p2p.get("linked_paths") or []
        out.append(
            [
                esc(p2p.get("client")),
                f"<b>{esc(p2p.get('name') or '—')}</b>",
                size_text(int(p2p["size"])) if p2p.get("size") is not None else "—",
                _dates(p2p) or "—",
                esc(_state(p2p)),
                matched,
                _path(r.path),
                "<br>".join(_path(p) for p in linked)
                or '<span class="muted">not in evidence</span>',
            ]
        )
    return out


def p2p_section(rows: P2PRows) -> str:
    """The report's "P2P client records" section."""
    known = rows.status.get("known", 0)
    count = f"{rows.total:,} records, {known:,} known"
    parts = [section_html("p2p", "P2P client records", count, esc(_EXPLAIN))]
    if not rows.total:
        return parts[0] + '<p class="muted">No P2P client record in the evidence.</p></section>'
    if rows.known:
        parts.append(f"<h3>Known records <span class=count>{known:,}</span></h3>")
        head = ["Client", "Name", "Size", "Dates", "State", "Matched", "Record", "File in evidence"]
        parts.append(_table(head, _known_rows(rows), "known p2p"))
        parts.append(more_html(known - len(rows.known), "known records"))
    else:
        parts.append('<p class="muted">No P2P record matched a known list.</p>')
    counts = [
        [
            esc(client),
            esc(artifact),
            f"{n:,}",
            f"{rows.known_by_source.get((client, artifact), 0):,}",
        ]
        for (client, artifact), n in sorted(rows.by_source.items())
    ]
    parts += [
        f"<h3>By client and artifact <span class=count>{len(rows.artifacts):,} artifacts"
        "</span></h3>",
        _table(["Client", "Artifact", "Records", "Known"], counts, "p2p-counts"),
    ]
    if rows.unmatchable:
        reasons = [
            [esc(reason), f"{n:,}", _path(rows.unmatchable_example[reason])]
            for reason, n in rows.unmatchable.most_common()
        ]
        parts += [
            f"<h3>Records that cannot be matched <span class=count>"
            f"{sum(rows.unmatchable.values()):,}</span></h3>",
            _table(["Why", "Records", "For example"], reasons, "p2p-unmatchable"),
        ]
    other = rows.total - known - sum(rows.unmatchable.values())
    if rows.others:
        listed = [
            [
                esc((r.p2p or {}).get("client")),
                esc((r.p2p or {}).get("name") or "—"),
                esc(r.status.value),
                _path(r.path),
            ]
            for r in rows.others
        ]
        parts += [
            f"<h3>Other records (no known match) <span class=count>{other:,}</span></h3>",
            _table(["Client", "Name", "Status", "Record"], listed, "p2p-other"),
            more_html(other - len(rows.others), "records"),
        ]
    parts.append("</section>")
    return "".join(parts)


def _sha1_hex(base32: str) -> str | None:
    try:
        return base64.b32decode(base32.upper()).hex()
    except (ValueError, TypeError):
        return None


def p2p_vics_entry(record: ItemRecord, scheme: str | None) -> EntryRecord | None:
    """The VICS Media of a known P2P record, or None for a record that is not known."""
    match = _known(record) if record.status is ItemStatus.KNOWN else None
    p2p = record.p2p
    if match is None or p2p is None:
        return None
    hashes: list[tuple[HashType, str]] = []
    sha1 = record.sha1 or (_sha1_hex(record.sha1_base32) if record.sha1_base32 else None)
    for hash_type, value in (
        (HashType.MD5, record.md5),
        (HashType.SHA1, sha1),
        (HashType.ED2K, record.ed2k),
        (HashType.SHA256, record.sha256),
    ):
        if value:
            try:
                hashes.append((hash_type, normalize_hash(hash_type, value)))
            except InvalidHashError:
                continue
    if not hashes:
        return None  # only a BitTorrent hash: VICS has no field for it (see docs/scan.md)
    foreign = match.category is not None and (match.scheme or "").upper() != (scheme or "").upper()
    artifact = str(p2p.get("artifact_path") or "")
    name = str(p2p.get("name") or "")
    file_entry: dict[str, Any] = {
        "FileName": name,
        "FilePath": record.path,
        "ParentFileName": artifact.replace("\\", "/").rsplit("/", 1)[-1],
        "ParentFilePath": artifact,
    }
    if record.md5:
        file_entry["MD5"] = record.md5
    props: list[tuple[str, Any]] = [
        ("hashwatch.status", record.status.value),
        ("hashwatch.list", match.list),
        ("hashwatch.entry_id", match.entry_id),
        ("hashwatch.hash_type", match.hash_type),
        ("hashwatch.p2p.client", p2p.get("client")),
        ("hashwatch.p2p.artifact", p2p.get("artifact")),
        ("hashwatch.p2p.artifact_path", artifact),
        ("hashwatch.p2p.index", p2p.get("index")),
        ("hashwatch.p2p.save_path", p2p.get("save_path")),
        ("hashwatch.p2p.state", _state(p2p)),
    ]
    props += [(f"hashwatch.p2p.{k}", v) for k, v in sorted((p2p.get("dates") or {}).items())]
    props += [(f"hashwatch.p2p.id.{k}", v) for k, v in sorted((p2p.get("hashes") or {}).items())]
    if p2p.get("linked_paths"):
        props.append(("hashwatch.p2p.linked_paths", "; ".join(p2p["linked_paths"])))
    if foreign:
        props += [
            ("hashwatch.category", match.category),
            ("hashwatch.category_scheme", match.scheme),
        ]
    extra: dict[str, Any] = {
        PRECATEGORIZED: True,
        "PrecategorizationSource": f"hashwatch: known list {match.list}",
        "MediaFiles": [file_entry],
        "MediaMetadata": [
            {"PropertyName": k, "PropertyValue": str(v)} for k, v in props if v is not None
        ],
    }
    if p2p.get("size") is not None:
        extra["MediaSize"] = int(p2p["size"])
    comment = (
        f"hashwatch: a P2P client record, not a file: {p2p.get('client')} "
        f"{p2p.get('artifact')} record {p2p.get('index')} names '{name}'; it matches known list "
        f"{match.list} entry {match.entry_id} ({match.hash_type}); a lead for review, "
        "not a verdict"
    )
    return EntryRecord(
        hashes=tuple(hashes),
        category=None if foreign or match.category is None else str(match.category),
        series=match.series,
        comment=comment,
        extra=extra,
    )
