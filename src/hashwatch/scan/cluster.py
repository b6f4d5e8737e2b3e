"""Group new media into clusters of near-duplicates and order them for review.

Two new items belong to one cluster when their PDQ hashes are within the threshold (31 by
default) — comparing every dihedral variant, so a flipped or rotated copy joins its original —
or when their bytes are identical (same MD5). Clustering is transitive (union-find). Items whose
PDQ quality is below the matching minimum (flat or tiny pictures, whose hashes collide) only
join by identical bytes.

New videos are clustered by their frames, with vPDQ's frame rule (two frames match within the
threshold; frames below the minimum quality and repeated hashes are left out): two videos join
when at least half of the distinct frames of one of them match frames of the other — a
re-encoded copy, or an excerpt and the video it was cut from. Sharing a few frames (a common
intro or logo) does not join them. Videos and images are clustered apart: a still taken from a
video is not grouped with it.

Priority (higher is reviewed first), the sum of:

* **partial match with a known video**: +6, and up to +2 more with the share matched, when a
  member video shares frames with a known video without meeting the list's video thresholds
  (the reason says how much: "shares 40 % of its frames with a known video");
* **near miss to known material**: +4, and up to +2 more the closer it is, when any member's
  hash is within 2x the threshold of a known-list entry without matching it;
* **camera-original signs**: +2 when a member carries camera make or model in EXIF, +1 for a
  body serial number, +1 for a GPS position, +0.5 for a capture time;
* **size**: +log2(number of members) — many copies suggest distribution;
* **quality**: + mean PDQ quality / 100 (a hash of a detailed picture is more informative;
  for a video, the mean quality of its frames);
* **resolution**: +0.5 when the largest member is at least 2 megapixels (camera originals are
  large; thumbnails and re-shared copies are small).

Ties are broken by size, then by the representative's path, so the order is reproducible.
Every cluster records the reasons behind its score in words, shown in the report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hashwatch.config import DEFAULT_PDQ_THRESHOLD, MIN_PDQ_QUALITY
from hashwatch.index import MihPdqIndex, PdqIndex
from hashwatch.index.base import HashArray, hex_to_rows
from hashwatch.index.join import radius_join
from hashwatch.lists.model import ListKind
from hashwatch.matching.match import Match, VideoFacts
from hashwatch.scan.model import Cluster, ItemRecord

__all__ = ["cluster_new_media", "near_pairs"]

# Videos join when this share of one video's distinct frames match frames of the other.
VIDEO_SHARED_MIN = 0.5
# A frame found in more videos than this (a stock intro, a logo card) does not join them.
_COMMON_FRAME_VIDEOS = 64
_QUERY_CHUNK = 4096


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass(frozen=True)
class _Scored:
    members: list[int]
    priority: float
    reasons: list[str]
    near_known: int | None


def cluster_new_media(
    items: Sequence[ItemRecord],
    *,
    threshold: int = DEFAULT_PDQ_THRESHOLD,
    min_quality: int = MIN_PDQ_QUALITY,
    nearest_known: Callable[[list[str]], list[int | None]] | None = None,
) -> list[Cluster]:
    """Cluster ``items`` (the new media of a scan), number them in review order, and set
    each item's ``cluster``. ``nearest_known(pdq_hashes)`` gives, per hash, the distance to
    the closest known-list entry within 2x the threshold (None if none)."""
    n = len(items)
    if n == 0:
        return []
    uf = _UnionFind(n)
    by_md5: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.md5:
            if item.md5 in by_md5:
                uf.union(by_md5[item.md5], i)
            else:
                by_md5[item.md5] = i
    hashed = [
        i
        for i, it in enumerate(items)
        if it.pdq and (it.pdq_quality is None or it.pdq_quality >= min_quality)
    ]
    if len(hashed) > 1:
        _union_near_duplicates(items, hashed, threshold, uf)
    _union_shared_frames(items, threshold, min_quality, uf)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    near = _near_known(items, hashed, nearest_known)
    scored = [_score(items, members, near) for members in groups.values()]
    scored.sort(key=lambda s: (-s.priority, -len(s.members), items[s.members[0]].path))
    clusters: list[Cluster] = []
    for number, s in enumerate(scored, start=1):
        paths = [items[i].path for i in s.members]
        for i in s.members:
            items[i].cluster = number
        clusters.append(
            Cluster(
                number=number,
                members=paths,
                representative=paths[0],
                priority=round(s.priority, 3),
                reasons=s.reasons,
                nearest_known_distance=s.near_known,
            )
        )
    return clusters


def _union_near_duplicates(
    items: Sequence[ItemRecord], hashed: list[int], threshold: int, uf: _UnionFind
) -> None:
    rows = hex_to_rows([items[i].pdq or "" for i in hashed])
    owners: list[int] = []
    queries: list[str] = []
    for i in hashed:
        variants = items[i].pdq_dihedral or [items[i].pdq or ""]
        queries.extend(variants)
        owners.extend([i] * len(variants))
    for a, b in near_pairs(rows, hex_to_rows(queries), threshold):
        uf.union(owners[a], hashed[b])


def near_pairs(rows: HashArray, queries: HashArray, threshold: int) -> Iterator[tuple[int, int]]:
    """Every (query, row) pair within ``threshold`` bits, each once: the exact multi-index
    as a batch join (:mod:`hashwatch.index.join`: ~1 M hashes with their 8 M dihedral
    variants in about a minute, where probing query by query takes an hour). Rows and
    queries are numbered by position."""
    found_q, found_r = radius_join(rows, queries, threshold)
    yield from zip(found_q.tolist(), found_r.tolist(), strict=True)


def _frame_hashes(item: ItemRecord, min_quality: int) -> list[str]:
    """A video's distinct frame hashes of matchable quality (vPDQ's rule)."""
    good = (
        str(f.get("pdq", "")).lower()
        for f in item.frames or ()
        if int(f.get("quality", 0)) >= min_quality
    )
    return [h for h in dict.fromkeys(good) if len(h) == 64]


def _union_shared_frames(
    items: Sequence[ItemRecord], threshold: int, min_quality: int, uf: _UnionFind
) -> None:
    """Join videos when half the frames of one match frames of the other (module docstring)."""
    owners_of: dict[str, set[int]] = {}  # distinct hash -> videos holding it
    counts: dict[int, int] = {}
    for i, item in enumerate(items):
        if item.frames:
            frames = _frame_hashes(item, min_quality)
            counts[i] = len(frames)
            for h in frames:
                owners_of.setdefault(h, set()).add(i)
    if len(counts) < 2:
        return
    hashes = list(owners_of)
    owners = [owners_of[h] for h in hashes]
    rows = hex_to_rows(hashes)
    index: PdqIndex = MihPdqIndex(linear_below=0)
    index.add(np.arange(len(hashes), dtype=np.int64), rows)
    shared: dict[tuple[int, int], set[int]] = {}  # (a, b) -> a's frames that match b's
    for start in range(0, len(hashes), _QUERY_CHUNK):
        found = index.query(rows[start : start + _QUERY_CHUNK], threshold)
        near: dict[int, set[int]] = {}
        for q, other in zip(found.query.tolist(), found.ids.tolist(), strict=True):
            near.setdefault(start + int(q), set()).update(owners[int(other)])
        for u, videos in near.items():
            if len(videos) > _COMMON_FRAME_VIDEOS:
                continue
            for a in owners[u]:
                for b in videos - {a}:
                    shared.setdefault((a, b), set()).add(u)
    for (a, b), matched in shared.items():
        if len(matched) >= VIDEO_SHARED_MIN * counts[a]:
            uf.union(a, b)


def _near_known(
    items: Sequence[ItemRecord],
    hashed: list[int],
    nearest_known: Callable[[list[str]], list[int | None]] | None,
) -> dict[int, int]:
    if nearest_known is None or not hashed:
        return {}
    distances = nearest_known([items[i].pdq or "" for i in hashed])
    return {i: d for i, d in zip(hashed, distances, strict=True) if d is not None}


def _quality(item: ItemRecord) -> float | None:
    """PDQ quality of an image; the mean quality of a video's frames."""
    if item.pdq_quality is not None:
        return float(item.pdq_quality)
    qualities = [int(f.get("quality", 0)) for f in item.frames or ()]
    return sum(qualities) / len(qualities) if qualities else None


def _partial_known(
    items: Sequence[ItemRecord], members: list[int]
) -> tuple[Match, VideoFacts, float] | None:
    """The largest partial match of a member video with a known video, if any: the match,
    its video facts and the larger of its two shares (percent)."""
    best: tuple[Match, VideoFacts, float] | None = None
    for i in members:
        for m in items[i].matches:
            if m.kind != ListKind.KNOWN or not m.partial or m.video is None:
                continue
            share = max(m.video.query_pct, m.video.compared_pct)
            if best is None or share > best[2]:
                best = (m, m.video, share)
    return best


def _copies_text(digests: Sequence[str]) -> str:
    """What a cluster's members are to each other, in words: identical files (one SHA-256)
    are exact copies; pictures that only look alike (PDQ-close) are near-duplicates."""
    n = len(digests)
    shared = sum(count for count in Counter(digests).values() if count > 1)
    if shared == n and len(set(digests)) == 1:
        return f"{n} exact copies (identical files)"
    if not shared:
        return f"{n} near-duplicates (similar pictures, not identical files)"
    return f"{n} near-duplicates, {shared} of them exact copies of another"


def _score(items: Sequence[ItemRecord], members: list[int], near: dict[int, int]) -> _Scored:
    # Representative: the best picture of the group (quality, then resolution, then path).
    members = sorted(
        members,
        key=lambda i: (
            -(_quality(items[i]) or 0),
            -((items[i].width or 0) * (items[i].height or 0)),
            items[i].path,
        ),
    )
    reasons: list[str] = []
    priority = 0.0
    partial = _partial_known(items, members)
    if partial is not None:
        match, video, share = partial
        priority += 6 + 2 * min(1.0, share / 100)
        reasons.append(
            f"shares {video.query_pct:.0f} % of its frames with a known video (list "
            f"{match.list}, entry {match.entry_id}; {video.compared_pct:.0f} % of "
            "that video's frames found): a partial match, below the list's video thresholds"
        )
    near_known = min((near[i] for i in members if i in near), default=None)
    if near_known is not None:
        bonus = 4 + 2 * max(0.0, 1 - near_known / 64)
        priority += bonus
        reasons.append(f"near miss to known material (PDQ distance {near_known})")
    exifs = [items[i].exif or {} for i in members]
    if any("make" in e or "model" in e for e in exifs):
        priority += 2
        reasons.append("camera make/model in EXIF (possible camera original)")
    if any("serial" in e for e in exifs):
        priority += 1
        reasons.append("camera serial number in EXIF")
    if any("gps" in e for e in exifs):
        priority += 1
        reasons.append("GPS position in EXIF")
    if any("capture_time" in e for e in exifs):
        priority += 0.5
        reasons.append("capture time in EXIF")
    if len(members) > 1:
        priority += math.log2(len(members))
        videos = all(items[i].frames for i in members)
        reasons.append(
            f"{len(members)} videos sharing most of their frames"
            if videos
            else _copies_text([items[i].sha256 or items[i].path for i in members])
        )
    qualities = [q for i in members if (q := _quality(items[i])) is not None]
    if qualities:
        priority += sum(qualities) / len(qualities) / 100
    largest = max((items[i].width or 0) * (items[i].height or 0) for i in members)
    if largest >= 2_000_000:
        priority += 0.5
        what = "video frames" if any(items[i].frames for i in members) else "picture"
        reasons.append(f"large {what} ({largest / 1e6:.1f} megapixels)")
    if not reasons:
        what = "video" if items[members[0]].frames else "item"
        reasons.append(f"single new {what}, no metadata leads")
    return _Scored(members, priority, reasons, near_known)
