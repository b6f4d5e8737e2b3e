"""A cluster of one new item (most clusters of a scan) is scored from scalars, not through
numpy arrays of one (brief 15G): an examiner gets the very same priority, reasons and review
order as the array path gave, for pictures with and without EXIF leads, near misses to known
material, large pictures and videos without a PDQ quality of their own."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from hashwatch.scan import cluster
from hashwatch.scan.cluster import MediaColumns, MediaRow, cluster_columns
from hashwatch.scan.model import ItemRecord, ItemStatus


def _score_through_arrays(
    media: MediaColumns, members: list[int], near: npt.NDArray[np.int64]
) -> tuple[float, list[str], int | None]:
    """The score of a cluster of one as the array path computed it before (brief 15G)."""
    quality, pixels, videos = media.quality, media.pixels, media.videos
    reasons: list[str] = []
    priority = 0.0
    distances = [d for d in near[members].tolist() if d >= 0]
    near_known = min(distances) if distances else None
    if near_known is not None:
        priority += 4 + 2 * max(0.0, 1 - near_known / 64)
        reasons.append(f"near miss to known material (PDQ distance {near_known})")
    bits = int(np.bitwise_or.reduce(media.exif[members]))
    for bit, bonus, reason in cluster._EXIF_REASONS:
        if bits & bit:
            priority += bonus
            reasons.append(reason)
    is_video = [i in videos for i in members]
    qualities = quality[members]
    qualities = qualities[~np.isnan(qualities)]
    if len(qualities):
        priority += float(qualities.sum()) / len(qualities) / 100
    largest = int(pixels[members].max())
    if largest >= 2_000_000:
        priority += 0.5
        what = "video frames" if any(is_video) else "picture"
        reasons.append(f"large {what} ({largest / 1e6:.1f} megapixels)")
    if not reasons:
        reasons.append(cluster._SINGLE_VIDEO if is_video[0] else cluster._SINGLE_ITEM)
    return priority, reasons, near_known


def _rows(n: int) -> list[MediaRow]:
    rng = np.random.default_rng(15)
    rows = []
    for i in range(n):
        video = None
        quality: int | None = int(rng.integers(0, 101))
        if i % 9 == 4:  # a video: no PDQ of its own, its frames' quality (or none)
            frames: list[dict[str, Any]] = [
                {"quality": int(q)} for q in rng.integers(0, 101, i % 3)
            ]
            video = ItemRecord(path=f"/e/v{i}.mp4", root="/e", status=ItemStatus.NEW, frames=frames)
            quality = None
        pdq = rng.bytes(32).hex() if quality is not None else None
        rows.append(
            MediaRow(
                key=i,
                path=f"/e/d{i % 5}/p{i:04d}.jpg",
                pdq=pdq,
                pdq_quality=quality,
                dihedral=pdq,
                md5=rng.bytes(16).hex(),
                sha256=rng.bytes(32).hex(),
                pixels=int(rng.choice([76_800, 1_920_000, 2_000_000, 12_000_000])),
                exif=int(rng.integers(0, 16)),
                video=video,
            )
        )
    return rows


def test_a_cluster_of_one_scores_as_through_arrays() -> None:
    media = MediaColumns(_rows(400))
    rng = np.random.default_rng(3)
    near = np.where(rng.random(len(media)) < 0.3, rng.integers(0, 48, len(media)), -1)
    for i in range(len(media)):
        scored = cluster._score(media, [i], near)
        priority, reasons, near_known = _score_through_arrays(media, [i], near)
        assert scored.priority == priority and not math.isnan(priority)
        assert scored.reasons == reasons and scored.near_known == near_known
        assert scored.members == [i]


def test_clusters_of_a_scan_keep_their_order_and_reasons() -> None:
    media = MediaColumns(_rows(300))
    numbers, clusters = cluster_columns(
        media, threshold=31, nearest_known=lambda h: [None] * len(h)
    )
    assert len(clusters) == 300 and sorted(numbers.tolist()) == list(range(1, 301))
    priorities = [c.priority for c in clusters]
    assert priorities == sorted(priorities, reverse=True)
    assert {r for c in clusters for r in c.reasons} >= {
        cluster._SINGLE_ITEM,
        "camera serial number in EXIF",
        "large picture (12.0 megapixels)",
    }
