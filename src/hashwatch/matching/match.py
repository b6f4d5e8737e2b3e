"""What a match is: the typed objects a matcher returns, and their JSON.

They travel typed through the process (the scan's records, the report, the service) and become
JSON only at the edges: :meth:`Match.as_dict` where a result is written (``results.jsonl``, the
CLI's output, HTTP answers), :meth:`Match.from_dict` where a written record is read back. The
two are exact inverses. This module imports nothing of the database or the index, so the scan's
hashing workers, which build records, stay light.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["LocalFacts", "Match", "VideoFacts", "VideoSegment"]


@dataclass(frozen=True)
class LocalFacts:
    """What a local-feature match found (see :mod:`hashwatch.matching.local_match`): the part
    of the reference the query shows (``crop``: x0, y0, x1, y1 as fractions of its width and
    height), the query's turn in degrees (positive: counter-clockwise), its scale against the
    reference, the keypoint pairs RANSAC kept (``inliers``) and the share of the reference
    they cover (``spread``), and whether the query is mirrored."""

    inliers: int
    spread: float
    angle: float
    scale: float
    crop: tuple[float, float, float, float]
    mirrored: bool
    method: str = "orb-ransac"

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "inliers": self.inliers,
            "spread": round(self.spread, 3),
            "angle": round(self.angle, 2),
            "scale": round(self.scale, 3),
            "crop": [round(c, 3) for c in self.crop],
            "mirrored": self.mirrored,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalFacts:
        """The inverse of :meth:`as_dict` (to its rounding)."""
        x0, y0, x1, y1 = (float(c) for c in data["crop"])
        return cls(
            int(data["inliers"]),
            float(data["spread"]),
            float(data["angle"]),
            float(data["scale"]),
            (x0, y0, x1, y1),
            bool(data["mirrored"]),
            str(data.get("method", "orb-ransac")),
        )


@dataclass(frozen=True)
class VideoSegment:
    """A run of matching query frames and the span of reference frames they matched."""

    query_start: float
    query_end: float
    frames: int
    ref_start: float | None = None
    ref_end: float | None = None
    categories: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "query_start": self.query_start,
            "query_end": self.query_end,
            "frames": self.frames,
        }
        if self.ref_start is not None:
            out["ref_start"] = self.ref_start
            out["ref_end"] = self.ref_end
        if self.categories:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoSegment:
        """The inverse of :meth:`as_dict`."""
        ref_start, ref_end = data.get("ref_start"), data.get("ref_end")
        return cls(
            float(data["query_start"]),
            float(data["query_end"]),
            int(data["frames"]),
            None if ref_start is None else float(ref_start),
            None if ref_end is None else float(ref_end),
            tuple(str(c) for c in data.get("categories", ())),
        )


@dataclass(frozen=True)
class VideoFacts:
    """How a video query matched one list entry (see :mod:`hashwatch.matching.video`).

    ``query_pct``: share of the query's frames that match the entry; ``compared_pct``: share of
    the entry's (reference) frames that some query frame matches; ``rule``: the list's threshold
    in words; ``segments``: the matched time runs, at most ``MAX_SEGMENTS``, the rest counted in
    ``segments_left_out``."""

    query_pct: float
    compared_pct: float
    query_frames: int
    matched_query_frames: int
    reference_frames: int
    matched_reference_frames: int
    rule: str
    segments: tuple[VideoSegment, ...] = ()
    segments_left_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "query_pct": self.query_pct,
            "compared_pct": self.compared_pct,
            "query_frames": self.query_frames,
            "matched_query_frames": self.matched_query_frames,
            "reference_frames": self.reference_frames,
            "matched_reference_frames": self.matched_reference_frames,
            "rule": self.rule,
            "segments": [s.as_dict() for s in self.segments],
        }
        if self.segments_left_out:
            out["segments_left_out"] = self.segments_left_out
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoFacts:
        """The inverse of :meth:`as_dict`."""
        return cls(
            float(data["query_pct"]),
            float(data["compared_pct"]),
            int(data["query_frames"]),
            int(data["matched_query_frames"]),
            int(data["reference_frames"]),
            int(data["matched_reference_frames"]),
            str(data["rule"]),
            tuple(VideoSegment.from_dict(s) for s in data.get("segments", ())),
            int(data.get("segments_left_out", 0)),
        )


@dataclass(frozen=True)
class Match:
    """One list entry an item matched, with the facts of the entry read at match time."""

    list: str
    kind: str
    hash_type: str
    distance: int
    category: str | None
    scheme: str
    series: str | None
    entry_id: int
    category_label: str | None = None
    entry_status: str = "active"
    list_version: int = 0
    # Which dihedral variant of the query matched (see hashwatch.signals.pdq.DIHEDRAL_NAMES):
    # "rot90" means the picture, turned as Pillow's ROTATE_90 turns it, matches the entry;
    # "trimmed" (or "trimmed+rot90") that the picture inside its uniform border matched.
    variant: str | None = None
    # The matched hash is a frame of a known video: its time (seconds) in that video.
    ref_time: float | None = None
    # A video matched below the list's video thresholds: shown (partial re-use), no alert.
    # Only a video query's match can be partial: it is written with ``video``.
    partial: bool = False
    # Video-level facts of a video query: query %, compared %, segments (see matching.video).
    video: VideoFacts | None = None
    # A match by local features (``hash_type`` "local"): what the geometry found.
    local: LocalFacts | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "list": self.list,
            "kind": self.kind,
            "hash_type": self.hash_type,
            "distance": self.distance,
            "category": self.category,
            "scheme": self.scheme,
            "series": self.series,
            "entry_id": self.entry_id,
            "category_label": self.category_label,
            "entry_status": self.entry_status,
            "list_version": self.list_version,
        }
        if self.variant is not None:
            out["variant"] = self.variant
        if self.ref_time is not None:
            out["ref_time"] = self.ref_time
        if self.video is not None:
            out["partial"] = self.partial
            out["video"] = self.video.as_dict()
        if self.local is not None:
            out["local"] = self.local.as_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Match:
        """The inverse of :meth:`as_dict` (a ``results.jsonl`` match read back)."""
        video = data.get("video")
        local = data.get("local")
        ref_time = data.get("ref_time")
        return cls(
            list=str(data["list"]),
            kind=str(data["kind"]),
            hash_type=str(data["hash_type"]),
            distance=int(data["distance"]),
            category=data.get("category"),
            scheme=str(data["scheme"]),
            series=data.get("series"),
            entry_id=int(data["entry_id"]),
            category_label=data.get("category_label"),
            entry_status=str(data.get("entry_status", "active")),
            list_version=int(data.get("list_version", 0)),
            variant=data.get("variant"),
            ref_time=None if ref_time is None else float(ref_time),
            partial=bool(data.get("partial", False)),
            video=None if video is None else VideoFacts.from_dict(video),
            local=None if local is None else LocalFacts.from_dict(local),
        )
