"""A forward-only reader over a binary stream for the P2P record parsers: little- or big-endian
integers and byte strings read through a window of at most one chunk, so an artifact of any size
is read in bounded memory, with the byte offset of every read known for problem reports.

A read past the end raises :class:`Truncated`, a value the format forbids :class:`Malformed`;
readers catch both and turn them into a :class:`~hashwatch.scan.p2p.record.P2PReadProblem`.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from typing import BinaryIO, TypeVar

__all__ = [
    "CHUNK",
    "MAX_RECORD",
    "Cursor",
    "Malformed",
    "Short",
    "Truncated",
    "iso_utc",
    "parse_in_place",
]

CHUNK = 1 << 20  # bytes read from the stream at a time
MAX_RECORD = 64 << 20  # a record (tags, part hashes, blobs) longer than this is damaged
_T = TypeVar("_T")

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")
_BE_U16 = struct.Struct(">H")
_BE_I32 = struct.Struct(">i")
_BE_I64 = struct.Struct(">q")
_BE_F32 = struct.Struct(">f")
_BE_F64 = struct.Struct(">d")


class Truncated(Exception):
    """The artifact ended inside a value."""


class Malformed(Exception):
    """A value the format does not allow (an unknown type, a count or length out of bounds)."""


class Short(Exception):
    """The buffer ended inside the value being parsed (more is read, or the artifact ended)."""


def parse_in_place(cur: Cursor, parse: Callable[[bytes, int], tuple[_T, int]]) -> _T:
    """Runs ``parse(buffer, position)`` (which returns its value and where it ended) on the
    cursor's window, widening the window while the value runs past it, up to MAX_RECORD."""
    want = 1 << 16
    while True:
        buf, start = cur.window(want)
        try:
            value, end = parse(buf, start)
        except (Short, struct.error, IndexError):
            have = len(buf) - start
            if have < want:
                raise Truncated(
                    f"the artifact ends at byte {cur.offset + have}, inside it"
                ) from None
            if want >= MAX_RECORD:
                raise Malformed(f"a record of more than {MAX_RECORD} bytes") from None
            want *= 4
            continue
        cur.move_to(end)
        return value


def iso_utc(seconds: float) -> str | None:
    """Unix seconds as ISO-8601 UTC (``2024-05-01T12:00:00Z``); None for 0 or out of range."""
    if seconds <= 0:
        return None
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    spec = "milliseconds" if seconds != int(seconds) else "seconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


class Cursor:
    """Reads forward through ``stream``; holds at most one chunk plus the value being read."""

    __slots__ = ("_base", "_buf", "_pos", "_stream")

    def __init__(self, stream: BinaryIO, start: int = 0) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self._base = start  # artifact offset of _buf[0]

    @property
    def offset(self) -> int:
        """The artifact offset of the next byte to read."""
        return self._base + self._pos

    def _fill(self, n: int) -> None:
        have = len(self._buf) - self._pos
        parts = [self._buf[self._pos :]]
        while have < n:
            chunk = self._stream.read(max(CHUNK, n - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self._base += self._pos
        self._buf = b"".join(parts)
        self._pos = 0
        if have < n:
            raise Truncated(f"the artifact ends at byte {self._base + have}, inside a value")

    def at_end(self) -> bool:
        """Whether no byte is left."""
        if self._pos < len(self._buf):
            return False
        try:
            self._fill(1)
        except Truncated:
            return True
        return False

    def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes ahead, without moving (fewer where the artifact ends sooner)."""
        if len(self._buf) - self._pos < n:
            with contextlib.suppress(Truncated):
                self._fill(n)
        return self._buf[self._pos : self._pos + n]

    def window(self, n: int) -> tuple[bytes, int]:
        """The buffer and the position in it of the next byte, with up to ``n`` bytes after it
        (fewer where the artifact ends sooner), for parsers that unpack in place; they move
        on with :meth:`move_to`."""
        if len(self._buf) - self._pos < n:
            with contextlib.suppress(Truncated):
                self._fill(n)
        return self._buf, self._pos

    def move_to(self, position: int) -> None:
        """Continue from ``position`` in the buffer :meth:`window` returned."""
        self._pos = position

    def take(self, n: int) -> bytes:
        if len(self._buf) - self._pos < n:
            self._fill(n)
        start = self._pos
        self._pos = start + n
        return self._buf[start : start + n]

    def skip(self, n: int) -> None:
        """Skips ``n`` bytes without holding them all at once."""
        while n > 0:
            step = min(n, CHUNK)
            self.take(step)
            n -= step

    def u8(self) -> int:
        if self._pos >= len(self._buf):
            self._fill(1)
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def u16(self) -> int:
        if len(self._buf) - self._pos < 2:
            self._fill(2)
        (value,) = _U16.unpack_from(self._buf, self._pos)
        self._pos += 2
        return int(value)

    def u32(self) -> int:
        if len(self._buf) - self._pos < 4:
            self._fill(4)
        (value,) = _U32.unpack_from(self._buf, self._pos)
        self._pos += 4
        return int(value)

    def u64(self) -> int:
        if len(self._buf) - self._pos < 8:
            self._fill(8)
        (value,) = _U64.unpack_from(self._buf, self._pos)
        self._pos += 8
        return int(value)

    def f32(self) -> float:
        (value,) = _F32.unpack(self.take(4))
        return float(value)

    # Big-endian, as Java's DataOutput writes.
    def be_u16(self) -> int:
        return int(_BE_U16.unpack(self.take(2))[0])

    def be_i32(self) -> int:
        return int(_BE_I32.unpack(self.take(4))[0])

    def be_i64(self) -> int:
        return int(_BE_I64.unpack(self.take(8))[0])

    def be_f32(self) -> float:
        return float(_BE_F32.unpack(self.take(4))[0])

    def be_f64(self) -> float:
        return float(_BE_F64.unpack(self.take(8))[0])
