"""The report's sections after the header: how to read it, the summary, new media in
clusters, EXIF leads, known matches, and what was set aside (ignorable, other, errors).

Each ``write_*`` function appends one section to the :class:`~hashwatch.report.page.Page`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from hashwatch.matching.match import Match
from hashwatch.report.charts import PALETTE, bar_chart, esc
from hashwatch.report.charts import path_html as _path
from hashwatch.report.charts import table as _table
from hashwatch.report.collect import (
    CLUSTER_ROWS,
    DETAILED_CLUSTERS,
    LISTED,
    PATHS_PER_CLUSTER,
    THUMBS_PER_CLUSTER,
    Collected,
    Leads,
    category_text,
    first_match,
)
from hashwatch.report.page import (
    STATUS_COLOUR,
    STATUS_ORDER,
    STATUS_TEXT,
    Page,
    more_html,
    paths_html,
    section_html,
    size_text,
)
from hashwatch.report.videos import video_matches_html
from hashwatch.scan.model import Cluster, ItemRecord, ScanSummary

__all__ = [
    "write_exif",
    "write_intro",
    "write_known",
    "write_new",
    "write_rest",
    "write_summary",
]

_ANCHOR = {"other": "ignorable", "error": "errors"}
NO_THUMBNAILS = (
    '<p class="more" id="no-thumbnails">Thumbnails were not made in this scan '
    "(<code>--no-thumbnails</code>): pictures show as none here. Imported for review "
    "(<code>hashwatch cases import</code> or <code>hashwatch review</code>), each picture's "
    "thumbnail is made from the evidence when the review pages first show it.</p>"
)


def _badge(c: Collected, path: str, badge: str) -> str:
    return " · ".join(x for x in (badge, "video" if path in c.video_info else "") if x)


def _alt(c: Collected, path: str, what: str) -> str:
    return f"contact sheet of a video, {what}" if path in c.video_info else what


def write_intro(page: Page) -> None:
    rows = "".join(
        f'<div><dt><span class="dot" style="background:{STATUS_COLOUR[k]}"></span>{esc(name)}</dt>'
        f"<dd>{esc(text)}</dd></div>"
        for k, (name, text) in STATUS_TEXT.items()
    )
    page.add(
        section_html("about", "How to read this report", "", ""),
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


def write_summary(
    page: Page,
    c: Collected,
    summary: ScanSummary,
    clusters: int,
    sizes: Iterable[int],
    *,
    thumbnails: bool = True,
) -> None:
    """The summary: counts by status, charts; ``clusters`` new clusters of ``sizes``.
    ``thumbnails`` False: the scan made none (``--no-thumbnails``), which a line says."""
    counts = {k: summary.by_status.get(k, c.status.get(k, 0)) for k in STATUS_ORDER}
    total = summary.files or sum(counts.values())
    rows = [
        (
            f'<a href="#{_ANCHOR.get(k, k)}">{esc(STATUS_TEXT[k][0])}</a>',
            f"{counts[k]:,}",
        )
        for k in STATUS_ORDER
    ]
    buckets = (
        (1, "1 file"),
        (2, "2 files"),
        (5, "3–5"),
        (10, "6–10"),
        (50, "11–50"),
        (1 << 62, "over 50"),
    )
    by_size = Counter(next(lbl for top, lbl in buckets if size <= top) for size in sizes)
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
    if summary.p2p_records:  # records of P2P clients, not files (hashwatch.report.p2p)
        rows.append(('<a href="#p2p">P2P client records</a>', f"{summary.p2p_records:,}"))
    page.add(
        section_html("summary", "Summary", "", ""),
        f"<p>{total:,} files ({size_text(summary.bytes)}) examined{took}: "
        f"{counts['new']:,} new in {clusters:,} clusters, {counts['known']:,} known."
        f"{video_line}</p>",
        "" if thumbnails else NO_THUMBNAILS,
        '<div class="summary-grid">',
        _table(["Status", "Files"], rows, "counts"),
        '<div class="charts">',
        bar_chart(
            [(STATUS_TEXT[k][0], counts[k]) for k in STATUS_ORDER],
            title="Files by status",
            chart_id="c-status",
            colors=[STATUS_COLOUR[k] for k in STATUS_ORDER],
        ),
        bar_chart(
            [(lbl, by_size[lbl]) for _, lbl in buckets],
            title="New clusters by size",
            chart_id="c-sizes",
            colors=[PALETTE[0]],
        ),
        bar_chart(
            sorted((summary.known_by_category or c.by_category).items()),
            title="Known files by category",
            chart_id="c-cat",
            colors=[PALETTE[1]],
        ),
        bar_chart(
            Counter(summary.known_by_list or c.by_list).most_common(),
            title="Known files by list",
            chart_id="c-list",
            colors=[PALETTE[4]],
        ),
        bar_chart(
            [(STATUS_TEXT[k][0], videos.get(k, 0)) for k in STATUS_ORDER],
            title="Videos by status",
            chart_id="c-video",
            colors=[STATUS_COLOUR[k] for k in STATUS_ORDER],
        )
        if videos
        else "",
        "</div></div></section>",
    )


def _cluster(page: Page, c: Collected, cl: Cluster) -> None:
    members = [cl.representative, *(m for m in cl.members if m != cl.representative)]
    n = len(members)
    figs = "".join(
        page.thumb(
            c.thumbs.get(p),
            _alt(c, p, f"cluster {cl.number}, file {i + 1}"),
            p,
            _badge(c, p, "representative" if i == 0 else ""),
        )
        for i, p in enumerate(members[:THUMBS_PER_CLUSTER])
    )
    videos = [
        (_path(p), c.video_info[p], video_matches_html(c.video_matches[p]))
        for p in members[:THUMBS_PER_CLUSTER]
        if p in c.video_matches
    ]
    leads = c.cluster_leads.get(cl.number, Leads()).rows(3)
    reasons = "".join(f"<li>{esc(x)}</li>" for x in cl.reasons)
    near, ident = cl.nearest_known_distance, f"cluster-{cl.number}"
    page.add(
        f'<article class="cluster" id="{ident}" aria-labelledby="{ident}-h">'
        f'<h3 id="{ident}-h">Cluster {cl.number} <span class="pill">{n:,} file{"s"[: n - 1]}'
        f'</span> <span class="muted">priority {cl.priority:.2f}</span></h3>',
        f'<ul class="reasons">{reasons}</ul>' if reasons else "",
        ""
        if near is None
        else f'<p class="near">Nearest known entry: PDQ distance {near} '
        "(close to known material, not a match).</p>",
        f'<div class="thumbs">{figs}</div>',
        _table(["Video", "Facts", "Shares frames with"], videos, "videos") if videos else "",
        f'<p class="more">…and {n - THUMBS_PER_CLUSTER:,} more in this cluster.</p>'
        if n > THUMBS_PER_CLUSTER
        else "",
        '<div class="cluster-facts">',
        _table(["EXIF lead", "Value"], leads, "leads") if leads else "<p>No EXIF leads.</p>",
        f"<details{' open' if n <= 10 else ''}><summary>Paths ({n:,})</summary>"
        f"{paths_html(members[:PATHS_PER_CLUSTER], n)}</details></div></article>",
    )


def write_new(
    page: Page,
    c: Collected,
    clusters: Sequence[Cluster],
    total: int,
    *,
    thumbnail_cap: int | None = None,
) -> None:
    """New media: the first ``clusters`` (in number order) of ``total``, the first
    :data:`DETAILED_CLUSTERS` in detail, the next :data:`CLUSTER_ROWS` as table rows."""
    page.add(
        section_html(
            "new",
            "New media",
            f"{c.status.get('new', 0):,} files, {total:,} clusters",
            esc(STATUS_TEXT["new"][1]) + " Clusters are in review order: cluster 1 first.",
        )
    )
    left = c.status.get("new", 0) - len(c.thumbs)
    if thumbnail_cap is not None and left > 0 and c.thumbs:
        page.add(
            f'<p class="more">Thumbnails of the first {len(c.thumbs):,} new files in review '
            f"order are shown (the page holds at most {thumbnail_cap:,}); the {left:,} more "
            "new files are in results.jsonl, with their thumbnails in thumbnails.jsonl for "
            "the review workspace (<code>hashwatch cases import</code>).</p>"
        )
    if not clusters and not c.unclustered:
        page.add('<p class="muted">No new media.</p>')
    for cl in clusters[:DETAILED_CLUSTERS]:
        _cluster(page, c, cl)
    if total > DETAILED_CLUSTERS:
        rows = (
            (str(cl.number), f"{len(cl.members):,}", f"{cl.priority:.2f}", _path(cl.representative))
            for cl in clusters[DETAILED_CLUSTERS : DETAILED_CLUSTERS + CLUSTER_ROWS]
        )
        page.add(
            "<h3>Further clusters</h3>",
            _table(["Cluster", "Files", "Priority", "Representative"], rows),
            more_html(total - DETAILED_CLUSTERS - CLUSTER_ROWS, "clusters"),
        )
    if c.unclustered:
        page.add(
            "<h3>New files in no cluster</h3>",
            paths_html(c.unclustered, c.unclustered_total, "files"),
        )
    page.add("</section>")


def write_exif(page: Page, c: Collected) -> None:
    leads = c.leads
    page.add(
        section_html(
            "exif",
            "EXIF leads in new images",
            "",
            f"{leads.with_exif:,} of {c.status.get('new', 0):,} new files carry EXIF "
            "leads. Pictures that share a camera serial number were probably taken "
            "with one camera; EXIF can be edited: confirm by other means.",
        )
    )
    serials = sorted(leads.serials.items(), key=lambda kv: -kv[1]["n"])
    if serials:
        table = (
            (
                f"<code>{esc(s)}</code>",
                esc(", ".join(sorted(v["cams"]))),
                f"{v['n']:,}",
                ", ".join(f'<a href="#cluster-{n}">{n}</a>' for n in sorted(v["cls"])[:30]),
            )
            for s, v in serials[:LISTED]
        )
        page.add(
            "<h3>Camera serial numbers</h3>",
            _table(["Serial number", "Camera", "New images", "Clusters"], table),
        )
    rows = [row for row in leads.rows(10) if row[0] != "Serial number"]
    page.add(
        _table(["Lead", "Most frequent values (new images)"], rows) if rows else "", "</section>"
    )


def write_known(page: Page, c: Collected) -> None:
    total = c.status.get("known", 0)
    text = esc(STATUS_TEXT["known"][1]) + " Grouped by category, then list."
    page.add(section_html("known", "Known matches", f"{total:,} files", text))
    if not c.known:
        page.add('<p class="muted">No file matched a known list.</p>')
    groups: dict[tuple[str, str], list[tuple[ItemRecord, Match]]] = {}
    for r in c.known:
        m = first_match(r)
        if m is not None:  # a known file has a decisive match: it is listed under it
            groups.setdefault((m.category or "~", m.list), []).append((r, m))
    for (_, list_name), rows in sorted(groups.items(), key=lambda kv: kv[0]):
        first = rows[0][1]
        cells = []
        for r, m in rows:
            kind = m.hash_type.upper()
            how = f"{kind} distance {esc(m.distance)}" if kind == "PDQ" else f"exact {esc(kind)}"
            how += f" ({esc(m.variant)})" if m.variant else ""
            more = _other_matches(r.matches, m)
            if r.media_type == "video":
                how = f"{c.video_info.get(r.path, '')}<br>{video_matches_html(r.matches)}"
                more = ""
            status = m.entry_status
            cells.append(
                (
                    page.thumb(r.thumbnail, _alt(c, r.path, f"known match {r.path}"), r.path),
                    _path(r.path),
                    f"{esc(m.entry_id)}{more}",
                    how,
                    esc(m.series or "—"),
                    esc(status) if status == "active" else f'<b class="flag">{esc(status)}</b>',
                )
            )
        version = f" (version {esc(first.list_version)})" if first.list_version else ""
        page.add(
            f"<h3>{esc(category_text(first))} · list {esc(list_name)}{version} "
            f'<span class="count">{len(rows):,}</span></h3>',
            _table(["Image", "Path", "Entry", "Match", "Series", "Status"], cells, "known"),
        )
    page.add(more_html(total - len(c.known), "known files"), "</section>")


def _other_matches(matches: Sequence[Match], shown: Match) -> str:
    """What else the file matched, said as such: the other hashes of the same entry ("also by
    SHA-256"), and the other list entries it matched, counted as entries (not matches: one
    entry matched by four hashes is one entry; not "+3 more", which reads like more files)."""
    key = (shown.list, shown.entry_id)
    also = sorted(
        {x.hash_type.upper() for x in matches if (x.list, x.entry_id) == key}
        - {shown.hash_type.upper()}
    )
    entries = {(x.list, x.entry_id) for x in matches} - {key}
    parts = []
    if also:
        parts.append(f"also by {esc(', '.join(also))}")
    if entries:
        lists = sorted({name for name, _ in entries})
        noun = "entry" if len(entries) == 1 else "entries"
        parts.append(f"and {len(entries):,} more matching list {noun} ({esc(', '.join(lists))})")
    return "".join(f'<br><span class="muted">{part}</span>' for part in parts)


def write_rest(page: Page, c: Collected) -> None:
    n_ign, n_other, n_err = (c.status.get(k, 0) for k in ("ignorable", "other", "error"))
    page.add(
        section_html(
            "ignorable",
            "Ignorable and other files",
            f"{n_ign + n_other:,} files",
            f"{n_ign:,} ignorable: {esc(STATUS_TEXT['ignorable'][1])} {n_other:,} other: "
            + esc(STATUS_TEXT["other"][1]),
        )
    )
    if c.ignorable_by_list:
        rows = ((esc(k), f"{v:,}") for k, v in c.ignorable_by_list.most_common())
        page.add(_table(["Ignorable list", "Files"], rows, "counts"))
    if c.ignorable:
        page.add(
            f"<details><summary>Ignorable paths ({n_ign:,})</summary>",
            paths_html(c.ignorable, n_ign),
            "</details>",
        )
    page.add(
        "</section>",
        section_html("errors", "Errors", f"{n_err:,} files", esc(STATUS_TEXT["error"][1])),
    )
    if c.errors:
        rows = ((_path(p), esc(e)) for p, e in c.errors)
        page.add(_table(["Path", "Reason"], rows), more_html(n_err - len(c.errors), "errors"))
    page.add('<p class="muted">Every file was read.</p>' if not n_err else "")
    if c.read_in_part:
        part = ((_path(p), esc(status), esc(e)) for p, status, e in c.read_in_part)
        page.add(
            "<h3>Read in part</h3><p class=explain>Damaged or truncated videos: the frames "
            "that could be read were hashed and matched, the rest could not be checked.</p>",
            _table(["Path", "Status", "Reason"], part),
            more_html(c.read_in_part_total - len(c.read_in_part), "videos read in part"),
        )
    page.add("</section>")
