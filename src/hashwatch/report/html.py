"""``report.html``: one self-contained page that explains a scan's result to a reviewer.

The page must open from a USB stick on an offline workstation years later, so everything is
inline: CSS, SVG charts, thumbnails as ``data:`` URIs; there is no script and no external
reference at all, and a Content-Security-Policy forbids loading anything else. New media
come first (the point of the tool), then known matches, then what was set aside.

Thumbnails are shown blurred and greyscale (a video's is a contact sheet of a few frames,
shown the same way). Each has its own "Reveal" toggle (a checkbox styled as a button: it works
without script and reveals that one image only), no image is ever larger than a 160 px box, and
printing always prints them blurred. The page stays bounded: at most :data:`MAX_THUMBNAILS`
thumbnails and capped lists, each cap saying what was left out and that ``results.jsonl``
holds every record.

Records are read in one pass; only what the page shows is kept (the thumbnails it will
show, capped rows, and counts), so a scan of millions of files renders in bounded memory.
"""

from __future__ import annotations

import base64
import os
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hashwatch import __version__
from hashwatch.report.charts import PALETTE, STYLESHEET, bar_chart, esc, short
from hashwatch.report.charts import path_html as _path
from hashwatch.report.charts import table as _table
from hashwatch.report.videos import (
    VideoRows,
    video_facts,
    video_matches_html,
    video_section,
)
from hashwatch.scan.model import Cluster, ItemRecord, ItemStatus, ScanSummary

__all__ = ["MAX_THUMBNAILS", "STATUS_TEXT", "write_html_report"]

MAX_THUMBNAILS = 2000  # in the whole page
NEW_THUMBNAILS = 1500  # of which new clusters may take this many; known get the rest
THUMBS_PER_CLUSTER = 8
PATHS_PER_CLUSTER = 50
DETAILED_CLUSTERS = 1000  # beyond these, clusters are one table row each
CLUSTER_ROWS = 5000
KNOWN_ROWS = 5000
LISTED = 200  # ignorable paths, unclustered new files, serial numbers
ERROR_ROWS = 1000

STATUS_TEXT: dict[str, tuple[str, str]] = {
    "new": (
        "New",
        "An image or video that matches no list: never seen by the lists used. "
        "Review these first; near-duplicates are grouped into clusters.",
    ),
    "known": (
        "Known",
        "Matches an entry of a known hash list. An alert to review: the category and "
        "series are what the list's curator recorded.",
    ),
    "ignorable": (
        "Ignorable",
        "Found only in ignorable lists (such as NSRL software files), so kept out of "
        "review. Known to a list does not mean harmless.",
    ),
    "other": ("Other", "Not an image or video, and matched no list. Not listed here."),
    "error": ("Error", "Could not be read or decoded: not checked. The reason is listed."),
}
_ORDER = ("new", "known", "ignorable", "other", "error")
_COLOUR = dict(
    zip(_ORDER, (PALETTE[0], PALETTE[1], PALETTE[6], "#c4c4c4", PALETTE[3]), strict=True)
)
_ANCHOR = {"other": "ignorable", "error": "errors"}
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'"
_NAV = {"about": "How to read", "summary": "Summary", "new": "New", "exif": "EXIF leads"}
_NAV |= {"known": "Known", "videos": "Videos", "ignorable": "Ignorable", "errors": "Errors"}


@dataclass
class _Leads:
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
class _Collected:
    """What one pass over the records keeps for the page."""

    status: Counter[str] = field(default_factory=Counter)
    thumbs: dict[str, bytes] = field(default_factory=dict)
    leads: _Leads = field(default_factory=_Leads)
    cluster_leads: dict[int, _Leads] = field(default_factory=dict)
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
    video_matches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # new, shown
    video_info: dict[str, str] = field(default_factory=dict)  # path -> facts, new videos shown


def _first(record: ItemRecord) -> dict[str, Any]:
    """The match a record is listed under: its first decisive match (a partial video match
    alerts nobody), else its first match."""
    decisive = (m for m in record.matches if not m.get("partial"))
    return next(decisive, record.matches[0] if record.matches else {})


def _category(match: Mapping[str, Any]) -> str:
    label, code = match.get("category_label"), match.get("category")
    if label:
        return str(label)
    return f"category {code}" if code is not None else "uncategorised"


def _collect(records: Iterable[ItemRecord], wanted: set[str], known_budget: int) -> _Collected:
    c = _Collected()
    known_thumbs = 0
    for r in records:
        c.status[r.status.value] += 1
        c.videos.add(r)
        first = _first(r)
        if r.error and r.status is not ItemStatus.ERROR and r.frames:
            c.read_in_part_total += 1
            if len(c.read_in_part) < ERROR_ROWS:
                c.read_in_part.append((r.path, r.status.value, r.error))
        if r.status is ItemStatus.NEW:
            c.leads.add(r)
            if r.cluster is not None:
                c.cluster_leads.setdefault(r.cluster, _Leads()).add(r)
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
            c.by_category[_category(first)] += 1
            c.by_list[str(first.get("list", "?"))] += 1
            if len(c.known) < KNOWN_ROWS:
                keep = r.thumbnail if known_thumbs < known_budget else None
                known_thumbs += keep is not None
                if r.media_type == "video":
                    c.video_info[r.path] = video_facts(r)
                c.known.append(ItemRecord(**{**r.__dict__, "thumbnail": keep, "frames": None}))
        elif r.status is ItemStatus.IGNORABLE:
            c.ignorable_by_list[str(first.get("list", "?"))] += 1
            if len(c.ignorable) < LISTED:
                c.ignorable.append(r.path)
        elif r.status is ItemStatus.ERROR and len(c.errors) < ERROR_ROWS:
            c.errors.append((r.path, r.error or "unknown error"))
    return c


class _Page:
    """Builds the page's HTML; hands out the element ids the reveal toggles need."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._n = 0

    def add(self, *html: str) -> None:
        self.parts.extend(html)

    def thumb(self, data: bytes | None, alt: str, path: str, badge: str = "") -> str:
        """A blurred thumbnail with its own reveal toggle; a placeholder when there is none."""
        caption = f'<figcaption title="{esc(path)}">{esc(short(_name(path), 26))}</figcaption>'
        mark = f'<span class="badge">{esc(badge)}</span>' if badge else ""
        kind = _image_type(data)
        if data is None or kind is None:
            return f'<figure class="thumb"><div class="frame">{mark}none</div>{caption}</figure>'
        self._n += 1
        ident = f"rv{self._n}"
        uri = f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"
        return (
            f'<figure class="thumb"><input type="checkbox" class="reveal" id="{ident}">'
            f'<div class="frame">{mark}<img class="blur" src="{uri}" alt="{esc(alt)}"></div>'
            f'<label for="{ident}"><span class="show">Reveal</span><span class="hide">Blur'
            f'</span><span class="sr"> {esc(alt)}</span></label>{caption}</figure>'
        )


def _badge(c: _Collected, path: str, badge: str) -> str:
    return " · ".join(x for x in (badge, "video" if path in c.video_info else "") if x)


def _alt(c: _Collected, path: str, what: str) -> str:
    return f"contact sheet of a video, {what}" if path in c.video_info else what


def _image_type(data: bytes | None) -> str | None:
    """The MIME type of a JPEG or PNG thumbnail; anything else is not put in the page."""
    if data and data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data and data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1] or path


def _paths(paths: Iterable[str], total: int, what: str = "paths") -> str:
    items = [f'<li class="path">{esc(p)}</li>' for p in paths]
    return f'<ol class="paths">{"".join(items)}</ol>{_more(total - len(items), what)}'


def _more(left: int, what: str) -> str:
    if left <= 0:
        return ""
    return f'<p class="more">…and {left:,} more {what}: every record is in results.jsonl.</p>'


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    text = str(value) if value is not None else "—"
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _size(n: int) -> str:
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    value, unit = float(n), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{n:,} bytes" if unit == 0 else f"{value:,.1f} {units[unit]}"


def _section(ident: str, title: str, count: str, text: str) -> str:
    return (
        f'<section id="{ident}" aria-labelledby="{ident}-h"><h2 id="{ident}-h">{esc(title)}'
        f"{f' <span class=count>{esc(count)}</span>' if count else ''}</h2>"
        f"{f'<p class=explain>{text}</p>' if text else ''}"
    )


def _header(page: _Page, case: Mapping[str, Any], generated: str) -> None:
    number = case.get("case_number") or case.get("CaseNumber")
    operator = case.get("operator")
    if operator and case.get("host"):
        operator = f"{operator} on {case.get('host')}"
    facts = [("Agency", case.get("agency")), ("Examiner", case.get("examiner"))]
    facts += [("Run by", operator), ("Case ID", case.get("case_id"))]
    facts += [("Case directory", case.get("case_dir"))]
    facts += [
        ("Scan started", _when(case.get("started"))),
        ("Scan finished", _when(case.get("finished"))),
    ]
    facts += [("Report written", generated), ("hashwatch version", __version__)]
    page.add(
        '<header class="top"><p class="kicker">hashwatch scan report</p>',
        f"<h1>Case {esc(number)}</h1>" if number else "<h1>Scan report</h1>",
        '<dl class="facts">',
        *(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts if v),
        "</dl>",
    )
    roots = []
    for root in case.get("evidence") or case.get("roots") or ():
        r = root if isinstance(root, Mapping) else getattr(root, "__dict__", {"path": root})
        files = r.get("files")
        digest = f'<code title="{esc(r.get("digest", ""))}">{esc(r.get("sha256"))}</code>'
        roots.append((_path(r.get("path")), esc(r.get("kind", "")),
                       f"{files:,}" if isinstance(files, int) else "",
                       digest if r.get("sha256") else "—"))  # fmt: skip
    if roots:
        heads = ["Evidence root", "Kind", "Files", "SHA-256 (file) or tree digest (directory)"]
        page.add(_table(heads, roots, "meta"))
    lists = [
        (
            esc(x.get("name")),
            esc(x.get("kind")),
            esc(x.get("version", "")),
            _path(x.get("source") or x.get("source_org") or ""),
        )
        for x in case.get("lists", ())
    ]
    if lists:
        page.add(_table(["Hash list used", "Kind", "Version", "Source"], lists, "meta"))
    if "lists" in case and not lists:
        page.add(
            '<p class="warning"><strong>No hash list was used: every file is new.</strong> '
            "Nothing was matched; import a list and scan again to find known files.</p>"
        )
    elif lists and not any(x.get("kind") == "known" for x in case.get("lists", ())):
        page.add(
            '<p class="warning"><strong>No list of known material was used:</strong> no file '
            "could be found as known.</p>"
        )
    command = case.get("command")
    if command:
        text = shlex.join(str(part) for part in command)
        page.add(f'<p class="settings"><strong>Command:</strong> <code>{esc(text)}</code></p>')
    settings = case.get("settings") or {}
    if settings:
        pairs = (
            f"{esc(k)} <code>{esc('—' if v is None else v)}</code>" for k, v in settings.items()
        )
        page.add(f'<p class="settings"><strong>Settings:</strong> {" · ".join(pairs)}</p>')
    page.add("</header>")


def _intro(page: _Page) -> None:
    rows = "".join(
        f'<div><dt><span class="dot" style="background:{_COLOUR[k]}"></span>{esc(name)}</dt>'
        f"<dd>{esc(text)}</dd></div>"
        for k, (name, text) in STATUS_TEXT.items()
    )
    page.add(
        _section("about", "How to read this report", "", ""),
        '<p class="lead-note"><strong>A match is a lead for review, not a verdict.</strong> '
        "Hash lists can hold errors, and a perceptual (PDQ) match means two pictures look "
        "alike, not that they are the same. Every finding needs a person to look.</p>",
        f'<dl class="statuses">{rows}</dl>',
        "<p>PDQ distance counts the differing bits of two perceptual hashes: 0 is the same "
        "picture, small distances are near-copies (resized, re-encoded). Thumbnails are "
        "blurred and grey: <em>Reveal</em> shows that one image, at most 160 px; printing "
        "keeps every image blurred. EXIF data (camera, time, place) can be edited or "
        "removed: it is a lead too.</p>",
        "<p>Videos are matched by the PDQ hashes of their frames; the Videos section "
        "explains how to read a video match (query %, compared %, partial).</p></section>",
    )


def _summary(page: _Page, c: _Collected, summary: ScanSummary, clusters: Sequence[Cluster]) -> None:
    counts = {k: summary.by_status.get(k, c.status.get(k, 0)) for k in _ORDER}
    total = summary.files or sum(counts.values())
    rows = [
        (
            f'<a href="#{_ANCHOR.get(k, k)}">{esc(STATUS_TEXT[k][0])}</a>',
            f"{counts[k]:,}",
        )
        for k in _ORDER
    ]
    buckets = (
        (1, "1 file"),
        (2, "2 files"),
        (5, "3–5"),
        (10, "6–10"),
        (50, "11–50"),
        (1 << 62, "over 50"),
    )
    sizes = Counter(next(lbl for top, lbl in buckets if len(cl.members) <= top) for cl in clusters)
    took = f" in {summary.seconds:,.0f} s" if summary.seconds else ""
    videos = Counter(summary.videos_by_status or c.videos.status)
    partial = summary.videos_partial or c.videos.partial
    video_line = ""
    if videos:
        shared = (
            f", {partial:,} of them new but sharing frames with a known video" if partial else ""
        )
        video_line = (
            f' <a href="#videos">{sum(videos.values()):,} videos</a>: '
            f"{videos.get('known', 0):,} known, {videos.get('new', 0):,} new{shared}."
        )
        rows.append(('<a href="#videos">of which videos</a>', f"{sum(videos.values()):,}"))
    page.add(
        _section("summary", "Summary", "", ""),
        f"<p>{total:,} files ({_size(summary.bytes)}) examined{took}: "
        f"{counts['new']:,} new in {len(clusters):,} clusters, {counts['known']:,} known."
        f"{video_line}</p>",
        '<div class="summary-grid">',
        _table(["Status", "Files"], rows, "counts"),
        '<div class="charts">',
        bar_chart([(STATUS_TEXT[k][0], counts[k]) for k in _ORDER], title="Files by status",
                  chart_id="c-status", colors=[_COLOUR[k] for k in _ORDER]),
        bar_chart([(lbl, sizes[lbl]) for _, lbl in buckets], title="New clusters by size",
                  chart_id="c-sizes", colors=[PALETTE[0]]),
        bar_chart(sorted((summary.known_by_category or c.by_category).items()),
                  title="Known files by category", chart_id="c-cat", colors=[PALETTE[1]]),
        bar_chart(Counter(summary.known_by_list or c.by_list).most_common(),
                  title="Known files by list", chart_id="c-list", colors=[PALETTE[4]]),
        bar_chart([(STATUS_TEXT[k][0], videos.get(k, 0)) for k in _ORDER], title="Videos by status",
                  chart_id="c-video", colors=[_COLOUR[k] for k in _ORDER]) if videos else "",
        "</div></div></section>",
    )  # fmt: skip


def _cluster(page: _Page, c: _Collected, cl: Cluster) -> None:
    members = [cl.representative, *(m for m in cl.members if m != cl.representative)]
    n = len(members)
    figs = "".join(
        page.thumb(c.thumbs.get(p), _alt(c, p, f"cluster {cl.number}, file {i + 1}"), p,
                   _badge(c, p, "representative" if i == 0 else ""))
        for i, p in enumerate(members[:THUMBS_PER_CLUSTER])
    )  # fmt: skip
    videos = [
        (_path(p), c.video_info[p], video_matches_html(c.video_matches[p]))
        for p in members[:THUMBS_PER_CLUSTER]
        if p in c.video_matches
    ]
    leads = c.cluster_leads.get(cl.number, _Leads()).rows(3)
    reasons = "".join(f"<li>{esc(x)}</li>" for x in cl.reasons)
    near, ident = cl.nearest_known_distance, f"cluster-{cl.number}"
    page.add(
        f'<article class="cluster" id="{ident}" aria-labelledby="{ident}-h">'
        f'<h3 id="{ident}-h">Cluster {cl.number} <span class="pill">{n:,} file{"s"[: n - 1]}'
        f'</span> <span class="muted">priority {cl.priority:.2f}</span></h3>',
        f'<ul class="reasons">{reasons}</ul>' if reasons else "",
        "" if near is None else f'<p class="near">Nearest known entry: PDQ distance {near} '
        "(close to known material, not a match).</p>",
        f'<div class="thumbs">{figs}</div>',
        _table(["Video", "Facts", "Shares frames with"], videos, "videos") if videos else "",
        f'<p class="more">…and {n - THUMBS_PER_CLUSTER:,} more in this cluster.</p>'
        if n > THUMBS_PER_CLUSTER else "",
        '<div class="cluster-facts">',
        _table(["EXIF lead", "Value"], leads, "leads") if leads else "<p>No EXIF leads.</p>",
        f'<details{" open" if n <= 10 else ""}><summary>Paths ({n:,})</summary>'
        f"{_paths(members[:PATHS_PER_CLUSTER], n)}</details></div></article>",
    )  # fmt: skip


def _new(page: _Page, c: _Collected, clusters: Sequence[Cluster]) -> None:
    page.add(_section("new", "New media", f"{c.status.get('new', 0):,} files, "
                      f"{len(clusters):,} clusters", esc(STATUS_TEXT["new"][1])
                      + " Clusters are in review order: cluster 1 first."))  # fmt: skip
    if not clusters and not c.unclustered:
        page.add('<p class="muted">No new media.</p>')
    for cl in clusters[:DETAILED_CLUSTERS]:
        _cluster(page, c, cl)
    rest = clusters[DETAILED_CLUSTERS:]
    if rest:
        rows = ((str(cl.number), f"{len(cl.members):,}", f"{cl.priority:.2f}",
                 _path(cl.representative)) for cl in rest[:CLUSTER_ROWS])  # fmt: skip
        page.add("<h3>Further clusters</h3>",
                 _table(["Cluster", "Files", "Priority", "Representative"], rows),
                 _more(len(rest) - CLUSTER_ROWS, "clusters"))  # fmt: skip
    if c.unclustered:
        page.add("<h3>New files in no cluster</h3>",
                 _paths(c.unclustered, c.unclustered_total, "files"))  # fmt: skip
    page.add("</section>")


def _exif(page: _Page, c: _Collected) -> None:
    leads = c.leads
    page.add(_section("exif", "EXIF leads in new images", "",
                      f"{leads.with_exif:,} of {c.status.get('new', 0):,} new files carry EXIF "
                      "leads. Pictures that share a camera serial number were probably taken "
                      "with one camera; EXIF can be edited: confirm by other means."))  # fmt: skip
    serials = sorted(leads.serials.items(), key=lambda kv: -kv[1]["n"])
    if serials:
        table = (
            (f"<code>{esc(s)}</code>", esc(", ".join(sorted(v["cams"]))), f"{v['n']:,}",
             ", ".join(f'<a href="#cluster-{n}">{n}</a>' for n in sorted(v["cls"])[:30]))
            for s, v in serials[:LISTED]
        )  # fmt: skip
        page.add("<h3>Camera serial numbers</h3>",
                 _table(["Serial number", "Camera", "New images", "Clusters"], table))  # fmt: skip
    rows = [row for row in leads.rows(10) if row[0] != "Serial number"]
    page.add(
        _table(["Lead", "Most frequent values (new images)"], rows) if rows else "", "</section>"
    )


def _known(page: _Page, c: _Collected) -> None:
    total = c.status.get("known", 0)
    text = esc(STATUS_TEXT["known"][1]) + " Grouped by category, then list."
    page.add(_section("known", "Known matches", f"{total:,} files", text))
    if not c.known:
        page.add('<p class="muted">No file matched a known list.</p>')
    groups: dict[tuple[str, str], list[ItemRecord]] = {}
    for r in c.known:
        m = _first(r)
        groups.setdefault((str(m.get("category") or "~"), str(m.get("list", "?"))), []).append(r)
    for (_, list_name), rows in sorted(groups.items()):
        first = _first(rows[0])
        cells = []
        for r in rows:
            m = _first(r)
            kind = str(m.get("hash_type", "")).upper()
            how = (
                f"{kind} distance {esc(m.get('distance'))}"
                if kind == "PDQ"
                else f"exact {esc(kind)}"
            )
            how += f" ({esc(m['variant'])})" if m.get("variant") else ""
            more = f" +{len(r.matches) - 1} more" if len(r.matches) > 1 else ""
            if r.media_type == "video":
                how = f"{c.video_info.get(r.path, '')}<br>{video_matches_html(r.matches)}"
                more = ""
            status = str(m.get("entry_status", "active"))
            cells.append((
                page.thumb(r.thumbnail, _alt(c, r.path, f"known match {r.path}"), r.path),
                _path(r.path),
                f"{esc(m.get('entry_id'))}{esc(more)}", how, esc(m.get("series") or "—"),
                esc(status) if status == "active" else f'<b class="flag">{esc(status)}</b>',
            ))  # fmt: skip
        version = f" (version {esc(first['list_version'])})" if first.get("list_version") else ""
        page.add(
            f"<h3>{esc(_category(first))} · list {esc(list_name)}{version} "
            f'<span class="count">{len(rows):,}</span></h3>',
            _table(["Image", "Path", "Entry", "Match", "Series", "Status"], cells, "known"),
        )
    page.add(_more(total - len(c.known), "known files"), "</section>")


def _rest(page: _Page, c: _Collected) -> None:
    n_ign, n_other, n_err = (c.status.get(k, 0) for k in ("ignorable", "other", "error"))
    page.add(_section("ignorable", "Ignorable and other files", f"{n_ign + n_other:,} files",
                      f"{n_ign:,} ignorable: {esc(STATUS_TEXT['ignorable'][1])} {n_other:,} other: "
                      + esc(STATUS_TEXT["other"][1])))  # fmt: skip
    if c.ignorable_by_list:
        rows = ((esc(k), f"{v:,}") for k, v in c.ignorable_by_list.most_common())
        page.add(_table(["Ignorable list", "Files"], rows, "counts"))
    if c.ignorable:
        page.add(f"<details><summary>Ignorable paths ({n_ign:,})</summary>",
                 _paths(c.ignorable, n_ign), "</details>")  # fmt: skip
    page.add(
        "</section>", _section("errors", "Errors", f"{n_err:,} files", esc(STATUS_TEXT["error"][1]))
    )
    if c.errors:
        rows = ((_path(p), esc(e)) for p, e in c.errors)
        page.add(_table(["Path", "Reason"], rows), _more(n_err - len(c.errors), "errors"))
    page.add('<p class="muted">Every file was read.</p>' if not n_err else "")
    if c.read_in_part:
        part = ((_path(p), esc(status), esc(e)) for p, status, e in c.read_in_part)
        page.add(
            "<h3>Read in part</h3><p class=explain>Damaged or truncated videos: the frames "
            "that could be read were hashed and matched, the rest could not be checked.</p>",
            _table(["Path", "Status", "Reason"], part),
            _more(c.read_in_part_total - len(c.read_in_part), "videos read in part"),
        )
    page.add("</section>")


def write_html_report(
    path: str | os.PathLike[str],
    records: Iterable[ItemRecord],
    clusters: Sequence[Cluster],
    summary: ScanSummary,
    case_info: Mapping[str, Any],
) -> None:
    """Write the report to ``path`` (through a temporary file, renamed when complete).

    ``case_info`` keys used: case_number, case_id, examiner, started, finished (ISO-8601 or
    aware datetimes), evidence (EvidenceRoot objects or mappings with path, kind, files,
    sha256, digest) or roots (paths), lists (mappings with name, kind, version, source or
    source_org), settings (mapping). Missing keys are left out of the header.
    """
    ordered = sorted(clusters, key=lambda cl: cl.number)
    wanted: set[str] = set()
    for cl in ordered[:DETAILED_CLUSTERS]:
        members = [cl.representative, *(m for m in cl.members if m != cl.representative)]
        wanted.update(members[: max(0, min(THUMBS_PER_CLUSTER, NEW_THUMBNAILS - len(wanted)))])
    collected = _collect(records, wanted, MAX_THUMBNAILS - len(wanted))
    generated = _when(datetime.now(UTC))
    page = _Page()
    title = f"hashwatch report: case {case_info.get('case_number') or 'unnamed'}"
    page.add(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f'<meta name="referrer" content="no-referrer"><title>{esc(title)}</title>',
        f"<style>{STYLESHEET}</style></head><body>",
    )
    _header(page, case_info, generated)
    links = "".join(f'<li><a href="#{k}">{v}</a></li>' for k, v in _NAV.items())
    page.add(f'<nav aria-label="Sections"><ul>{links}</ul></nav><main>')
    _intro(page)
    _summary(page, collected, summary, ordered)
    _new(page, collected, ordered)
    _exif(page, collected)
    _known(page, collected)
    page.add(video_section(collected.videos))
    _rest(page, collected)
    page.add(
        f"</main><footer><p>Written by hashwatch {esc(__version__)} on {esc(generated)}. "
        "results.jsonl holds every record, manifest.json the digest of every output (check "
        "them with <code>hashwatch verify</code>). A match is a lead for review, not a "
        "verdict.</p></footer></body></html>\n"
    )
    final = Path(path)
    partial = final.with_name(f".{final.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", errors="replace") as out:
            out.writelines(page.parts)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
