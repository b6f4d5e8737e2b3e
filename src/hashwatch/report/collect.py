"""One pass over a scan's records, keeping only what the report shows.

The page stays bounded: at most :data:`MAX_THUMBNAILS` thumbnails and capped lists, each cap
saying what was left out. Records are read once; only the thumbnails the page will show, capped
rows and counts are kept, so a scan of millions of files renders in bounded memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Any

from hashwatch.matching.match import Match
from hashwatch.report.charts import esc
from hashwatch.report.videos import VideoRows, video_facts
from hashwatch.scan.model import ItemRecord, ItemStatus

__all__ = [
    "CLUSTER_ROWS",
    "DETAILED_CLUSTERS",
    "ERROR_ROWS",
    "KNOWN_ROWS",
    "LISTED",
    "MAX_THUMBNAILS",
    "NEW_THUMBNAILS",
    "PATHS_PER_CLUSTER",
    "THUMBS_PER_CLUSTER",
    "Collected",
    "Leads",
    "category_text",
    "collect",
    "first_match",
]

MAX_THUMBNAILS = 2000  # in the whole page
NEW_THUMBNAILS = 1500  # of which new clusters may take this many; known get the rest
THUMBS_PER_CLUSTER = 8
PATHS_PER_CLUSTER = 50
DETAILED_CLUSTERS = 1000  # beyond these, clusters are one table row each
CLUSTER_ROWS = 5000
KNOWN_ROWS = 5000
LISTED = 200  # ignorable paths, unclustered new files, serial numbers
ERROR_ROWS = 1000


@dataclass
class Leads:
    """EXIF leads of a set of new images: what can tie pictures to a camera, place or time."""

    with_exif: int = 0
    cameras: Counter[str] = field(default_factory=Counter)
    serials: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: Counter[str] = field(default_factory=Counter)
    software: Counter[str] = field(default_factory=Counter)
    gps: list[tuple[float, float]] = field(default_factory=list)
    gps_count: int = 0
    first: str | None = None
    last: str | None = None

    def add(self, record: ItemRecord) -> None:
        exif = record.exif
        if not exif:
            return
        self.with_exif += 1
        camera = " ".join(str(exif[k]) for k in ("make", "model") if exif.get(k))
        if camera:
            self.cameras[camera] += 1
        if serial := exif.get("serial"):
            entry = self.serials.setdefault(str(serial), {"n": 0, "cams": set(), "cls": set()})
            entry["n"] += 1
            entry["cams"].update([camera] if camera else [])
            entry["cls"].update([record.cluster] if record.cluster is not None else [])
        for key, counter in (("owner", self.owners), ("software", self.software)):
            if exif.get(key):
                counter[str(exif[key])] += 1
        gps = exif.get("gps")
        if isinstance(gps, dict) and "lat" in gps and "lon" in gps:
            self.gps_count += 1
            if len(self.gps) < 20:
                self.gps.append((float(gps["lat"]), float(gps["lon"])))
        if taken := exif.get("capture_time"):
            self.first = min(self.first or str(taken), str(taken))
            self.last = max(self.last or str(taken), str(taken))

    def rows(self, top: int) -> list[tuple[str, str]]:
        """``(lead, value)`` table rows, the ``top`` most frequent values of each lead."""

        def common(counter: Counter[str]) -> str:
            return ", ".join(f"{esc(k)} ({v:,})" for k, v in counter.most_common(top))

        serials = sorted(self.serials.items(), key=lambda kv: -kv[1]["n"])[:top]
        rows = [
            ("Camera", common(self.cameras)),
            ("Serial number", ", ".join(f"<code>{esc(k)}</code> ({v['n']:,})" for k, v in serials)),
            ("Owner name", common(self.owners)),
            ("Software", common(self.software)),
        ]
        if self.first:
            span = self.first if self.first == self.last else f"{self.first} – {self.last}"
            rows.append(("Capture time", esc(span)))
        if self.gps:
            pts = "; ".join(f"{lat:.5f}, {lon:.5f}" for lat, lon in self.gps[:top])
            rows.append(("GPS position", f"{self.gps_count:,} image(s): {esc(pts)}"))
        return [(k, v) for k, v in rows if v]


@dataclass
class Collected:
    """What one pass over the records keeps for the page."""

    status: Counter[str] = field(default_factory=Counter)
    thumbs: dict[str, bytes] = field(default_factory=dict)
    leads: Leads = field(default_factory=Leads)
    cluster_leads: dict[int, Leads] = field(default_factory=dict)
    unclustered: list[str] = field(default_factory=list)
    unclustered_total: int = 0
    known: list[ItemRecord] = field(default_factory=list)
    by_category: Counter[str] = field(default_factory=Counter)
    by_list: Counter[str] = field(default_factory=Counter)
    ignorable: list[str] = field(default_factory=list)
    ignorable_by_list: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    read_in_part: list[tuple[str, str, str]] = field(default_factory=list)  # path, status, error
    read_in_part_total: int = 0
    videos: VideoRows = field(default_factory=VideoRows)
    video_matches: dict[str, list[Match]] = field(default_factory=dict)  # new, shown
    video_info: dict[str, str] = field(default_factory=dict)  # path -> facts, new videos shown


def first_match(record: ItemRecord) -> Match | None:
    """The match a record is listed under: its first decisive match (a partial video match
    alerts nobody), else its first match; None for a record without matches."""
    decisive = (m for m in record.matches if not m.partial)
    return next(decisive, record.matches[0] if record.matches else None)


def category_text(match: Match | None) -> str:
    if match is not None and match.category_label:
        return match.category_label
    if match is not None and match.category is not None:
        return f"category {match.category}"
    return "uncategorised"


def collect(
    records: Iterable[ItemRecord],
    wanted: set[str],
    known_budget: int,
    *,
    detailed: Container[int] | None = None,
) -> Collected:
    """One pass over ``records``: the thumbnails of the ``wanted`` paths, at most
    ``known_budget`` of known files, capped rows and counts; EXIF leads per cluster for the
    ``detailed`` cluster numbers only (None: every cluster), the ones shown in detail."""
    c = Collected()
    known_thumbs = 0
    for r in records:
        c.status[r.status.value] += 1
        c.videos.add(r)
        first = first_match(r)
        if r.error and r.status is not ItemStatus.ERROR and r.frames:
            c.read_in_part_total += 1
            if len(c.read_in_part) < ERROR_ROWS:
                c.read_in_part.append((r.path, r.status.value, r.error))
        if r.status is ItemStatus.NEW:
            c.leads.add(r)
            if r.cluster is not None:
                if detailed is None or r.cluster in detailed:
                    c.cluster_leads.setdefault(r.cluster, Leads()).add(r)
            else:
                c.unclustered_total += 1
                if len(c.unclustered) < LISTED:
                    c.unclustered.append(r.path)
            if r.path in wanted and r.thumbnail:
                c.thumbs[r.path] = r.thumbnail
            if r.path in wanted and r.media_type == "video":
                c.video_info[r.path] = video_facts(r)
                if r.matches:
                    c.video_matches[r.path] = r.matches
        elif r.status is ItemStatus.KNOWN:
            c.by_category[category_text(first)] += 1
            c.by_list[first.list if first else "?"] += 1
            if len(c.known) < KNOWN_ROWS:
                keep = r.thumbnail if known_thumbs < known_budget else None
                known_thumbs += keep is not None
                if r.media_type == "video":
                    c.video_info[r.path] = video_facts(r)
                c.known.append(ItemRecord(**{**r.__dict__, "thumbnail": keep, "frames": None}))
        elif r.status is ItemStatus.IGNORABLE:
            c.ignorable_by_list[first.list if first else "?"] += 1
            if len(c.ignorable) < LISTED:
                c.ignorable.append(r.path)
        elif r.status is ItemStatus.ERROR and len(c.errors) < ERROR_ROWS:
            c.errors.append((r.path, r.error or "unknown error"))
    return c
