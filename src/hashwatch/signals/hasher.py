"""Every signal of one file: byte digests from one streamed read, plus PDQ for images.

The first block of the read decides, from content, whether the file is an image; if so the
blocks are kept and the image is decoded from memory, so the file is read once. A file that
cannot be decoded still gets its byte digests and an ``error`` saying why.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from PIL import Image

from hashwatch import __version__
from hashwatch.errors import ConfigError, DecodeError
from hashwatch.signals.bittorrent import (
    MAX_PIECE_LENGTH,
    BitTorrentAccumulator,
    BitTorrentDigests,
)
from hashwatch.signals.contact_sheet import contact_sheet_jpeg
from hashwatch.signals.digests import ByteDigests, digest_file, digest_stream, open_evidence
from hashwatch.signals.exif import exif_leads, read_exif_leads, thumbnail_jpeg, thumbnail_of
from hashwatch.signals.image import (
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_image,
    sniff_media_type,
)
from hashwatch.signals.pdq import PdqPolicy, PdqResult, get_pdq_policy, hash_decoded
from hashwatch.signals.robust import trimmed_decode
from hashwatch.signals.types import SIGNAL_TYPES
from hashwatch.signals.video import SAMPLINGS, VideoSignals, hash_video
from hashwatch.signals.video_sniff import sniff_video_type

if TYPE_CHECKING:
    from hashwatch.signals.local_features import QueryFeatures

__all__ = ["FileSignals", "HashOptions", "hash_file", "hash_stream"]

# Images larger than this are decoded from the file instead of from the bytes of the digest
# read (a second read, rather than holding hundreds of MB per worker).
KEEP_IN_MEMORY_MAX = 512 * 1024 * 1024


@dataclass(frozen=True)
class HashOptions:
    """How media is hashed: built once (the CLI from settings and flags, the service from its
    settings) and passed down unchanged through the library, the scan and its workers.

    ``dihedral`` asks for the 8 rotated/flipped PDQ hashes of an image, which is what lets a
    matcher find a rotated or mirrored copy (on by default: the index makes it cheap).
    ``border_trim`` also hashes the picture inside a uniform border (letterboxing, padding),
    from the same decode, so a framed copy is matched (``FileSignals.trimmed``; on by default:
    measured with no false matches, docs/benchmarks.md "Robust matching").
    """

    dihedral: bool = True
    border_trim: bool = True
    # Describe each image's local features (FileSignals.features) for lists that use them
    # (a scan sets it when one does; docs/matching.md "Local features").
    local_features: bool = False
    policy: str = "fast"
    max_image_pixels: int | None = None
    # Pixels one file may decode, over all its frames (signals.image.DEFAULT_MAX_DECODE_PIXELS).
    max_decode_pixels: int | None = DEFAULT_MAX_DECODE_PIXELS
    exif: bool = False  # read EXIF leads of images (the scan wants them)
    thumbnail: bool = False  # make a small JPEG for the report
    # Hash video frames (one per this many seconds); None: videos are hashed as byte files.
    frame_interval: float | None = 1.0
    sampling: str = "fast"  # video frames: see hashwatch.signals.video.SAMPLINGS
    # BitTorrent's file hashes (signals.bittorrent) in the same read: the v2 root, and the
    # v1 pieces digest at each of ``bt_piece_lengths``. Off unless asked: a list entry made
    # from media wants them (add-media), a scan's files are matched by their own digests.
    bittorrent: bool = False
    bt_piece_lengths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.frame_interval is not None and not self.frame_interval > 0:
            raise ConfigError("the frame interval must be above 0 (or None: no frames)")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {', '.join(SAMPLINGS)}")
        get_pdq_policy(self.policy)  # an unknown policy is refused here, once
        if any(not 0 < n <= MAX_PIECE_LENGTH for n in self.bt_piece_lengths):
            raise ConfigError(f"a piece length must be 1 to {MAX_PIECE_LENGTH} bytes")

    @property
    def pdq_policy(self) -> PdqPolicy:
        return get_pdq_policy(self.policy)


@dataclass(frozen=True)
class FileSignals:
    path: str
    digests: ByteDigests | None
    mime: str | None = None
    pdq: PdqResult | None = None
    error: str | None = None
    # PDQ of the picture inside its uniform border, when it has one (HashOptions.border_trim).
    trimmed: PdqResult | None = None
    # An image's local features, as it is and mirrored (HashOptions.local_features).
    features: QueryFeatures | None = field(default=None, repr=False)
    exif: dict[str, Any] | None = None
    thumbnail: bytes | None = field(default=None, repr=False)
    video: VideoSignals | None = None
    bittorrent: BitTorrentDigests | None = None  # when HashOptions.bittorrent asked for it

    @property
    def media_type(self) -> str | None:
        if self.mime is None:
            return None
        return self.mime.split("/", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.digests is not None:
            out.update(self.digests.as_dict())
        if self.mime is not None:
            out["media_type"] = self.media_type
            out["mime"] = self.mime
        if self.video is not None:
            out.update(
                duration=self.video.duration,
                fps=self.video.fps,
                width=self.video.width,
                height=self.video.height,
                frames=[dict(f) for f in self.video.frames],
                sampling=self.video.sampling,
                pdq_policy=self.video.policy,
            )
        if self.pdq is not None:
            out["width"] = self.pdq.width
            out["height"] = self.pdq.height
            out["pdq"] = self.pdq.hash
            out["pdq_quality"] = self.pdq.quality
            if self.pdq.dihedral is not None:
                out["pdq_dihedral"] = list(self.pdq.dihedral)
            out["pdq_policy"] = self.pdq.policy
        if self.trimmed is not None:
            out["pdq_trimmed"] = self.trimmed.hash
            out["pdq_trimmed_quality"] = self.trimmed.quality
            if self.trimmed.dihedral is not None:
                out["pdq_trimmed_dihedral"] = list(self.trimmed.dihedral)
        for impl in SIGNAL_TYPES.values():
            # A registered type whose field the blocks above do not write (none built in).
            if impl.fields and impl.fields[0] not in out:
                values = impl.values_of(self)
                if values:
                    out[impl.fields[0]] = values[0]
        out["hashed_by"] = f"hashwatch {__version__}"
        if self.error is not None:
            out["error"] = self.error
        return out


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) < 300 else text[:297] + "..."


class _MediaSniffer:
    """Decides from the first block whether to keep the content for decoding, and remembers
    the media type it saw. Videos are kept only when they have no path to decode from (a
    member of an archive) and their frames are wanted."""

    def __init__(self, keep_video: bool = False) -> None:
        self.mime: str | None = None
        self.keep_video = keep_video

    def __call__(self, first_block: bytes, size: int | None) -> bool:
        self.mime = sniff_media_type(first_block[:64]) or sniff_video_type(first_block[:256])
        fits = size is None or size <= KEEP_IN_MEMORY_MAX
        if self.mime is None or not fits:
            return False
        return self.mime.startswith("image/") or (
            self.keep_video and self.mime.startswith("video/")
        )


def hash_stream(
    stream: BinaryIO,
    display_path: str,
    size: int | None = None,
    options: HashOptions | None = None,
) -> FileSignals:
    """All signals of the bytes in ``stream`` (a file, or a member of an archive)."""
    options = options or HashOptions()
    sniffer = _MediaSniffer(keep_video=options.frame_interval is not None)
    bt = _bittorrent(options)
    try:
        digests, content = digest_stream(stream, size, keep=sniffer, also=bt[1])
    except OSError as exc:
        return FileSignals(display_path, None, error=f"cannot read: {_describe(exc)}")
    return _with_bittorrent(
        _with_pdq(display_path, digests, sniffer.mime, content, None, options), bt[0]
    )


def hash_file(path: str | os.PathLike[str], options: HashOptions | None = None) -> FileSignals:
    """All signals of the file at ``path``; never raises for a bad file, reports ``error``."""
    options = options or HashOptions()
    shown = str(path)
    sniffer = _MediaSniffer()
    bt = _bittorrent(options)
    try:
        digests, content = digest_file(path, keep=sniffer, also=bt[1])
    except OSError as exc:
        return FileSignals(shown, None, error=f"cannot read: {exc.strerror or _describe(exc)}")
    return _with_bittorrent(
        _with_pdq(shown, digests, sniffer.mime, content, Path(path), options), bt[0]
    )


def _bittorrent(
    options: HashOptions,
) -> tuple[BitTorrentAccumulator | None, tuple[Callable[[bytes], None], ...]]:
    """The BitTorrent accumulator the digest read also feeds, when the options ask for it."""
    if not options.bittorrent:
        return None, ()
    acc = BitTorrentAccumulator(options.bt_piece_lengths)
    return acc, (acc.update,)


def _with_bittorrent(fs: FileSignals, acc: BitTorrentAccumulator | None) -> FileSignals:
    return fs if acc is None else replace(fs, bittorrent=acc.finish())


def _with_pdq(
    shown: str,
    digests: ByteDigests,
    mime: str | None,
    content: bytes | None,
    path: Path | None,
    options: HashOptions,
) -> FileSignals:
    if mime is not None and mime.startswith("video/") and options.frame_interval:
        # Files are decoded from the file (a second read, nothing held in memory), opened as
        # evidence (no access-time update) rather than by name inside FFmpeg; members of
        # archives from the bytes kept by the digest read.
        if content is not None:
            return _with_video(shown, digests, mime, content, options)
        if path is None:
            return FileSignals(shown, digests, mime=mime, error="video too large to decode")
        try:
            with open_evidence(path) as fh:
                return _with_video(shown, digests, mime, fh, options)
        except OSError as exc:
            return FileSignals(shown, digests, mime=mime, error=f"cannot read: {_describe(exc)}")
    if mime is None or not mime.startswith("image/"):
        return FileSignals(shown, digests, mime=mime)
    source: bytes | Path | None = content if content is not None else path
    if source is None:
        return FileSignals(shown, digests, mime=mime, error="image too large to decode in memory")
    kwargs = {"max_pixels": options.max_image_pixels} if options.max_image_pixels else {}
    colour: Image.Image | None = None
    try:
        # One decode, at the reduced size the policy allows, gives PDQ its luma and the
        # thumbnail its colour picture.
        decoded = decode_image(
            source,
            options.pdq_policy,
            max_decode_pixels=options.max_decode_pixels,
            keep_colour=options.thumbnail,
            **kwargs,
        )
        colour = decoded.colour
        pdq = hash_decoded(decoded, options.pdq_policy, dihedral=options.dihedral)
        trimmed = _trimmed_pdq(decoded, options) if options.border_trim else None
        features = _local_features(decoded, source, options) if options.local_features else None
    except DecodeError as exc:
        return FileSignals(shown, digests, mime=mime, error=_describe(exc))
    except (MemoryError, OSError, ValueError) as exc:  # decoder faults never stop a run
        return FileSignals(shown, digests, mime=mime, error=f"cannot decode: {_describe(exc)}")
    exif: dict[str, Any] | None = None
    if options.exif and content is not None:
        # A JPEG's EXIF as its decode parsed it (no second open of the file).
        exif = exif_leads(decoded.exif) if decoded.exif is not None else read_exif_leads(content)
    thumb: bytes | None = None
    if options.thumbnail:
        thumb = thumbnail_of(colour) if colour is not None else None
        if thumb is None and content is not None:
            thumb = thumbnail_jpeg(content)
    del colour
    animation: VideoSignals | None = None
    animation_error: str | None = None
    animated_source = content if content is not None else path
    if options.frame_interval and mime in _ANIMATABLE and _is_animated(animated_source):
        # An animated GIF/WebP/PNG is a short video: its frames are hashed as a video's are
        # (the PDQ above is its first frame, as an image viewer shows it).
        assert animated_source is not None
        budget = options.max_decode_pixels  # what the first frame's decode left of it
        animation = hash_video(
            animated_source,
            frame_interval=options.frame_interval,
            policy=options.pdq_policy,
            max_decode_pixels=None if budget is None else budget - pdq.width * pdq.height,
        )
        animation_error = animation.error if animation.over_budget else None
        if len(animation.frames) < 2:
            animation = None  # a single sampled frame adds nothing to the image's own PDQ
    return FileSignals(
        shown,
        digests,
        mime=mime,
        pdq=pdq,
        trimmed=trimmed,
        features=features,
        exif=exif,
        thumbnail=thumb,
        video=animation,
        error=animation_error,
    )


def _trimmed_pdq(decoded: DecodedImage, options: HashOptions) -> PdqResult | None:
    """The PDQ of the picture inside a uniform border, or None when it has none. Optional:
    a fault here leaves the file's own PDQ in place rather than turning it into an error."""
    try:
        inner = trimmed_decode(decoded)
        if inner is None:
            return None
        return hash_decoded(inner, options.pdq_policy, dihedral=options.dihedral)
    except (DecodeError, MemoryError, ValueError):
        return None


@dataclass(frozen=True)
class _FeatureDecode:
    """Decode hints for local features: reduced while the shorter side stays ``min_side``."""

    decode_min_side: int | None
    decode_grey: bool = True
    sixteen_bit: Literal["clip", "scale"] = "clip"


def _local_features(
    decoded: DecodedImage, source: bytes | Path, options: HashOptions
) -> QueryFeatures | None:
    """The local features of the picture PDQ just decoded (None when a second decode fails:
    the file keeps its hashes).

    ORB describes a picture at ``MAX_SIDE`` pixels on its longer side, in its true aspect.
    PDQ's decode may be reduced along each axis by another factor, and small pictures reduce
    to 256 pixels on the shorter side: described as they are, fewer copies were found (90 %
    against 96 % of crops, turns and frames of 40 generated pictures). So the decode is
    scaled to that size when it holds enough pixels, and otherwise decoded once more, reduced
    only down to that size: then as many copies are found as from a full decode."""
    from PIL import Image as PILImage

    from hashwatch.signals.local_features import MAX_SIDE, describe_query

    w, h = decoded.width, decoded.height
    scale = min(1.0, MAX_SIDE / max(w, h))
    target = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = decoded.image
    try:
        if image.width < 0.9 * target[0] or image.height < 0.9 * target[1]:
            image = decode_image(
                source,
                _FeatureDecode(min(target)),
                max_pixels=options.max_image_pixels or DEFAULT_MAX_PIXELS,
                max_decode_pixels=options.max_decode_pixels,
            ).image
        if image.size != target:
            image = image.resize(target, PILImage.Resampling.BILINEAR, reducing_gap=2.0)
        return describe_query(image)
    except (DecodeError, MemoryError, OSError, ValueError):
        return None


def _with_video(
    shown: str,
    digests: ByteDigests,
    mime: str | None,
    source: bytes | BinaryIO,
    options: HashOptions,
) -> FileSignals:
    """A video's frame hashes and, when thumbnails are wanted, its contact sheet."""
    assert options.frame_interval is not None
    video = hash_video(
        source,
        frame_interval=options.frame_interval,
        policy=options.pdq_policy,
        sampling=options.sampling,
    )
    sheet = None
    if options.thumbnail and video.frames:
        if not isinstance(source, bytes):
            source.seek(0)
        sheet = contact_sheet_jpeg(source)
    return FileSignals(shown, digests, mime=mime, video=video, error=video.error, thumbnail=sheet)


_ANIMATABLE = frozenset({"image/gif", "image/webp", "image/png", "image/apng"})


def _is_animated(source: bytes | Path | None) -> bool:
    """True for an image with more than one frame (Pillow reads only the headers for this)."""
    if source is None:
        return False
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return bool(getattr(im, "is_animated", False))
    except (OSError, ValueError, MemoryError, Image.DecompressionBombError):
        return False
