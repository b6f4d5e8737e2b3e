"""Local features of a picture: ORB keypoints with their 256-bit binary descriptors.

PDQ describes a whole picture; a copy cropped by 5 %, turned by 3° or framed by a border has
another PDQ hash far beyond any threshold. Local features survive that: each keypoint is a
corner-like spot with a descriptor of its neighbourhood, and a copy shares many of them with
the original in a consistent geometry (see :mod:`hashwatch.matching.local_match`, which
retrieves candidates by descriptor and verifies the geometry).

Why ORB (OpenCV's, ``opencv-python-headless``): free of patents and licences, binary
descriptors of exactly 256 bits (the width of PDQ, so the exact multi-index Hamming index holds
them unchanged), ~10 ms a picture. Pictures are scaled so that the longer side is
``MAX_SIDE`` pixels before detection: keypoints of a copy at another resolution then lie at
comparable scales, and the cost per picture is bounded.

ORB is not mirror-invariant: a query is described twice, as it is and mirrored
(:func:`describe_query`), so that a mirrored copy is found too.

A feature set is closer to the picture than a PDQ hash is (keypoint positions outline the
picture's structure): it is stored only with lists whose curator holds the media and never
leaves through the exchange feeds.

``cv2`` is imported inside the functions: the CLI's start must not load it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hashwatch.errors import HashwatchError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "FEATURES_VERSION",
    "MAX_SIDE",
    "N_FEATURES",
    "FeatureSet",
    "QueryFeatures",
    "describe",
    "describe_file",
    "describe_query",
    "describe_query_file",
    "gray_array",
]

#: Bumped whenever the extraction changes so that stored sets and queries stop agreeing.
FEATURES_VERSION = 1
MAX_SIDE = 512
N_FEATURES = 500
_MAGIC = b"HWLF"
_HEADER = struct.Struct("<4sHHHI")  # magic, format version, width, height, count

F32Array = npt.NDArray[np.float32]
U8Array = npt.NDArray[np.uint8]


class FeatureFormatError(HashwatchError):
    """Stored feature bytes that are not a feature set of this version."""


@dataclass(frozen=True)
class FeatureSet:
    """Keypoints (x, y in the scaled picture) and their ORB descriptors (n × 32 bytes).

    ``width`` and ``height`` are those of the scaled picture the keypoints lie in."""

    width: int
    height: int
    points: F32Array  # shape (n, 2)
    descriptors: U8Array  # shape (n, 32)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def nbytes(self) -> int:
        return _HEADER.size + int(self.points.nbytes) + int(self.descriptors.nbytes)

    def to_bytes(self) -> bytes:
        """A versioned binary form (header, points as float32, descriptors): no pickle."""
        head = _HEADER.pack(_MAGIC, FEATURES_VERSION, self.width, self.height, len(self))
        return (
            head
            + np.ascontiguousarray(self.points, dtype="<f4").tobytes()
            + np.ascontiguousarray(self.descriptors, dtype=np.uint8).tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FeatureSet:
        if len(data) < _HEADER.size:
            raise FeatureFormatError("feature set too short")
        magic, version, width, height, count = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != FEATURES_VERSION:
            raise FeatureFormatError(f"not a feature set of version {FEATURES_VERSION}")
        if len(data) != _HEADER.size + count * (8 + 32):
            raise FeatureFormatError("feature set length does not match its header")
        at = _HEADER.size
        points = np.frombuffer(data, dtype="<f4", count=count * 2, offset=at).reshape(count, 2)
        descriptors = np.frombuffer(
            data, dtype=np.uint8, count=count * 32, offset=at + count * 8
        ).reshape(count, 32)
        return cls(int(width), int(height), points.astype(np.float32), descriptors.copy())

    def mirrored(self) -> FeatureSet:
        """Not a re-description: only for tests of the geometry. Use :func:`describe_query`."""
        pts = self.points.copy()
        pts[:, 0] = (self.width - 1) - pts[:, 0]
        return FeatureSet(self.width, self.height, pts, self.descriptors)


@dataclass(frozen=True)
class QueryFeatures:
    """A query picture described as it is and mirrored (left-right)."""

    plain: FeatureSet
    mirror: FeatureSet


def gray_array(image: Image.Image) -> U8Array:
    """The picture as 8-bit grey levels, scaled so the longer side is at most ``MAX_SIDE``."""
    from PIL import Image as PILImage

    img = image
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGBA") if "A" in img.getbands() or img.mode == "P" else img
        if img.mode == "RGBA":  # transparent parts as white, as viewers show them
            back = PILImage.new("RGBA", img.size, (255, 255, 255, 255))
            img = PILImage.alpha_composite(back, img)
        img = img.convert("RGB")
    gray = img.convert("L")
    w, h = gray.size
    scale = MAX_SIDE / max(w, h)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = gray.resize(size, PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(gray, dtype=np.uint8)


def _orb(n_features: int) -> Any:
    import cv2

    return cv2.ORB.create(nfeatures=n_features, scaleFactor=1.2, nlevels=8, fastThreshold=12)


def _describe_gray(gray: U8Array, n_features: int) -> FeatureSet:
    h, w = gray.shape
    if min(w, h) < 32:  # too small for ORB's 31-pixel patches
        return FeatureSet(w, h, np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    keypoints, descriptors = _orb(n_features).detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return FeatureSet(w, h, np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    points = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
    return FeatureSet(w, h, points, np.ascontiguousarray(descriptors, dtype=np.uint8))


def describe(image: Image.Image, n_features: int = N_FEATURES) -> FeatureSet:
    """The local features of a reference picture."""
    return _describe_gray(gray_array(image), n_features)


def describe_query(image: Image.Image, n_features: int = N_FEATURES) -> QueryFeatures:
    """The local features of a query picture, as it is and mirrored."""
    gray = gray_array(image)
    return QueryFeatures(
        _describe_gray(gray, n_features),
        _describe_gray(np.ascontiguousarray(gray[:, ::-1]), n_features),
    )


def _decoded(
    path: str | bytes, max_pixels: int, max_decode_pixels: int | None
) -> Image.Image | None:
    from hashwatch.errors import DecodeError
    from hashwatch.signals.image import decode_image

    try:  # upright (EXIF orientation applied), within the decode limits
        return decode_image(path, max_pixels=max_pixels, max_decode_pixels=max_decode_pixels).image
    except DecodeError:
        return None


def describe_file(
    path: str | bytes, *, max_pixels: int, max_decode_pixels: int | None
) -> FeatureSet | None:
    """A reference picture's features from its file (read only) or its bytes, None if not
    decodable."""
    image = _decoded(path, max_pixels, max_decode_pixels)
    return None if image is None else describe(image)


def describe_query_file(
    path: str | bytes, *, max_pixels: int, max_decode_pixels: int | None
) -> QueryFeatures | None:
    """A query picture's features from its file (read only) or its bytes (an upload, kept in
    memory), None if not decodable."""
    image = _decoded(path, max_pixels, max_decode_pixels)
    return None if image is None else describe_query(image)
