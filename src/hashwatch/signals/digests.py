"""Byte digests of a file from ONE streamed read: MD5, SHA-1, SHA-256, ED2K and Gnutella SHA-1.

Large files are read in blocks and never held whole in memory. Each block is fed to every
digest; for files above ``PARALLEL_MIN_SIZE`` the MD5 update runs on a second thread (hashlib
and pycryptodome release the GIL), because MD5 alone costs as much as SHA-1 + SHA-256 with
SHA-NI and the issue asks for all digests within 1.5x of ``sha256sum``'s wall time.

ED2K (eDonkey/eMule) hashes 9,728,000-byte chunks with MD4. Two variants exist for files whose
size is an exact non-zero multiple of the chunk: "blue" (eMule today) hashes the chunk digests
as they are, "red" (old eDonkey) appends MD4 of the empty string as one more chunk.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO

from Crypto.Hash import MD4

__all__ = [
    "ED2K_CHUNK_SIZE",
    "ByteDigests",
    "DigestAccumulator",
    "digest_bytes",
    "digest_file",
    "digest_stream",
    "open_evidence",
]

ED2K_CHUNK_SIZE = 9_728_000
READ_BLOCK_SIZE = ED2K_CHUNK_SIZE // 8  # 1,216,000 bytes: a block never straddles a chunk
PARALLEL_MIN_SIZE = 16 * 1024 * 1024
_MD4_EMPTY = MD4.new().digest()

_md5_thread: ThreadPoolExecutor | None = None


def _md5_worker() -> ThreadPoolExecutor:
    global _md5_thread
    if _md5_thread is None:
        _md5_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hashwatch-md5")
    return _md5_thread


@dataclass(frozen=True)
class ByteDigests:
    """The byte-level identifiers of one file, lowercase hex (Gnutella: uppercase Base32)."""

    size: int
    md5: str
    sha1: str
    sha256: str
    ed2k: str
    ed2k_red: str | None  # only where it differs from ``ed2k`` (size a multiple of the chunk)
    sha1_base32: str

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "size": self.size,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "ed2k": self.ed2k,
        }
        if self.ed2k_red is not None:
            out["ed2k_red"] = self.ed2k_red
        out["sha1_base32"] = self.sha1_base32
        return out


class DigestAccumulator:
    """Feed blocks in order with :meth:`update`, then call :meth:`finish` once."""

    def __init__(self, *, threaded: bool = False) -> None:
        self._md5 = hashlib.md5()
        self._sha1 = hashlib.sha1()
        self._sha256 = hashlib.sha256()
        self._chunk = MD4.new()
        self._chunk_fill = 0
        self._chunk_digests: list[bytes] = []
        self._size = 0
        self._threaded = threaded
        self._pending: Future[None] | None = None

    def update(self, block: bytes | memoryview) -> None:
        if not block:
            return
        view = memoryview(block)
        if self._threaded:
            if self._pending is not None:
                self._pending.result()
            self._pending = _md5_worker().submit(self._md5.update, view)
        else:
            self._md5.update(view)
        self._sha1.update(view)
        self._sha256.update(view)
        self._size += len(view)
        while view:
            room = ED2K_CHUNK_SIZE - self._chunk_fill
            part = view[:room]
            self._chunk.update(part)
            self._chunk_fill += len(part)
            view = view[len(part) :]
            if self._chunk_fill == ED2K_CHUNK_SIZE:
                self._chunk_digests.append(self._chunk.digest())
                self._chunk = MD4.new()
                self._chunk_fill = 0

    def finish(self) -> ByteDigests:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        sha1 = self._sha1.digest()
        if self._size <= ED2K_CHUNK_SIZE:
            # Up to one full chunk, eMule uses the chunk's MD4 itself; old eDonkey ("red")
            # still appended the empty chunk when the file filled the chunk exactly.
            blue = self._chunk_digests[0] if self._chunk_digests else self._chunk.digest()
            red = None
            if self._size == ED2K_CHUNK_SIZE:
                red = MD4.new(blue + _MD4_EMPTY).digest()
        else:
            chunks = list(self._chunk_digests)
            if self._chunk_fill:
                chunks.append(self._chunk.digest())
            blue = MD4.new(b"".join(chunks)).digest()
            red = None
            if self._chunk_fill == 0:
                red = MD4.new(b"".join([*chunks, _MD4_EMPTY])).digest()
        return ByteDigests(
            size=self._size,
            md5=self._md5.hexdigest(),
            sha1=sha1.hex(),
            sha256=self._sha256.hexdigest(),
            ed2k=blue.hex(),
            ed2k_red=red.hex() if red is not None and red != blue else None,
            sha1_base32=base64.b32encode(sha1).decode("ascii"),
        )


def digest_bytes(data: bytes) -> ByteDigests:
    acc = DigestAccumulator()
    for start in range(0, len(data), READ_BLOCK_SIZE):
        acc.update(memoryview(data)[start : start + READ_BLOCK_SIZE])
    return acc.finish()


def open_evidence(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file read-only without updating its access time where the OS allows it.

    Evidence must not change, not even its timestamps: ``O_NOATIME`` keeps atime as it was
    (permitted for the file's owner and for root; otherwise we fall back to a plain read-only
    open, which on ``relatime`` mounts changes atime at most once a day).
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    noatime = getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags | noatime)
    except PermissionError:
        if not noatime:
            raise
        fd = os.open(path, flags)
    return os.fdopen(fd, "rb", buffering=0)


def read_blocks(
    stream: BinaryIO, block_size: int = READ_BLOCK_SIZE, size: int | None = None
) -> Iterable[bytes]:
    """The stream's bytes in blocks. With ``size`` (the size the walk or the archive stated)
    a file smaller than a block is read with one read of exactly its size and a one-byte read
    that finds the end, instead of a block-sized buffer per read; a stream longer than it
    said goes on in whole blocks."""
    left = size if size is not None and 0 <= size < block_size else None
    while True:
        if left is None:
            want = block_size
        elif left > 0:
            want = left
        else:
            want, left = 1, None  # the end, or more than stated: whole blocks from here
        block = stream.read(want)
        if not block:
            return
        if left:
            left -= len(block)
        yield block


def digest_stream(
    stream: BinaryIO,
    size: int | None = None,
    *,
    keep: Callable[[bytes, int | None], bool] | None = None,
    also: Sequence[Callable[[bytes], None]] = (),
) -> tuple[ByteDigests, bytes | None]:
    """Digest a stream in one read. ``keep(first_block, size)`` decides whether the whole
    content is also returned (images are decoded from memory without a second read);
    ``also`` are fed every block in order too (BitTorrent's hashes when asked for)."""
    threaded = size is not None and size >= PARALLEL_MIN_SIZE
    acc = DigestAccumulator(threaded=threaded)
    kept: list[bytes] | None = None
    first = True
    for block in read_blocks(stream, size=size):
        if first:
            first = False
            if keep is not None and keep(block, size):
                kept = []
        if kept is not None:
            kept.append(block)
        acc.update(block)
        for feed in also:
            feed(block)
    if first and keep is not None:
        keep(b"", size)
    digests = acc.finish()
    return digests, (b"".join(kept) if kept is not None else None)


def digest_file(
    path: str | os.PathLike[str],
    *,
    keep: Callable[[bytes, int | None], bool] | None = None,
    also: Sequence[Callable[[bytes], None]] = (),
) -> tuple[ByteDigests, bytes | None]:
    """:func:`digest_stream` over a file opened as evidence (read-only, atime kept)."""
    with open_evidence(path) as stream:
        return digest_stream(stream, os.fstat(stream.fileno()).st_size, keep=keep, also=also)
