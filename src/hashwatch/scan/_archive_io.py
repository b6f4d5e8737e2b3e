"""The streams under :mod:`hashwatch.scan.archives`: counted, limited, never spilled to disk.

Kept apart from the format readers so each module stays small. Three pieces:

- :class:`Source` wraps whatever gives a member's bytes (a zip member, a tar member, a gzip
  layer, a 7z member) and counts every byte as it streams, because declared sizes can lie: a
  crossed limit or a decoder fault becomes :class:`Stop`, an ``OSError`` with a readable
  message, so any reader (``hash_stream`` included) treats it as a read error.
- :class:`Budget` is what one evidence file may still cost (bytes out of decompressors,
  memory for nested archives), shared by every level of nesting.
- :class:`Bridge` and ``_7z_sink.Sink`` turn py7zr's push (it writes each member into a
  file-like object it is given) into the pull a reader needs, through a small bounded queue
  filled by a thread: 7z members of any size stream in constant memory and nothing touches the disk.
"""

from __future__ import annotations

import contextlib
import io
import queue
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from hashwatch.signals.digests import READ_BLOCK_SIZE

__all__ = [
    "ArchiveLimits",
    "Bridge",
    "Budget",
    "LocalZipEntry",
    "Source",
    "Stop",
    "TarGuard",
    "local_zip_entries",
]

MiB = 1 << 20
CHUNK = READ_BLOCK_SIZE  # most bytes pulled from a decompressor, or queued, at once
MAX_TAR_READ = 16 * MiB  # tar headers (pax, GNU long names) are read whole: refuse huge ones


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what one evidence file may cost; all counted on bytes actually read."""

    max_depth: int = 32  # archives inside archives; deeper ones are hashed, not expanded
    max_members: int = 1_000_000  # per archive; the rest is reported as one error
    max_ratio: float = 1000.0  # bytes out / compressed bytes in, per member (or stream)...
    ratio_min_size: int = 1 * MiB  # ...once more than this came out (small files vary a lot)
    max_total_bytes: int = 64 << 30  # uncompressed bytes from one evidence file...
    max_total_factor: int = 20  # ...or this many times its size, whichever is more
    max_in_memory: int = 256 * MiB  # nested archives held at once (whole nesting stack)


class Stop(OSError):
    """A limit was crossed or the data is corrupt; an OSError so readers treat it as a fault."""


def describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) < 300 else text[:297] + "..."


def human(n: float) -> str:
    if n < 1024:
        return f"{n:g} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.4g} {unit}"


class Budget:
    """What one evidence file may still cost: uncompressed bytes, and memory for nesting."""

    def __init__(self, limits: ArchiveLimits, evidence_size: int) -> None:
        self.limit = max(limits.max_total_bytes, limits.max_total_factor * evidence_size)
        self.used = 0
        self.memory_left = limits.max_in_memory
        self.error: str | None = None

    def charge(self, n: int) -> None:
        self.used += n
        if self.used > self.limit and self.error is None:
            self.error = f"zip bomb: more than {human(self.limit)} uncompressed from one file"


class Source(io.RawIOBase):
    """A counted, limited, read-only view of ``inner`` that can give back a head it peeked.

    Bytes are counted against the evidence file's budget where ``charge`` (they came out of a
    decompressor) and against ``max_ratio`` where the compressed size ``packed`` is known.
    Faults of any type become :class:`Stop`, kept in ``error`` so the caller can report it
    whatever the code reading the stream did with the exception.
    """

    def __init__(
        self,
        inner: BinaryIO,
        budget: Budget,
        limits: ArchiveLimits,
        *,
        packed: int | None = None,
        charge: bool = True,
        owns: bool = True,
    ) -> None:
        super().__init__()
        self._inner, self._budget, self._limits = inner, budget, limits
        self._packed, self._charge, self._owns = packed, charge, owns
        self._head, self._head_pos = b"", 0
        self.given = 0
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._inner.seekable()

    def tell(self) -> int:
        return self._inner.tell() - (len(self._head) - self._head_pos)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset, whence = self.tell() + offset, io.SEEK_SET
        self._head, self._head_pos = b"", 0
        return self._inner.seek(offset, whence)

    def head(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current position, kept to be read again."""
        parts = [self._head[self._head_pos :]]
        have = len(parts[0])
        try:
            while have < n:
                block = self._pull(min(n - have, CHUNK))
                if not block:
                    break
                parts.append(block)
                have += len(block)
        finally:  # what was pulled before a fault is still given to the reader
            self._head, self._head_pos = b"".join(parts), 0
        return self._head[:n]

    def read(self, n: int | None = -1) -> bytes:
        """Full reads (``n`` bytes unless the end comes first), like a buffered file.

        The bytes come from the peeked head, then straight from ``inner`` in reads of at
        most ``n`` (never a scratch buffer per call: a small file read with its exact size
        costs one buffer of that size)."""
        if n is None or n < 0:
            return self.readall()
        parts: list[bytes] = []
        have = 0
        if self._head_pos < len(self._head):
            part = self._head[self._head_pos : self._head_pos + n]
            self._head_pos += len(part)
            if self._head_pos == len(self._head):
                self._head, self._head_pos = b"", 0
            parts.append(part)
            have = len(part)
        while have < n:
            data = self._pull(min(n - have, CHUNK))
            if not data:
                break
            parts.append(data)
            have += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readall(self) -> bytes:
        parts = []
        while block := self.read(CHUNK):
            parts.append(block)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head_pos < len(self._head):
            n = min(len(view), len(self._head) - self._head_pos)
            view[:n] = self._head[self._head_pos : self._head_pos + n]
            self._head_pos += n
            if self._head_pos == len(self._head):
                self._head, self._head_pos = b"", 0
            return n
        data = self._pull(min(len(view), CHUNK))
        view[: len(data)] = data
        return len(data)

    def _fail(self, message: str) -> Stop:
        self.error = self.error or message
        return Stop(self.error)

    def _pull(self, n: int) -> bytes:
        if self.error is not None:
            raise Stop(self.error)
        if self._budget.error is not None:
            raise self._fail(self._budget.error)
        try:
            data = self._inner.read(n)
        except Stop as exc:
            raise self._fail(str(exc)) from None
        except Exception as exc:  # zlib.error, EOFError, LZMAError, BadZipFile, CrcError, ...
            raise self._fail(f"corrupt data: {describe(exc)}") from exc
        self.given += len(data)
        if self._charge:
            self._budget.charge(len(data))
            if self._budget.error is not None:
                raise self._fail(self._budget.error)
        limits, packed = self._limits, self._packed
        over = self.given > limits.ratio_min_size
        if over and packed is not None and self.given > limits.max_ratio * max(packed, 1):
            raise self._fail(f"zip bomb: expansion ratio above {limits.max_ratio:g}")
        return data

    def close(self) -> None:
        if not self.closed and self._owns:
            with contextlib.suppress(Exception):  # a corrupt member may complain again
                self._inner.close()
        super().close()


def buffered(source: Source) -> BinaryIO:
    """``source`` as the file object libraries expect (full reads, ``seek`` where possible)."""
    return cast(BinaryIO, io.BufferedReader(source, 64 * 1024))


class TarGuard:
    """What tarfile reads through: it reads pax and GNU long-name headers whole, so a header
    claiming gigabytes would be allocated whole; such reads are refused instead."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > MAX_TAR_READ:
            raise Stop(f"tar header larger than {human(MAX_TAR_READ)}")
        return self._inner.read(n)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def seekable(self) -> bool:
        return self._inner.seekable()


class _Cancelled(Exception):
    """Raised in the 7z thread to unwind py7zr when the reader stops early."""


class Bridge:
    """py7zr's worker thread puts ("start", entry), ("data", bytes)..., ("end", None) per
    member and ("done", exception or None) at the end; the reader iterates entries and reads
    the current member's bytes. The queue holds 8 blocks: memory stays bounded."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=8)
        self._cancel = threading.Event()
        self._pending = memoryview(b"")
        self._open = False
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, work: Callable[[], None]) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(work,), name="hashwatch-7z", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()

    # -- the py7zr thread
    def put(self, kind: str, value: Any = None) -> None:
        while True:
            if self._cancel.is_set():
                raise _Cancelled
            with contextlib.suppress(queue.Full):
                self._queue.put((kind, value), timeout=0.05)
                return

    def _run(self, work: Callable[[], None]) -> None:
        try:
            work()
            self.put("done")
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the reader, which reports it
            with contextlib.suppress(_Cancelled):
                self.put("done", exc)

    # -- the reader
    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        while True:
            if self._failure is not None:
                raise self._failure
            kind, value = self._queue.get()
            if kind == "start":
                self._open, self._pending = True, memoryview(b"")
                return value
            if kind == "done":
                if value is None:
                    raise StopIteration
                self._failure = value

    def read(self, n: int = -1) -> bytes:
        while not self._pending:
            if not self._open:
                return b""
            kind, value = self._queue.get()
            if kind == "data":
                self._pending = value
            elif kind == "end":
                self._open = False
            else:  # the thread ended inside this member (CRC error, corrupt stream)
                self._open = False
                self._failure = value or EOFError("7z stream ended inside a member")
                raise self._failure
        n = len(self._pending) if n < 0 else n
        out, self._pending = bytes(self._pending[:n]), self._pending[n:]
        return out

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def drain(self, budget: Budget) -> None:
        """Skip what the reader left of this member (decompressed all the same: counted)."""
        while data := self.read(CHUNK):
            budget.charge(len(data))
            if budget.error is not None:
                raise Stop(budget.error)


@dataclass
class LocalZipEntry:
    """One member of a zip found by its local header (see :func:`local_zip_entries`)."""

    name: str
    size: int | None  # None where a data descriptor follows the data
    packed: int | None
    date_time: tuple[int, int, int, int, int, int]
    encrypted: bool
    stream: BinaryIO | None  # None: a method the damaged-zip path does not decode


class _LocalData(io.RawIOBase):
    """A member's data behind its local header: stored bytes, or deflate decoded until the
    stream says it ended (needed where a data descriptor hides the sizes)."""

    def __init__(self, stream: BinaryIO, start: int, packed: int | None, deflated: bool) -> None:
        super().__init__()
        self._stream, self._pos, self._left = stream, start, packed
        self._inflate = zlib.decompressobj(-15) if deflated else None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def _fetch(self, want: int) -> bytes:
        self._stream.seek(self._pos)
        data = self._stream.read(want)
        if not data:
            raise EOFError("zip member truncated")
        self._pos += len(data)
        self._left = None if self._left is None else self._left - len(data)
        return data

    def read(self, n: int | None = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n  # only Source reads this, in blocks
        if self._inflate is None:
            return self._fetch(min(n, self._left or 0)) if self._left else b""
        while not self._inflate.eof:
            if self._pending:
                out = self._inflate.decompress(self._pending, n)
                inflate = self._inflate  # past the end, the rest is in unused_data only
                self._pending = b"" if inflate.eof else inflate.unconsumed_tail
                if out:
                    return out
            elif self._left == 0:
                raise EOFError("zip member ends before its deflate stream does")
            else:
                self._pending = self._fetch(
                    64 * 1024 if self._left is None else min(64 * 1024, self._left)
                )
        return b""

    def end(self, budget: Budget) -> int:
        """Where the member's data ends: what is left is decompressed (and counted) to find it."""
        while data := self.read(CHUNK):
            budget.charge(len(data))
            if budget.error is not None:
                raise Stop(budget.error)
        unused = len(self._inflate.unused_data) if self._inflate is not None else 0
        return self._pos - unused - len(self._pending)


_SIGNATURES = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06")


def local_zip_entries(stream: BinaryIO, budget: Budget) -> Iterator[LocalZipEntry]:
    """The members of a zip read front to back from their local headers.

    For a zip whose central directory is lost (truncated, carved from a disk): what is there
    is still read, and the walk stops with :class:`Stop` where the data does.
    """
    pos = 0
    while True:
        stream.seek(pos)
        header = stream.read(30)
        if not header or header[:4] in _SIGNATURES[1:]:
            return  # the end, or the central directory: every member was seen
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise Stop("zip truncated or damaged after its last complete member")
        flags, method, mtime, mdate, _, packed, size, nlen, xlen = struct.unpack(
            "<6xHHHHIIIHH", header
        )
        name = stream.read(nlen).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = stream.read(xlen)
        at = 0
        while 0xFFFFFFFF in (packed, size) and at + 4 <= len(extra):  # zip64: sizes in extra
            tag, length = struct.unpack_from("<HH", extra, at)
            if tag == 1 and length >= 16:
                size, packed = struct.unpack_from("<QQ", extra, at + 4)
            at += 4 + length
        described = bool(flags & 0x08)
        if described and (method != 8 or flags & 0x41):
            raise Stop("damaged zip: cannot find the end of a member without its sizes")
        start = pos + 30 + nlen + xlen
        data = _LocalData(stream, start, None if described else packed, method == 8)
        when = (
            (mdate >> 9) + 1980,
            (mdate >> 5) & 15,
            mdate & 31,
            mtime >> 11,
            (mtime >> 5) & 63,
            (mtime & 31) * 2,
        )
        readable = method in (0, 8) and not flags & 0x41
        stream_ = cast(BinaryIO, data) if readable else None
        yield LocalZipEntry(
            name,
            None if described else size,
            None if described else packed,
            when,
            bool(flags & 0x41),
            stream_,
        )
        if not described:
            pos = start + packed
            continue
        pos = data.end(budget)
        stream.seek(pos)
        pos += 4 if stream.read(4) == b"PK\x07\x08" else 0
        for skip in (12, 20):  # crc and sizes: 4-byte sizes, or 8-byte ones (zip64)
            stream.seek(pos + skip)
            if stream.read(4) in _SIGNATURES:
                break
        pos += skip
