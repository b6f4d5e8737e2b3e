"""vPDQ frame files: the frame hashes of videos, one ``frame,quality,hex,timestamp`` a line.

This is the output of Meta's vPDQ tool (``vpdq-hash-video``): one file per video, every sampled
frame's number among decoded frames, PDQ quality, PDQ hash (64 hex) and time in seconds. Such a
file says nothing about the video's bytes, so an entry read from it is keyed by
:func:`~hashwatch.lists.model.frame_set_digest` (type ``vpdq``), unless a comment names the
video's file hash.

hashwatch also writes several videos into one file: each video starts with a comment line
``# video <type>:<hash>`` naming the entry's key (e.g. ``# video md5:…``); other ``#`` lines
are comments. A file from Meta's tool has no comment and holds exactly one video.

All frames are kept on import as read; what matching uses is decided there (quality >= 50,
exact duplicates once). A malformed line raises :class:`ListFormatError` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats._common import check_hash, type_from_name
from hashwatch.lists.model import (
    CategoryScheme,
    EntryRecord,
    ListHeader,
    ParsedList,
    VideoFrameHash,
    frame_set_digest,
)
from hashwatch.signals.types import HashType

__all__ = ["VPDQ", "looks_like_vpdq", "parse_frame_line", "read_vpdq", "write_vpdq"]

VPDQ = "vpdq"
_LINE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*([0-9a-fA-F]{64})\s*,\s*([0-9.eE+-]+)\s*$")
_VIDEO = re.compile(r"^#\s*video\s+([A-Za-z0-9_-]+):(\S+)\s*$")


def looks_like_vpdq(line: str) -> bool:
    """True when ``line`` has the shape of a vPDQ frame line (for format detection)."""
    return _LINE.match(line) is not None


def parse_frame_line(line: str, where: str) -> VideoFrameHash:
    """One ``frame,quality,hex,timestamp`` line; a clear error otherwise."""
    found = _LINE.match(line)
    if found is None:
        raise ListFormatError("expected 'frame,quality,pdq_hex,timestamp'", where=where)
    frame, quality, value, timestamp = found.groups()
    q = int(quality)
    if q > 100:
        raise ListFormatError(f"quality {q} is above 100", where=where)
    try:
        seconds = float(timestamp)
    except ValueError:
        raise ListFormatError(f"timestamp {timestamp!r} is not a number", where=where) from None
    return VideoFrameHash(int(frame), seconds, check_hash(HashType.PDQ, value, where), q)


def read_vpdq(
    path: Path, *, default_hash_type: HashType | None = None, display_name: str | None = None
) -> ParsedList:
    """Open a vPDQ frame file: one entry per video in it (a file of Meta's tool: one).

    ``display_name`` (an upload's own name) is the file name recorded and shown, else the
    name of ``path``."""
    del default_hash_type  # every value in the file says what it is
    header = ListHeader(format=VPDQ, scheme=CategoryScheme.NONE)
    name = display_name if display_name is not None else path.name
    return ParsedList(header=header, records=_videos(path, name))


def _videos(path: Path, name: str) -> Iterator[EntryRecord]:
    key: tuple[HashType, str] | None = None
    frames: list[VideoFrameHash] = []
    started = 1

    def entry() -> EntryRecord:
        if not frames:
            raise ListFormatError("video has no frame lines", where=f"line {started}")
        hashes = (key,) if key is not None else ((HashType.VPDQ, frame_set_digest(frames)),)
        return EntryRecord(
            hashes=hashes,
            source=f"line {started}",
            frames=tuple(frames),
            extra={"video": {"source_file": name}},
        )

    with path.open("r", encoding="utf-8-sig", errors="strict") as fh:
        try:
            for n, line in enumerate(fh, 1):
                text = line.strip()
                if not text:
                    continue
                if text.startswith("#"):
                    named = _VIDEO.match(text)
                    if named is None:
                        continue
                    if frames or key is not None:
                        yield entry()
                    key = _video_key(named.group(1), named.group(2), f"line {n}")
                    frames, started = [], n
                    continue
                frames.append(parse_frame_line(text, f"line {n}"))
        except UnicodeDecodeError:
            raise ListFormatError(f"{name} is not UTF-8 text") from None
    if frames or key is not None:
        yield entry()


def _video_key(type_name: str, value: str, where: str) -> tuple[HashType, str]:
    hash_type = type_from_name(type_name)
    if hash_type is None or hash_type is HashType.PDQ:
        raise ListFormatError(f"{type_name!r} cannot key a video", where=where)
    return hash_type, check_hash(hash_type, value, where)


def write_vpdq(out: IO[bytes], header: ListHeader, records: Iterable[EntryRecord]) -> int:
    """Write the frames of every video entry (others have none to write); return the videos.

    Each video is introduced by ``# video <type>:<hash>`` so that a re-import keeps its key.
    """
    del header
    count = 0
    for record in records:
        if not record.frames or not record.hashes:
            continue
        htype, value = record.hashes[0]
        lines = [f"# video {htype.value}:{value}\n"]
        lines.extend(f"{f.frame},{f.quality},{f.pdq},{f.timestamp:.3f}\n" for f in record.frames)
        out.write("".join(lines).encode("ascii"))
        count += 1
    return count
