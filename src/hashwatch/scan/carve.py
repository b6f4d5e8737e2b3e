"""Pictures carved from space no file holds: JPEG, PNG, GIF and MP4, by their own structure.

For each start marker found, the format's structure is walked from there (JPEG markers and
segment lengths to the end of the entropy-coded data and EOI; PNG chunks to IEND; GIF blocks
to the trailer; MP4 top-level boxes while they are boxes MP4 files hold) and the result is
confirmed by decoding it (Pillow for pictures; an MP4 must hold both ``moov`` and ``mdat``).
What passes is returned as bytes — carved items are hashed from memory and never written
out. Search resumes after a carved item, so a thumbnail inside a carved JPEG is not carved
again. A candidate that does not decode (overwritten, fragmented) is skipped quietly.
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["MAX_CARVED", "Carved", "carve"]

MAX_CARVED = 64 << 20  # the largest item carved (bytes held in memory at once)
WINDOW = 4 << 20  # bytes searched for start markers per read
_FIRST = 256 << 10  # first read of a candidate; grown while its structure goes on
_MAX_PIXELS = 100_000_000

ReadAt = Callable[[int, int], bytes]

_STARTS = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"ftyp", "mp4"),  # at offset 4 of the file
)
_MP4_BOXES = frozenset(
    {
        b"ftyp",
        b"moov",
        b"mdat",
        b"free",
        b"skip",
        b"wide",
        b"uuid",
        b"moof",
        b"mfra",
        b"meta",
        b"pdin",
        b"styp",
        b"sidx",
        b"udta",
        b"pnot",
        b"prfl",
    }
)


@dataclass(frozen=True)
class Carved:
    offset: int  # byte offset of the item's first byte in the media
    ext: str  # "jpg", "png", "gif", "mp4"
    data: bytes


class _Grow:
    """The bytes from a candidate's start, read on demand up to :data:`MAX_CARVED`."""

    def __init__(self, read_at: ReadAt, start: int, limit: int) -> None:
        self.read_at, self.start, self.limit = read_at, start, limit
        self.data = read_at(start, min(_FIRST, limit))

    def need(self, end: int) -> bool:
        """Make ``data[:end]`` available; False when the media or the limit ends first."""
        while len(self.data) < end:
            if len(self.data) >= self.limit:
                return False
            want = min(max(len(self.data), end - len(self.data)), self.limit - len(self.data))
            more = self.read_at(self.start + len(self.data), want)
            if not more:
                return False
            self.data += more
        return True


def _jpeg_end(g: _Grow) -> int | None:
    pos = 2
    while True:
        if not g.need(pos + 4):
            return None
        d = g.data
        if d[pos] != 0xFF:
            return None
        marker = d[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        length = struct.unpack_from(">H", d, pos + 2)[0]
        if length < 2:
            return None
        pos += 2 + length
        if marker != 0xDA:
            continue
        # Entropy-coded data: runs to the next marker that is not a stuffed 0xFF00 or RSTn.
        while True:
            if not g.need(pos + 2):
                return None
            at = g.data.find(b"\xff", pos)
            if at < 0 or at + 1 >= len(g.data):
                pos = len(g.data)
                if not g.need(pos + 1024):
                    return None
                continue
            nxt = g.data[at + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                pos = at + (1 if nxt == 0xFF else 2)
                continue
            pos = at
            break


def _png_end(g: _Grow) -> int | None:
    pos = 8
    while True:
        if not g.need(pos + 12):
            return None
        length, kind = struct.unpack_from(">I4s", g.data, pos)
        if length > MAX_CARVED or not kind.isalpha():
            return None
        pos += 12 + length
        if kind == b"IEND":
            return pos if g.need(pos) else None


def _sub_blocks(g: _Grow, pos: int) -> int | None:
    while True:
        if not g.need(pos + 1):
            return None
        n = g.data[pos]
        pos += 1 + n
        if n == 0:
            return pos


def _gif_end(g: _Grow) -> int | None:
    if not g.need(13):
        return None
    flags = g.data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while True:
        if not g.need(pos + 1):
            return None
        block = g.data[pos]
        if block == 0x3B:
            return pos + 1
        if block == 0x21:  # extension: label, then sub-blocks
            end = _sub_blocks(g, pos + 2)
        elif block == 0x2C:  # image: descriptor, local colour table, LZW size, sub-blocks
            if not g.need(pos + 10):
                return None
            local = g.data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            end = _sub_blocks(g, pos + 1)
        else:
            return None
        if end is None:
            return None
        pos = end


def _mp4_end(g: _Grow) -> int | None:
    pos, seen = 0, set()
    while g.need(pos + 8):
        size, kind = struct.unpack_from(">I4s", g.data, pos)
        if kind not in _MP4_BOXES:
            break
        if size == 1:
            if not g.need(pos + 16):
                break
            size = struct.unpack_from(">Q", g.data, pos + 8)[0]
        if size < 8 or pos + size > g.limit:
            break
        seen.add(kind)
        pos += size
    if not {b"moov", b"mdat"} <= seen or not g.need(pos):
        return None
    return pos


_ENDS = {"jpg": _jpeg_end, "png": _png_end, "gif": _gif_end, "mp4": _mp4_end}


def _decodes(data: bytes) -> bool:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > _MAX_PIXELS:
                    return False
                im.load()
    except Exception:
        return False
    return True


def _candidate(read_at: ReadAt, offset: int, ext: str, limit: int) -> Carved | None:
    g = _Grow(read_at, offset, limit)
    end = _ENDS[ext](g)
    if end is None:
        return None
    data = g.data[:end]
    if ext != "mp4" and not _decodes(data):
        return None
    return Carved(offset, ext, data)


def _hits(window: bytes) -> list[tuple[int, str]]:
    hits = []
    for marker, ext in _STARTS:
        at = window.find(marker)
        while at >= 0:
            start = at - 4 if ext == "mp4" else at
            if start >= 0:
                hits.append((start, ext))
            at = window.find(marker, at + 1)
    return sorted(hits)


def carve(read_at: ReadAt, ranges: Sequence[tuple[int, int]], media_size: int) -> Iterator[Carved]:
    """Items whose first byte lies in one of ``ranges`` (``[start, end)`` offsets of the
    media, in order). An item may run past its range's end (it is read from the media)."""
    for start, end in ranges:
        pos = start
        while pos < end:
            span = min(WINDOW, end - pos)
            window = read_at(pos, span + 16)  # markers across the window's edge are seen
            if not window:
                break
            nxt = pos + span
            for rel, ext in _hits(window):
                at = pos + rel
                if at >= pos + span:
                    continue  # the next window starts there
                found = _candidate(read_at, at, ext, min(MAX_CARVED, media_size - at))
                if found is not None:
                    yield found
                    nxt = at + len(found.data)  # search again after it
                    break
            pos = nxt
