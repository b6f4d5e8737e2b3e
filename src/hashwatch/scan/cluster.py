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

import hashlib
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hashwatch.config import DEFAULT_PDQ_THRESHOLD, MIN_PDQ_QUALITY
from hashwatch.index import MihPdqIndex, PdqIndex
from hashwatch.index.base import HashArray, hex_to_rows, rows_to_hex
from hashwatch.lists.model import ListKind
from hashwatch.matching.match import Match, VideoFacts
from hashwatch.scan.model import Cluster, ItemRecord

__all__ = [
    "MediaColumns",
    "MediaRow",
    "cluster_columns",
    "cluster_new_media",
    "components",
    "dihedral_pairs",
    "exif_bits",
    "near_pairs",
    "row_of",
]

# Videos join when this share of one video's distinct frames match frames of the other.
VIDEO_SHARED_MIN = 0.5
# A frame found in more videos than this (a stock intro, a logo card) does not join them.
_COMMON_FRAME_VIDEOS = 64
_QUERY_CHUNK = 4096
_EXIF_CAMERA, _EXIF_SERIAL, _EXIF_GPS, _EXIF_TIME = 1, 2, 4, 8
_HEX_STRIP = str.maketrans("", "", '[]", ')
_LONG = {4: np.int32, 8: np.int64}  # array("l") item sizes


@dataclass(frozen=True)
class MediaRow:
    """What clustering reads of one new item (a scan's state gives it by SQL, without decoding
    the record): its key in the state, path, hashes as hex, quality, digests, size, EXIF leads
    as bits and, for a video only, its whole record (frames, partial matches)."""

    key: int
    path: str
    pdq: str | None
    pdq_quality: int | None
    dihedral: str | None  # the dihedral hashes' hex, concatenated (or as a JSON array)
    md5: str | None
    sha256: str | None
    pixels: int
    exif: int  # _EXIF_* bits
    video: ItemRecord | None = None


def exif_bits(exif: dict[str, Any] | None) -> int:
    e = exif or {}
    return (
        (_EXIF_CAMERA if "make" in e or "model" in e else 0)
        | (_EXIF_SERIAL if "serial" in e else 0)
        | (_EXIF_GPS if "gps" in e else 0)
        | (_EXIF_TIME if "capture_time" in e else 0)
    )


def row_of(key: int, item: ItemRecord) -> MediaRow:
    return MediaRow(
        key=key,
        path=item.path,
        pdq=item.pdq,
        pdq_quality=item.pdq_quality,
        dihedral="".join(item.pdq_dihedral) if item.pdq_dihedral else None,
        md5=item.md5,
        sha256=item.sha256,
        pixels=(item.width or 0) * (item.height or 0),
        exif=exif_bits(item.exif),
        video=item if item.frames else None,
    )


def _digest16(md5: str | None) -> bytes:
    """An MD5 as its 16 bytes (a value that is not 32 hex digits: a digest of its text)."""
    if not md5:
        return bytes(16)
    if len(md5) == 32:
        try:
            return bytes.fromhex(md5)
        except ValueError:
            pass
    return hashlib.md5(md5.encode(), usedforsecurity=False).digest()


class MediaColumns:
    """The new media as columns (numpy arrays and one list of paths), in the order given:
    what clustering holds per item is its hashes' bytes and a few numbers, not its record."""

    def __init__(self, rows: Iterable[MediaRow]) -> None:
        keys, owners = array("q"), array("l")
        quality, pdq_quality, pixels, exif = array("d"), array("l"), array("q"), array("B")
        has_pdq, has_md5 = array("B"), array("B")
        pdq, dihedral, md5, sha = bytearray(), bytearray(), bytearray(), bytearray()
        self.paths: list[str] = []
        self.videos: dict[int, ItemRecord] = {}
        for i, row in enumerate(rows):
            keys.append(row.key)
            self.paths.append(row.path)
            q = row.pdq_quality if row.pdq_quality is not None else _frames_quality(row.video)
            quality.append(math.nan if q is None else float(q))
            pdq_quality.append(-1 if row.pdq_quality is None else int(row.pdq_quality))
            pixels.append(row.pixels)
            exif.append(row.exif)
            hashed = bool(row.pdq) and len(row.pdq or "") == 64
            has_pdq.append(hashed)
            pdq += bytes.fromhex(row.pdq) if hashed and row.pdq else bytes(32)
            if hashed:
                variants = bytes.fromhex((row.dihedral or row.pdq or "").translate(_HEX_STRIP))
                dihedral += variants
                owners.extend([i] * (len(variants) // 32))
            has_md5.append(bool(row.md5))
            md5 += _digest16(row.md5)
            sha += bytes.fromhex(row.sha256) if row.sha256 and len(row.sha256) == 64 else bytes(32)
            if row.video is not None:
                self.videos[i] = row.video
        self.keys = np.frombuffer(keys, dtype=np.int64)
        self.quality = np.frombuffer(quality, dtype=np.float64)
        self.pdq_quality = np.frombuffer(pdq_quality, dtype=_LONG[pdq_quality.itemsize])
        self.pixels = np.frombuffer(pixels, dtype=np.int64)
        self.exif = np.frombuffer(exif, dtype=np.uint8)
        self.has_pdq = np.frombuffer(has_pdq, dtype=np.uint8).astype(bool)
        self.has_md5 = np.frombuffer(has_md5, dtype=np.uint8).astype(bool)
        self.pdq = np.frombuffer(pdq, dtype=np.uint8).reshape(-1, 32)
        self.dihedral = np.frombuffer(dihedral, dtype=np.uint8).reshape(-1, 32)
        self.owners = np.frombuffer(owners, dtype=_LONG[owners.itemsize])
        self.md5 = np.frombuffer(md5, dtype=np.uint8).reshape(-1, 16)
        self.sha256 = np.frombuffer(sha, dtype=np.uint8).reshape(-1, 32)

    def __len__(self) -> int:
        return len(self.paths)


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
    columns = MediaColumns(row_of(i, item) for i, item in enumerate(items))
    numbers, clusters = cluster_columns(
        columns, threshold=threshold, min_quality=min_quality, nearest_known=nearest_known
    )
    for item, number in zip(items, numbers.tolist(), strict=True):
        item.cluster = number
    return clusters


def cluster_columns(
    media: MediaColumns,
    *,
    threshold: int = DEFAULT_PDQ_THRESHOLD,
    min_quality: int = MIN_PDQ_QUALITY,
    nearest_known: Callable[[list[str]], list[int | None]] | None = None,
) -> tuple[npt.NDArray[np.int64], list[Cluster]]:
    """Cluster the new media given as columns: each item's cluster number (by position) and
    the clusters in review order."""
    n = len(media)
    if n == 0:
        return np.zeros(0, dtype=np.int64), []
    left: list[npt.NDArray[np.int64]] = []
    right: list[npt.NDArray[np.int64]] = []
    _same_bytes(media, left, right)
    ok = media.has_pdq & ((media.pdq_quality < 0) | (media.pdq_quality >= min_quality))
    hashed = np.flatnonzero(ok).astype(np.int64)
    asked = ok.copy()
    asked[_hash_copies(media, ok)] = False  # joined to their original by their bytes
    pairs = dihedral_pairs(media.pdq, media.dihedral, media.owners, asked, threshold)
    left.append(pairs[0])
    right.append(pairs[1])
    if len(media.videos) > 1:
        positions = list(media.videos)
        for a, b in _shared_frame_pairs(list(media.videos.values()), threshold, min_quality):
            left.append(np.array([positions[a]], dtype=np.int64))
            right.append(np.array([positions[b]], dtype=np.int64))
    labels = components(n, left, right)
    near = _near_known(media, hashed, nearest_known)
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1]])
    ends = np.r_[starts[1:], n]
    scored = [
        _score(media, order[s:e].tolist(), near)
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    paths = media.paths
    scored.sort(key=lambda s: (-s.priority, -len(s.members), paths[s.members[0]]))
    numbers = np.zeros(n, dtype=np.int64)
    clusters: list[Cluster] = []
    for number, s in enumerate(scored, start=1):
        numbers[s.members] = number
        members = [paths[i] for i in s.members]
        clusters.append(
            Cluster(
                number=number,
                members=members,
                representative=members[0],
                priority=round(s.priority, 3),
                reasons=s.reasons,
                nearest_known_distance=s.near_known,
            )
        )
    return numbers, clusters


def _same_bytes(
    media: MediaColumns,
    left: list[npt.NDArray[np.int64]],
    right: list[npt.NDArray[np.int64]],
) -> None:
    """Pairs of items with the same MD5 (each joined to the next in digest order)."""
    idx = np.flatnonzero(media.has_md5).astype(np.int64)
    if len(idx) < 2:
        return
    digests = np.ascontiguousarray(media.md5[idx]).view("V16").ravel()
    order = np.argsort(digests, kind="stable")
    same = np.flatnonzero(digests[order][1:] == digests[order][:-1])
    left.append(idx[order[same]])
    right.append(idx[order[same + 1]])


def _hash_copies(media: MediaColumns, ok: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Items that are exact copies (same MD5) of another item with the very same PDQ hash and
    variants, both of matchable quality: their original (the previous copy in digest order)
    stands for them in the PDQ join. Clusters stay exact: a copy is joined to its original by
    its bytes, and every hash pair it has, its original has too."""
    idx = np.flatnonzero(media.has_md5 & ok).astype(np.int64)
    if len(idx) < 2:
        return np.zeros(0, dtype=np.int64)
    digests = np.ascontiguousarray(media.md5[idx]).view("V16").ravel()
    order = np.argsort(digests, kind="stable")
    same = np.flatnonzero(digests[order][1:] == digests[order][:-1])
    first, copy = idx[order[same]], idx[order[same + 1]]
    keep = np.all(media.pdq[first] == media.pdq[copy], axis=1)
    starts = np.searchsorted(media.owners, np.arange(len(media) + 1))
    counts = np.diff(starts)
    keep &= counts[first] == counts[copy]
    for count in np.unique(counts[first[keep]]).tolist():
        at = np.flatnonzero(keep & (counts[first] == count))
        step = np.arange(count)
        a = media.dihedral[starts[first[at]][:, None] + step]
        b = media.dihedral[starts[copy[at]][:, None] + step]
        keep[at] = np.all(a == b, axis=(1, 2))
    return copy[keep]


def dihedral_pairs(
    pdq: HashArray,
    dihedral: HashArray,
    owners: npt.NDArray[np.integer[Any]],
    ok: npt.NDArray[np.bool_],
    threshold: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pairs of items (positions ``a``, ``b``) where a dihedral variant of ``a`` (row
    ``dihedral[k]``, ``owners[k] == a``) is within ``threshold`` bits of ``b``'s hash
    (``pdq[b]``), among the items where ``ok`` is set: every pair the exact multi-index finds
    (:mod:`hashwatch.index.join`), a variant's pairs once, item pairs possibly more than once.

    The variants are asked in place (no copy), in blocks of ``_JOIN_BLOCK`` (one block up to
    ~1 M items): the join's working arrays grow ~12 bytes a query in a block."""
    from hashwatch.index.join import radius_join  # numba: not at import

    hashed = np.flatnonzero(ok).astype(np.int64)
    if len(hashed) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    asked = np.flatnonzero(ok[owners])
    rows = pdq[hashed]
    left: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    right: list[npt.NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)]
    for start in range(0, len(asked), _JOIN_BLOCK):
        block = asked[start : start + _JOIN_BLOCK]
        found_q, found_r = radius_join(rows, dihedral, threshold, select=block)
        left.append(owners[found_q].astype(np.int64))
        right.append(hashed[found_r])
    return np.concatenate(left), np.concatenate(right)


def components(
    n: int, left: list[npt.NDArray[np.int64]], right: list[npt.NDArray[np.int64]]
) -> npt.NDArray[np.int64]:
    """Connected components of the pairs, as each item's smallest member (numpy: hooking
    roots to the smaller label, then pointer jumping, until every pair agrees)."""
    label = np.arange(n, dtype=np.int64)
    if not left:
        return label
    a = np.concatenate(left)
    b = np.concatenate(right)
    while True:
        la, lb = label[a], label[b]
        differ = la != lb
        if not differ.any():
            return label
        la, lb = la[differ], lb[differ]
        low = np.minimum(la, lb)
        np.minimum.at(label, la, low)
        np.minimum.at(label, lb, low)
        while True:  # pointer jumping: every item points at its root
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        a, b = a[differ], b[differ]


def near_pairs(rows: HashArray, queries: HashArray, threshold: int) -> Iterator[tuple[int, int]]:
    """Every (query, row) pair within ``threshold`` bits, each once: the exact multi-index
    as a batch join (:mod:`hashwatch.index.join`: ~1 M hashes with their 8 M dihedral
    variants in well under a minute on two cores, where probing query by query takes an
    hour). Rows and queries are numbered by position."""
    from hashwatch.index.join import radius_join  # numba: not at import

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


def _shared_frame_pairs(
    items: Sequence[ItemRecord], threshold: int, min_quality: int
) -> list[tuple[int, int]]:
    """Videos (by position) to join: half the frames of one match frames of the other
    (module docstring)."""
    owners_of: dict[str, set[int]] = {}  # distinct hash -> videos holding it
    counts: dict[int, int] = {}
    for i, item in enumerate(items):
        if item.frames:
            frames = _frame_hashes(item, min_quality)
            counts[i] = len(frames)
            for h in frames:
                owners_of.setdefault(h, set()).add(i)
    if len(counts) < 2:
        return []
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
    return [
        (a, b) for (a, b), matched in shared.items() if len(matched) >= VIDEO_SHARED_MIN * counts[a]
    ]


_NEAR_CHUNK = 65_536
_JOIN_BLOCK = 1 << 23  # dihedral queries per join: 1 M items' 8 M in one


def _near_known(
    media: MediaColumns,
    hashed: npt.NDArray[np.int64],
    nearest_known: Callable[[list[str]], list[int | None]] | None,
) -> npt.NDArray[np.int64]:
    """Per item, the distance to the closest known-list entry (-1: none), asked in chunks."""
    near = np.full(len(media), -1, dtype=np.int64)
    if nearest_known is None or not len(hashed):
        return near
    for start in range(0, len(hashed), _NEAR_CHUNK):
        chunk = hashed[start : start + _NEAR_CHUNK]
        distances = nearest_known(rows_to_hex(media.pdq[chunk]))
        near[chunk] = [-1 if d is None else d for d in distances]
    return near


def _frames_quality(item: ItemRecord | None) -> float | None:
    """The mean quality of a video's frames."""
    qualities = [int(f.get("quality", 0)) for f in item.frames or ()] if item else []
    return sum(qualities) / len(qualities) if qualities else None


def _partial_known(
    videos: dict[int, ItemRecord], members: list[int]
) -> tuple[Match, VideoFacts, float] | None:
    """The largest partial match of a member video with a known video, if any: the match,
    its video facts and the larger of its two shares (percent)."""
    best: tuple[Match, VideoFacts, float] | None = None
    for i in members:
        video = videos.get(i)
        for m in video.matches if video is not None else ():
            if m.kind != ListKind.KNOWN or not m.partial or m.video is None:
                continue
            share = max(m.video.query_pct, m.video.compared_pct)
            if best is None or share > best[2]:
                best = (m, m.video, share)
    return best


def _copies_text(digests: Sequence[object]) -> str:
    """What a cluster's members are to each other, in words: identical files (one SHA-256)
    are exact copies; pictures that only look alike (PDQ-close) are near-duplicates."""
    n = len(digests)
    shared = sum(count for count in Counter(digests).values() if count > 1)
    if shared == n and len(set(digests)) == 1:
        return f"{n} exact copies (identical files)"
    if not shared:
        return f"{n} near-duplicates (similar pictures, not identical files)"
    return f"{n} near-duplicates, {shared} of them exact copies of another"


_SINGLE_ITEM = "single new item, no metadata leads"
_SINGLE_VIDEO = "single new video, no metadata leads"
_EXIF_REASONS = (
    (_EXIF_CAMERA, 2.0, "camera make/model in EXIF (possible camera original)"),
    (_EXIF_SERIAL, 1.0, "camera serial number in EXIF"),
    (_EXIF_GPS, 1.0, "GPS position in EXIF"),
    (_EXIF_TIME, 0.5, "capture time in EXIF"),
)


def _score(media: MediaColumns, members: list[int], near: npt.NDArray[np.int64]) -> _Scored:
    quality, pixels, paths, videos = media.quality, media.pixels, media.paths, media.videos
    if len(members) > 1:
        # Representative: the best picture of the group (quality, then resolution, then path).
        q = np.nan_to_num(quality[members], nan=0.0).tolist()
        px = pixels[members].tolist()
        members = [
            m
            for _, _, _, m in sorted(
                zip(
                    [-v for v in q],
                    [-v for v in px],
                    [paths[i] for i in members],
                    members,
                    strict=True,
                )
            )
        ]
        distances = [d for d in near[members].tolist() if d >= 0]
        bits = int(np.bitwise_or.reduce(media.exif[members]))
        qualities = quality[members]
        qualities = qualities[~np.isnan(qualities)]
        mean = float(qualities.sum()) / len(qualities) if len(qualities) else None
        largest = int(pixels[members].max())
    else:
        # One item (most clusters): the same values read as scalars, not through arrays of
        # one (a third of the time; a mean of one value is that value).
        (one,) = members
        distances = [d] if (d := int(near[one])) >= 0 else []
        bits = int(media.exif[one])
        value = float(quality[one])
        mean = None if math.isnan(value) else value
        largest = int(pixels[one])
    reasons: list[str] = []
    priority = 0.0
    partial = _partial_known(videos, members) if videos else None
    if partial is not None:
        match, video, share = partial
        priority += 6 + 2 * min(1.0, share / 100)
        reasons.append(
            f"shares {video.query_pct:.0f} % of its frames with a known video (list "
            f"{match.list}, entry {match.entry_id}; {video.compared_pct:.0f} % of "
            "that video's frames found): a partial match, below the list's video thresholds"
        )
    near_known = min(distances) if distances else None
    if near_known is not None:
        priority += 4 + 2 * max(0.0, 1 - near_known / 64)
        reasons.append(f"near miss to known material (PDQ distance {near_known})")
    for bit, bonus, reason in _EXIF_REASONS:
        if bits & bit:
            priority += bonus
            reasons.append(reason)
    is_video = [i in videos for i in members]
    if len(members) > 1:
        priority += math.log2(len(members))
        reasons.append(
            f"{len(members)} videos sharing most of their frames"
            if all(is_video)
            else _copies_text(
                [media.sha256[i].tobytes() if media.sha256[i].any() else paths[i] for i in members]
            )
        )
    if mean is not None:
        priority += mean / 100
    if largest >= 2_000_000:
        priority += 0.5
        what = "video frames" if any(is_video) else "picture"
        reasons.append(f"large {what} ({largest / 1e6:.1f} megapixels)")
    if not reasons:
        reasons.append(_SINGLE_VIDEO if is_video[0] else _SINGLE_ITEM)
    return _Scored(members, priority, reasons, near_known)
