"""Matching by local features: candidate references by descriptor votes, then geometry decides.

A copy that PDQ misses (cropped, turned a few degrees, framed, mirrored) still shares many
ORB keypoints with its original (:mod:`hashwatch.signals.local_features`). Many keypoints of
*different* pictures are alike too (corners, letters, a shared logo), so a descriptor match is
never a match of pictures. What decides is geometry:

1. **Candidates.** Every reference descriptor sits in an exact multi-index Hamming index
   (:class:`hashwatch.index.mih.MihPdqIndex`: ORB descriptors are 256-bit, like PDQ). Each
   query descriptor (of the picture and of its mirror image) votes for the references holding
   a descriptor within ``VOTE_RADIUS`` bits; the references with the most votes, at least
   ``MIN_VOTES``, are verified.
2. **Verification.** Descriptors are paired by nearest neighbour with Lowe's ratio test, then
   RANSAC fits a similarity transform (rotation, uniform scale, shift: what cropping, turning,
   resizing and framing do) with ``cv2.estimateAffinePartial2D``. It is a match only when
   ``MIN_INLIERS`` pairs agree, the transform is sane (scale within ``SCALE_RANGE``, angle
   within ``MAX_ANGLE``) and the agreeing keypoints spread over at least ``MIN_SPREAD`` of the
   reference picture (convex hull area) *and* of the query: a shared logo or watermark gives
   many agreeing pairs, all in one small corner, so it never matches.

The answer says what was found (:class:`LocalMatch`): which part of the reference the query
shows (crop box), the angle, the scale, the inliers, whether the query is mirrored.

:class:`LinearLocalIndex` verifies every reference: the reference implementation, and what the
contract test compares :class:`VotingLocalIndex` with.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hashwatch.matching.match import LocalFacts
from hashwatch.signals.local_features import FeatureSet, QueryFeatures

__all__ = [
    "MAX_ANGLE",
    "MIN_INLIERS",
    "MIN_SPREAD",
    "LinearLocalIndex",
    "LocalFeatureIndex",
    "LocalMatch",
    "VotingLocalIndex",
    "verify",
]

MIN_INLIERS = 15
MIN_SPREAD = 0.10
MAX_ANGLE = 30.0
SCALE_RANGE = (0.4, 2.5)
RATIO = 0.8
MAX_PAIR_DISTANCE = 64
REPROJECTION_PX = 5.0
VOTE_RADIUS = 20
MIN_VOTES = 6
MAX_CANDIDATES = 8
_ID_SHIFT = 12  # a descriptor's id in the index: (reference number << 12) | keypoint number

F32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class LocalMatch:
    """A verified local-feature match of a query with reference ``ref``.

    ``crop``: the part of the reference the query shows, as fractions of the reference's width
    and height (x0, y0, x1, y1), clipped to the picture; ``angle``: degrees the query is turned
    relative to the reference (positive: counter-clockwise); ``scale``: the query's size
    relative to the reference's, both scaled to the same longer side; ``inliers``: keypoint
    pairs the transform explains; ``spread``: the share of the reference they cover (convex
    hull); ``mirrored``: the query is a mirror image of the reference."""

    ref: int
    inliers: int
    spread: float
    angle: float
    scale: float
    crop: tuple[float, float, float, float]
    mirrored: bool

    def facts(self) -> LocalFacts:
        """What a :class:`~hashwatch.matching.match.Match` says of it."""
        return LocalFacts(
            self.inliers, self.spread, self.angle, self.scale, self.crop, self.mirrored
        )


def _hull_share(points: F32Array, width: int, height: int) -> float:
    import cv2

    if len(points) < 3:
        return 0.0
    hull = cv2.convexHull(points.reshape(-1, 1, 2).astype(np.float32))
    return float(cv2.contourArea(hull)) / float(max(1, width * height))


def verify(query: FeatureSet, ref: FeatureSet, *, mirrored: bool = False) -> LocalMatch | None:
    """Whether ``query`` shows ``ref`` (see the module's rules); ``ref`` field left 0."""
    import cv2

    if len(query) < MIN_INLIERS or len(ref) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query.descriptors, ref.descriptors, k=2)
    good = [
        p[0]
        for p in pairs
        if len(p) == 2
        and p[0].distance <= MAX_PAIR_DISTANCE
        and p[0].distance < RATIO * p[1].distance
    ]
    if len(good) < MIN_INLIERS:
        return None
    src = ref.points[[m.trainIdx for m in good]]
    dst = query.points[[m.queryIdx for m in good]]
    transform, mask = cv2.estimateAffinePartial2D(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=REPROJECTION_PX,
        maxIters=2000,
        confidence=0.995,
        refineIters=10,
    )
    if transform is None or mask is None:
        return None
    keep = mask.ravel().astype(bool)
    inliers = int(keep.sum())
    if inliers < MIN_INLIERS:
        return None
    a, b = float(transform[0, 0]), float(transform[1, 0])
    scale = math.hypot(a, b)
    # Image y points down: a visually counter-clockwise turn has a negative atan2 here.
    angle = -math.degrees(math.atan2(b, a))
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] or abs(angle) > MAX_ANGLE:
        return None
    spread = _hull_share(src[keep], ref.width, ref.height)
    if spread < MIN_SPREAD or _hull_share(dst[keep], query.width, query.height) < MIN_SPREAD:
        return None
    inverse = cv2.invertAffineTransform(transform)
    w, h = query.width, query.height
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    mapped = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = mapped.min(axis=0)
    x1, y1 = mapped.max(axis=0)
    crop = (
        min(max(x0 / ref.width, 0.0), 1.0),
        min(max(y0 / ref.height, 0.0), 1.0),
        min(max(x1 / ref.width, 0.0), 1.0),
        min(max(y1 / ref.height, 0.0), 1.0),
    )
    # A mirrored query was described mirrored back: the box is in the reference's own frame.
    return LocalMatch(0, inliers, spread, angle, scale, crop, mirrored)


def _best(query: QueryFeatures, ref_id: int, ref: FeatureSet) -> LocalMatch | None:
    found = [
        m
        for m in (
            verify(query.plain, ref, mirrored=False),
            verify(query.mirror, ref, mirrored=True),
        )
        if m is not None
    ]
    if not found:
        return None
    best = max(found, key=lambda m: m.inliers)
    return LocalMatch(
        ref_id, best.inliers, best.spread, best.angle, best.scale, best.crop, best.mirrored
    )


class LocalFeatureIndex(ABC):
    """References' feature sets by id; ``search`` returns every verified match."""

    @abstractmethod
    def add(self, ref_id: int, features: FeatureSet) -> None: ...

    @abstractmethod
    def remove(self, ref_id: int) -> None: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def search(self, query: QueryFeatures) -> list[LocalMatch]:
        """Verified matches, most inliers first."""


class LinearLocalIndex(LocalFeatureIndex):
    """Verifies the query against every reference: exact for the rules, slow past a few
    hundred references. The reference implementation."""

    def __init__(self) -> None:
        self._refs: dict[int, FeatureSet] = {}

    def add(self, ref_id: int, features: FeatureSet) -> None:
        self._refs[ref_id] = features

    def remove(self, ref_id: int) -> None:
        self._refs.pop(ref_id, None)

    def __len__(self) -> int:
        return len(self._refs)

    def search(self, query: QueryFeatures) -> list[LocalMatch]:
        found = [_best(query, rid, fs) for rid, fs in sorted(self._refs.items())]
        return sorted((m for m in found if m is not None), key=lambda m: (-m.inliers, m.ref))


class VotingLocalIndex(LocalFeatureIndex):
    """Candidates by descriptor votes through the exact multi-index Hamming index, then the
    same verification as :class:`LinearLocalIndex` for the ``max_candidates`` best voted.

    Additions and removals are buffered and the descriptor index is rebuilt on the next
    search (a rebuild of a million descriptors takes well under a second).

    ``index_keypoints``: index only the first that many descriptors of each reference, in
    ORB's order (finest pyramid level first); verification still uses all of them. ``None``
    indexes every descriptor. It trades recall for memory: on ``bench/bench_robust.py``'s set
    the first 128 found 85-92 % of 10 % crops, turns and paddings (96-98 % with all), with no
    false match (``docs/benchmarks.md``, *Robust matching*)."""

    def __init__(
        self,
        *,
        radius: int = VOTE_RADIUS,
        min_votes: int = MIN_VOTES,
        max_candidates: int = MAX_CANDIDATES,
        index_keypoints: int | None = None,
    ) -> None:
        if index_keypoints is not None and not 1 <= index_keypoints <= 1 << _ID_SHIFT:
            raise ValueError(f"index_keypoints must be 1..{1 << _ID_SHIFT}")
        self.index_keypoints = index_keypoints
        self.radius = radius
        self.min_votes = min_votes
        self.max_candidates = max_candidates
        self._refs: dict[int, FeatureSet] = {}
        self._numbers: dict[int, int] = {}  # reference id -> its number in descriptor ids
        self._by_number: dict[int, int] = {}
        self._next = 0
        self._index: Any = None
        self._dirty = True

    def add(self, ref_id: int, features: FeatureSet) -> None:
        self.remove(ref_id)
        number, self._next = self._next, self._next + 1
        self._refs[ref_id] = features
        self._numbers[ref_id] = number
        self._by_number[number] = ref_id
        self._dirty = True

    def remove(self, ref_id: int) -> None:
        if ref_id in self._refs:
            del self._refs[ref_id]
            del self._by_number[self._numbers.pop(ref_id)]
            self._dirty = True

    def __len__(self) -> int:
        return len(self._refs)

    @property
    def descriptor_count(self) -> int:
        """Descriptors in the index (all of them when ``index_keypoints`` is ``None``)."""
        cap = self.index_keypoints or 1 << _ID_SHIFT
        return sum(min(len(fs), cap) for fs in self._refs.values())

    @property
    def nbytes(self) -> int:
        """Memory of the feature sets and the descriptor index."""
        self._build()
        sets = sum(fs.points.nbytes + fs.descriptors.nbytes for fs in self._refs.values())
        return int(sets) + (int(self._index.nbytes) if self._index is not None else 0)

    def _build(self) -> None:
        if not self._dirty:
            return
        from hashwatch.index.mih import MihPdqIndex

        ids: list[npt.NDArray[np.int64]] = []
        rows: list[npt.NDArray[np.uint8]] = []
        for ref_id, fs in self._refs.items():
            n = min(len(fs), self.index_keypoints or 1 << _ID_SHIFT)
            base = np.int64(self._numbers[ref_id]) << _ID_SHIFT
            ids.append(base + np.arange(n, dtype=np.int64))
            rows.append(fs.descriptors[:n])
        self._index = None
        if ids:
            self._index = MihPdqIndex.build(np.concatenate(ids), np.concatenate(rows))
        self._dirty = False

    def candidates(self, query: QueryFeatures) -> list[int]:
        """Reference ids by votes (distinct query descriptors with a close one), best first."""
        self._build()
        if self._index is None:
            return []
        rows = np.concatenate([query.plain.descriptors, query.mirror.descriptors])
        if len(rows) == 0:
            return []
        found = self._index.query(rows, self.radius)
        if len(found) == 0:
            return []
        pairs = np.unique(
            np.stack([found.query, found.ids >> _ID_SHIFT], axis=1), axis=0
        )  # one vote per query descriptor and reference
        numbers, votes = np.unique(pairs[:, 1], return_counts=True)
        order = np.lexsort((numbers, -votes))
        return [
            self._by_number[int(numbers[i])]
            for i in order[: self.max_candidates]
            if votes[i] >= self.min_votes
        ]

    def search(self, query: QueryFeatures) -> list[LocalMatch]:
        found = [_best(query, rid, self._refs[rid]) for rid in self.candidates(query)]
        return sorted((m for m in found if m is not None), key=lambda m: (-m.inliers, m.ref))
