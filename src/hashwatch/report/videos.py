"""The report's video parts: what a video match means, in words and m:ss times.

A video is matched as a set of frames (vPDQ): a match with a known video says how much of
*this* video's frames match it (``query %``) and how much of the *known* video's frames were
found here (``compared %``), and which time segments matched. A match below the list's video
thresholds is *partial*: shown, never an alert; the video stays new. Every record keeps the
full facts in ``results.jsonl``; the page shows a bounded digest of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from hashwatch.lists.model import ListKind
from hashwatch.matching.match import Match, VideoFacts
from hashwatch.report.charts import esc, path_html, table
from hashwatch.scan.model import ItemRecord, ItemStatus

__all__ = [
    "VIDEO_ROWS",
    "VIDEO_TEXT",
    "VideoRows",
    "clock",
    "entry_match_html",
    "segments_text",
    "video_facts",
    "video_matches_html",
    "video_section",
]

VIDEO_ROWS = 2000  # videos listed in the Videos section
SEGMENTS_SHOWN = 5  # per match
MATCHES_SHOWN = 3  # per video

VIDEO_TEXT = (
    "Videos are hashed one frame a second, as Meta's vPDQ does, and matched frame by frame. "
    "A video match gives two shares: <em>query %</em>, how much of this video's frames match "
    "the known video, and <em>compared %</em>, how much of the known video's frames were found "
    "in this one. It is decisive (known) when compared % reaches the list's video threshold "
    "(80 % by default); below it the match is <em>partial</em>: no alert, the video stays new, "
    "but it shares material with a known video and ranks high for review. Segments give the "
    "matched times (m:ss) in this video and in the known one. A video's picture is a contact "
    "sheet of frames spaced evenly through it, blurred like every thumbnail."
)


def clock(seconds: object) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), or an empty string when unknown."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _span(start: object, end: object) -> str:
    a, b = clock(start), clock(end)
    return a if a == b else f"{a}–{b}"


def segments_text(video: VideoFacts, limit: int = SEGMENTS_SHOWN) -> str:
    """The matched segments of a video match as escaped text, e.g. ``0:00–0:03 (known video
    0:00–0:03), 4 frames``; the rest counted."""
    parts = []
    for seg in video.segments[:limit]:
        text = _span(seg.query_start, seg.query_end)
        if seg.ref_start is not None:
            text += f" (known video {_span(seg.ref_start, seg.ref_end)})"
        text += f", {seg.frames} frame{'s' if seg.frames != 1 else ''}"
        if seg.categories:
            text += ", categories " + ", ".join(seg.categories)
        parts.append(esc(text))
    left = len(video.segments) - len(parts) + video.segments_left_out
    if left > 0:
        parts.append(f"…and {left:,} more (results.jsonl)")
    return "; ".join(parts)


def entry_match_html(matches: Sequence[Match]) -> str:
    """The matches of a video with one list entry, in one line: the list and entry, known or
    partial, the exact digests that match (the same file), and the video match's query %,
    compared % and segments."""
    first = matches[0]
    head = f"list {esc(first.list)}, entry {esc(first.entry_id)}"
    if all(m.partial for m in matches):
        word = '<b class="flag">partial (no alert)</b>'
    else:
        word = f"<b>{esc(first.kind)}</b>"
    videos = [m.video for m in matches if m.video is not None]
    exact = [m.hash_type.upper() for m in matches if m.video is None and m.hash_type != "pdq"]
    parts = [f"exact {esc(', '.join(exact))} (same file)"] if exact else []
    for video in videos[:1]:
        parts.append(f"query {video.query_pct:.0f} %, compared {video.compared_pct:.0f} %")
    if not videos and not exact:
        parts.append(f"PDQ distance {esc(first.distance)}")
    text = f"{head}: {word}, {'; '.join(parts)}"
    segments = segments_text(videos[0]) if videos else ""
    return text + (f'<br><span class="muted">segments: {segments}</span>' if segments else "")


def video_matches_html(matches: Sequence[Match], limit: int = MATCHES_SHOWN) -> str:
    """The matches of a video, one line per list entry; the rest counted."""
    entries: dict[tuple[str, int], list[Match]] = {}
    for m in matches:
        entries.setdefault((m.list, m.entry_id), []).append(m)
    lines = [entry_match_html(group) for group in list(entries.values())[:limit]]
    if len(entries) > limit:
        lines.append(f"…and {len(entries) - limit:,} more entries (results.jsonl)")
    return "<br>".join(lines) or '<span class="muted">no match</span>'


def video_facts(record: ItemRecord) -> str:
    """Duration, frame rate, size and hashed frames of a video, as escaped text."""
    parts = []
    if record.duration:
        parts.append(clock(record.duration))
    if record.fps:
        parts.append(f"{record.fps:.3g} fps")
    if record.width and record.height:
        parts.append(f"{record.width}×{record.height}")
    parts.append(f"{len(record.frames or ()):,} frames hashed")
    return esc(", ".join(parts))


@dataclass
class VideoRows:
    """The videos of a scan as the page lists them (bounded: :data:`VIDEO_ROWS`)."""

    status: Counter[str] = field(default_factory=Counter)
    partial: int = 0
    rows: list[tuple[int, str, tuple[str, ...]]] = field(default_factory=list)

    def add(self, record: ItemRecord) -> None:
        if record.media_type != "video":
            return
        self.status[record.status.value] += 1
        partial = record.status is ItemStatus.NEW and any(
            m.partial and m.kind == ListKind.KNOWN for m in record.matches
        )
        if partial:
            self.partial += 1
        # Review order: known, then new videos that share frames with known ones, new, rest.
        rank = {ItemStatus.KNOWN: 0, ItemStatus.NEW: 1 if partial else 2}.get(record.status, 3)
        if len(self.rows) >= 2 * VIDEO_ROWS:  # keep the first VIDEO_ROWS in review order
            self.rows = sorted(self.rows, key=lambda r: (r[0], r[1]))[:VIDEO_ROWS]
        note = esc(record.error) if record.error else ""
        cluster = (
            f'<a href="#cluster-{record.cluster}">{record.cluster}</a>'
            if record.cluster is not None
            else ""
        )
        cells = (
            path_html(record.path),
            esc(record.status.value) + (f"<br>cluster {cluster}" if cluster else ""),
            video_facts(record),
            video_matches_html(record.matches) if record.matches else "—",
            note,
        )
        self.rows.append((rank, record.path, cells))


def video_section(videos: VideoRows) -> str:
    """The Videos section: every video with its facts and matches, in review order."""
    total = sum(videos.status.values())
    head = (
        '<section id="videos" aria-labelledby="videos-h"><h2 id="videos-h">Videos '
        f'<span class="count">{total:,} files</span></h2><p class="explain">{VIDEO_TEXT}</p>'
    )
    if not total:
        return head + '<p class="muted">No video in the evidence.</p></section>'
    counts = ", ".join(f"{n:,} {esc(k)}" for k, n in videos.status.most_common())
    lead = (
        f"<p>{counts}. <strong>{videos.partial:,} new video(s) share frames with a known "
        "video</strong> (partial matches, listed first among the new).</p>"
        if videos.partial
        else f"<p>{counts}.</p>"
    )
    rows = [cells for _, _, cells in sorted(videos.rows, key=lambda r: (r[0], r[1]))[:VIDEO_ROWS]]
    body = table(["Path", "Status", "Video", "Matches", "Note"], rows, "videos")
    more = ""
    if total > len(rows):
        more = (
            f'<p class="more">…and {total - len(rows):,} more videos: every record is in '
            "results.jsonl.</p>"
        )
    return head + lead + body + more + "</section>"
