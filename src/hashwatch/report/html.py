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

The page is put together here from its parts: :mod:`~hashwatch.report.collect` (the one pass
over the records), :mod:`~hashwatch.report.header` and :mod:`~hashwatch.report.sections` (the
page's sections), :mod:`~hashwatch.report.page` (status words, thumbnails, small helpers),
:mod:`~hashwatch.report.charts` (the stylesheet and SVG charts) and
:mod:`~hashwatch.report.videos`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hashwatch import __version__
from hashwatch.report.charts import STYLESHEET, esc
from hashwatch.report.collect import (
    CLUSTER_ROWS,
    DETAILED_CLUSTERS,
    MAX_THUMBNAILS,
    NEW_THUMBNAILS,
    THUMBS_PER_CLUSTER,
    collect,
)
from hashwatch.report.header import write_header
from hashwatch.report.p2p import P2PRows, p2p_section
from hashwatch.report.page import STATUS_TEXT, Page, when_text
from hashwatch.report.sections import (
    write_exif,
    write_intro,
    write_known,
    write_new,
    write_rest,
    write_summary,
)
from hashwatch.report.videos import video_section
from hashwatch.scan.model import Cluster, ItemRecord, ScanSummary

__all__ = ["MAX_THUMBNAILS", "STATUS_TEXT", "ClusterSource", "write_html_report"]

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'"
_NAV = {"about": "How to read", "summary": "Summary", "new": "New", "exif": "EXIF leads"}
_NAV |= {"known": "Known", "videos": "Videos", "p2p": "P2P records"}
_NAV |= {"ignorable": "Ignorable", "errors": "Errors"}


@dataclass(frozen=True)
class ClusterSource:
    """The clusters as the page reads them, without holding every one: how many there are,
    each one's size (in number order) and the first ``n`` in number order. A scan reads them
    from its state (:meth:`hashwatch.scan.state.ScanState.cluster_list`); :meth:`of` wraps a
    list."""

    count: int
    sizes: Callable[[], Iterable[int]]
    head: Callable[[int], Sequence[Cluster]]

    @classmethod
    def of(cls, clusters: Sequence[Cluster]) -> ClusterSource:
        ordered = sorted(clusters, key=lambda cl: cl.number)
        return cls(len(ordered), lambda: (len(cl.members) for cl in ordered), lambda n: ordered[:n])


def write_html_report(
    path: str | os.PathLike[str],
    records: Iterable[ItemRecord],
    clusters: Sequence[Cluster] | ClusterSource,
    summary: ScanSummary,
    case_info: Mapping[str, Any],
    *,
    max_thumbnails: int | None = None,
) -> None:
    """Write the report to ``path`` (through a temporary file, renamed when complete).

    ``max_thumbnails`` bounds the page (``hashwatch scan --report-thumbnails``; None:
    :data:`MAX_THUMBNAILS`): the top clusters in review order get three quarters of them
    (:data:`NEW_THUMBNAILS` of the default), known matches the rest; every
    record, with or without a thumbnail here, is in ``results.jsonl`` and the review
    workspace (``thumbnails.jsonl``). A scan that made no thumbnails (its settings'
    ``thumbnails`` False) is said to be one near the summary.

    ``case_info`` keys used: case_number, case_id, examiner, started, finished (ISO-8601 or
    aware datetimes), evidence (EvidenceRoot objects or mappings with path, kind, files,
    sha256, digest) or roots (paths), lists (mappings with name, kind, version, source or
    source_org), settings (mapping). Missing keys are left out of the header.
    """
    source = clusters if isinstance(clusters, ClusterSource) else ClusterSource.of(clusters)
    # The page shows the first clusters only: in detail, then as table rows.
    ordered = list(source.head(DETAILED_CLUSTERS + CLUSTER_ROWS))
    if max_thumbnails is None:
        max_thumbnails, new_budget = MAX_THUMBNAILS, NEW_THUMBNAILS
    else:
        new_budget = max(0, max_thumbnails) * 3 // 4
    wanted: set[str] = set()
    for cl in ordered[:DETAILED_CLUSTERS]:
        members = [cl.representative, *(m for m in cl.members if m != cl.representative)]
        wanted.update(members[: max(0, min(THUMBS_PER_CLUSTER, new_budget - len(wanted)))])
    p2p = P2PRows()  # P2P client records: a section of their own, not files
    collected = collect(
        p2p.split(records),
        wanted,
        max(0, max_thumbnails - len(wanted)),
        detailed={cl.number for cl in ordered[:DETAILED_CLUSTERS]},
    )
    generated = when_text(datetime.now(UTC))
    page = Page()
    title = f"hashwatch report: case {case_info.get('case_number') or 'unnamed'}"
    page.add(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f'<meta name="referrer" content="no-referrer"><title>{esc(title)}</title>',
        f"<style>{STYLESHEET}</style></head><body>",
    )
    write_header(page, case_info, generated)
    links = "".join(f'<li><a href="#{k}">{v}</a></li>' for k, v in _NAV.items())
    page.add(f'<nav aria-label="Sections"><ul>{links}</ul></nav><main>')
    write_intro(page)
    # A scan without thumbnails (--no-thumbnails) says so, rather than as a cap of the page.
    made = (case_info.get("settings") or {}).get("thumbnails", True) is not False
    write_summary(page, collected, summary, source.count, source.sizes(), thumbnails=made)
    write_new(
        page, collected, ordered, source.count, thumbnail_cap=max_thumbnails if made else None
    )
    write_exif(page, collected)
    write_known(page, collected)
    page.add(video_section(collected.videos))
    page.add(p2p_section(p2p))
    write_rest(page, collected)
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
