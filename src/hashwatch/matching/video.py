"""Matching a video's frame hashes against lists, with vPDQ's semantics.

A video is matched as a set of frames, order and time ignored (Meta's vPDQ): frames of quality
below the minimum are dropped and exact duplicate hashes count once, on both sides. A query
frame *matches* an entry when any of its hashes lies within the list's PDQ threshold; for each
entry with matched frames the result gives

* ``query_pct``: the share of the query's frames that match the entry, and
* ``compared_pct``: the share of the entry's (reference) frames that some query frame matches,

plus the matched time *segments*: runs of matching query frames, each with its start and end in
the query and the span of matched reference frames in the known video (and the categories of
the list's VICS ``Segments`` overlapping it).

vPDQ's percentages assume both videos were sampled alike (one frame a second, say). Lists made
by Meta's tool often hold *every* frame, and a query sampled once a second then "finds" only a
thirtieth of them. So frames are counted in time slots of the coarser of the two sampling
intervals (the median time between sampled frames): a slot counts as matched when any of its
frames matched. With equal sampling every slot holds one frame and the numbers are vPDQ's.

Which matches alert: a known video entry when ``compared_pct`` reaches the list's
``video_min_compared_pct`` (default 80) and ``query_pct`` its ``video_min_query_pct`` (default
0); an image entry (a PDQ hash that is no video frame) as soon as any frame matches it. Every
other entry with matched frames is still listed, marked ``partial``, so that an examiner sees
partial re-use; partial matches never make a file ``known``.

Negative lists (known false positives) work per frame: a frame that matches a negative entry
(a black frame, a logo) is not counted for any other entry. Only a negative *video* entry that
meets its thresholds suppresses the whole video's matches, as a negative hash does for an image.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from hashwatch.index.base import hex_to_rows
from hashwatch.lists.model import ListKind, VideoFrameHash, matchable_frames
from hashwatch.matching.match import Match, VideoFacts, VideoSegment
from hashwatch.signals.types import HashType, normalize_hash
from hashwatch.store.models import ENTRIES, HASHES

if TYPE_CHECKING:
    from hashwatch.matching.matcher import Matcher, MatchResult

__all__ = ["VideoSegment", "frames_from_dicts", "match_video"]

MAX_SEGMENTS = 100  # per match; a longer list says how many were left out
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


def frames_from_dicts(frames: Iterable[Mapping[str, Any]]) -> list[VideoFrameHash]:
    """Frame hashes from ``hashwatch hash`` JSON: ``frame``, ``timestamp``, ``pdq``, ``quality``."""
    return [
        VideoFrameHash(
            int(f.get("frame", n)),
            float(f.get("timestamp", 0.0)),
            normalize_hash(HashType.PDQ, str(f["pdq"])),
            int(f.get("quality", 100)),
        )
        for n, f in enumerate(frames)
    ]


@dataclass
class _EntryHits:
    """What one entry's hashes matched: query frames, reference hashes, distances."""

    template: Match
    queries: set[int] = field(default_factory=set)
    pairs: list[tuple[int, int, float | None]] = field(default_factory=list)  # q, hash id, time
    distance_of: dict[int, int] = field(default_factory=dict)  # best distance per query frame


def match_video(
    matcher: Matcher, frames: Sequence[VideoFrameHash], result: MatchResult
) -> MatchResult:
    """Add the video-level matches of ``frames`` to ``result`` (which may hold exact matches)."""
    query = matchable_frames(frames, matcher.min_quality)
    dropped = len({f.pdq for f in frames}) - len(query)
    if dropped > 0:
        result.notes.append(
            f"{dropped} distinct frame hashes below quality {matcher.min_quality}: not matched"
        )
    if not query:
        if frames:
            result.notes.append("no frame of the video can be matched")
        return result
    times: dict[str, list[float]] = {}
    for f in frames:
        times.setdefault(f.pdq, []).append(f.timestamp)
    hits = _hits(matcher, query)
    if not hits:
        return result
    ref_frames, segments_of = _entry_facts(matcher, list(hits))
    negative_frames: set[int] = set()
    for hit in hits.values():
        if hit.template.kind == ListKind.NEGATIVE:
            negative_frames |= hit.queries
    spacing = _spacing(sorted(f.timestamp for f in frames))
    first_time = [times[f.pdq][0] for f in query]
    found: list[Match] = []
    suppressing: list[Match] = []
    for entry_id, hit in hits.items():
        facts = matcher.list_facts(hit.template.list)
        counted = hit.queries
        if hit.template.kind != ListKind.NEGATIVE:
            counted = hit.queries - negative_frames
            if not counted:
                result.notes.append(
                    f"entry {entry_id} of {hit.template.list}: every matching frame also "
                    "matches a negative list"
                )
                continue
        pairs = [p for p in hit.pairs if p[0] in counted]
        reference = ref_frames.get(entry_id, {})
        ref_total = len(reference)
        # Slots of the coarser of the two samplings (see the module docstring): with equal
        # sampling each slot holds one frame and these are vPDQ's percentages.
        slot = max(spacing, _spacing(sorted(reference.values()))) if ref_total else spacing
        query_slots = {int(t // slot) for t in first_time}
        query_pct = 100.0 * len({int(first_time[q] // slot) for q in counted}) / len(query_slots)
        if ref_total:
            ref_slots = {int(t // slot) for t in reference.values()}
            matched_slots = {int(reference[h] // slot) for _, h, _ in pairs if h in reference}
            compared_pct = 100.0 * len(matched_slots) / len(ref_slots)
            meets = (
                compared_pct >= facts.video_min_compared_pct
                and query_pct >= facts.video_min_query_pct
            )
            rule = f"compared >= {facts.video_min_compared_pct:g}% of the known video's frames" + (
                f" and query >= {facts.video_min_query_pct:g}%" if facts.video_min_query_pct else ""
            )
        else:
            compared_pct, meets, rule = 100.0, True, "a frame matches a known image"
        segments = _segments(pairs, query, times, spacing, segments_of.get(entry_id, []))
        video = VideoFacts(
            query_pct=round(query_pct, 2),
            compared_pct=round(compared_pct, 2),
            query_frames=len(query),
            matched_query_frames=len(counted),
            reference_frames=ref_total,
            matched_reference_frames=len({h for _, h, _ in pairs}) if ref_total else 0,
            rule=rule,
            segments=tuple(segments[:MAX_SEGMENTS]),
            segments_left_out=max(0, len(segments) - MAX_SEGMENTS),
        )
        best = min(hit.distance_of[q] for q in counted)
        match = _replace(hit.template, distance=best, partial=not meets, video=video)
        if match.kind == ListKind.NEGATIVE:
            if meets and ref_total:
                suppressing.append(match)
            else:
                match = _replace(match, partial=True)
        found.append(match)
    found.sort(key=lambda m: (m.partial, -(m.video.compared_pct if m.video else 0), m.entry_id))
    if suppressing:
        result.suppressed = [*result.matches, *(m for m in found if m not in suppressing)]
        result.matches = suppressing
    else:
        result.matches = [*result.matches, *found]
    return result


def _hits(matcher: Matcher, query: Sequence[VideoFrameHash]) -> dict[int, _EntryHits]:
    """Per entry, which query frames matched which of its hashes (within the list threshold)."""
    index = matcher.pdq_index
    if not matcher.list_ids or len(index) == 0:
        return {}
    found = index.index.query(hex_to_rows([f.pdq for f in query]), matcher.max_threshold)
    if len(found) == 0:
        return {}
    by_hash: dict[int, list[tuple[int, int]]] = {}
    for q, hid, dist in zip(found.query, found.ids, found.distances, strict=True):
        by_hash.setdefault(int(hid), []).append((int(q), int(dist)))
    hits: dict[int, _EntryHits] = {}
    ids = list(by_hash)
    with matcher.db.read() as conn:
        for start in range(0, len(ids), 1000):
            rows = conn.execute(
                matcher.facts_query().where(HASHES.c.id.in_(ids[start : start + 1000]))
            )
            for row in rows:
                for q, dist in by_hash[int(row.hash_id)]:
                    match = matcher.to_match(row, "pdq", dist, None)
                    if match is None:
                        continue
                    hit = hits.get(match.entry_id)
                    if hit is None:
                        hit = hits[match.entry_id] = _EntryHits(_replace(match, ref_time=None))
                    hit.queries.add(q)
                    hit.pairs.append((q, int(row.hash_id), row.frame_time))
                    hit.distance_of[q] = min(dist, hit.distance_of.get(q, dist))
    return hits


def _entry_facts(
    matcher: Matcher, entry_ids: list[int]
) -> tuple[dict[int, dict[int, float]], dict[int, list[tuple[float, float, str]]]]:
    """Per video entry: its frames (hash id -> time) and categorised segments (VICS
    ``Segments``). Entries without frames (images, files) are absent."""
    frames: dict[int, dict[int, float]] = {}
    segments: dict[int, list[tuple[float, float, str]]] = {}
    H, E = HASHES, ENTRIES
    with matcher.db.read() as conn:
        for start in range(0, len(entry_ids), 1000):
            chunk = entry_ids[start : start + 1000]
            for entry_id, hash_id, frame_time in conn.execute(
                select(H.c.entry_id, H.c.id, H.c.frame_time).where(
                    and_(H.c.entry_id.in_(chunk), H.c.active, H.c.frame.is_not(None))
                )
            ):
                frames.setdefault(int(entry_id), {})[int(hash_id)] = float(frame_time or 0.0)
            video_ids = [i for i in chunk if i in frames]
            if video_ids:
                for entry_id, extra in conn.execute(
                    select(E.c.id, E.c.extra).where(E.c.id.in_(video_ids))
                ):
                    parsed = _vics_segments((extra or {}).get("Segments"))
                    if parsed:
                        segments[int(entry_id)] = parsed
    return frames, segments


def _vics_segments(value: Any) -> list[tuple[float, float, str]]:
    """VICS ``Segments`` (Start, End, Category) with times in seconds or ``[HH:]MM:SS[.f]``."""
    out = []
    for seg in value if isinstance(value, list) else []:
        if not isinstance(seg, dict):
            continue
        start, end = _seconds(seg.get("Start")), _seconds(seg.get("End"))
        category = seg.get("Category")
        if start is not None and end is not None and category is not None:
            out.append((start, end, str(category)))
    return out


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        clock = _CLOCK.match(value.strip())
        if clock:
            hours, minutes, seconds = clock.groups()
            return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _spacing(times: list[float]) -> float:
    """The usual time between sampled query frames (1 s when it cannot be told)."""
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return statistics.median(gaps) if gaps else 1.0


def _segments(
    pairs: list[tuple[int, int, float | None]],
    query: Sequence[VideoFrameHash],
    times: Mapping[str, list[float]],
    spacing: float,
    categorised: list[tuple[float, float, str]],
) -> list[VideoSegment]:
    """Runs of matching query frames (a gap of up to 2.5 sampling intervals joins them)."""
    refs_of: dict[int, list[float]] = {}
    for q, _, ref_time in pairs:
        if ref_time is not None:
            refs_of.setdefault(q, []).append(ref_time)
    points = sorted(
        (t, q) for q in {p[0] for p in pairs} for t in times.get(query[q].pdq, [query[q].timestamp])
    )
    runs: list[list[tuple[float, int]]] = []
    for point in points:
        if runs and point[0] - runs[-1][-1][0] <= 2.5 * spacing:
            runs[-1].append(point)
        else:
            runs.append([point])
    out = []
    for run in runs:
        refs = [r for _, q in run for r in refs_of.get(q, [])]
        ref_start, ref_end = (min(refs), max(refs)) if refs else (None, None)
        cats: tuple[str, ...] = ()
        if ref_start is not None and ref_end is not None and categorised:
            cats = tuple(
                dict.fromkeys(c for s, e, c in categorised if s <= ref_end and e >= ref_start)
            )
        out.append(
            VideoSegment(
                round(run[0][0], 3),
                round(run[-1][0], 3),
                len({q for _, q in run}),
                None if ref_start is None else round(ref_start, 3),
                None if ref_end is None else round(ref_end, 3),
                cats,
            )
        )
    return out


def _replace(match: Match, **changes: Any) -> Match:
    return dataclasses.replace(match, **changes)
