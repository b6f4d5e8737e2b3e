"""The media of a disk image, read-only: raw, split raw (.001, .002, ...) and EnCase E01 sets.

An image is recognised by its content: the EVF signature of an E01 segment, or for raw media a
partition table or a file-system boot sector where those live (then The Sleuth Kit decides).
Split sets are found by their names (the only place their order is written): ``x.001`` with
``x.002``..., and the E01/E02... set as libewf names it (``pyewf.glob``).

Every segment is opened with :func:`~hashwatch.signals.digests.open_evidence` (read-only,
``O_NOATIME``) and libewf is handed those file objects, so neither bytes nor access times
change and nothing is ever written beside the image. ``pytsk3`` and ``pyewf`` are imported
only when an image is met (the command line starts without them).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any, BinaryIO, Protocol

from hashwatch.signals.digests import open_evidence

__all__ = [
    "E01",
    "INSTALL_HINT",
    "RAW",
    "SPLIT_RAW",
    "MediaReader",
    "ewf_segment_number",
    "ewf_segments",
    "libraries",
    "looks_like_raw",
    "open_media",
    "split_raw_segments",
    "tsk_image",
]

E01, RAW, SPLIT_RAW = "E01", "raw", "split raw"
INSTALL_HINT = "disk images need pytsk3 and libewf-python: pip install pytsk3 libewf-python"
_EVF1 = b"EVF\x09\x0d\x0a\xff\x00"
_EVF2 = b"EVF2\x0d\x0a\x81\x00"
HEAD = 4096
_ISO_AT = 32769  # "CD001" of an ISO 9660 primary volume descriptor


def libraries() -> tuple[Any, Any]:
    """``(pytsk3, pyewf)``; :class:`ImportError` with :data:`INSTALL_HINT` if missing."""
    try:
        import pyewf
        import pytsk3
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return pytsk3, pyewf


def ewf_segment_number(head: bytes) -> int | None:
    """The segment number of an EWF segment starting with ``head``; None: not EWF."""
    if head[:8] == _EVF1 and len(head) >= 11:
        return int(struct.unpack_from("<H", head, 9)[0])
    if head[:8] == _EVF2 and len(head) >= 16:
        return int(struct.unpack_from("<I", head, 12)[0])
    return None


def looks_like_raw(head: bytes, iso: bytes = b"") -> bool:
    """Could this be raw media (a boot sector, a partition table, a superblock)? Only a
    filter: The Sleuth Kit decides whether it reads a volume or file system there."""
    if len(head) < 1082:
        return False
    return (
        head[510:512] == b"\x55\xaa"  # MBR, FAT and NTFS boot sectors
        or head[512:520] == b"EFI PART"  # GPT
        or head[1080:1082] == b"\x53\xef"  # ext2/3/4 superblock magic
        or head[1024:1026] in (b"H+", b"HX")  # HFS+ / HFSX
        or iso == b"CD001"
    )


def split_raw_segments(path: str) -> list[str]:
    """``x.001`` followed by ``x.002``, ``x.003``... as long as they exist (else [path])."""
    if not path.endswith(".001"):
        return [path]
    base = path[:-3]
    out = [path]
    while os.path.isfile(candidate := f"{base}{len(out) + 1:03d}"):
        out.append(candidate)
    return out


def ewf_segments(path: str) -> list[str]:
    """The segment files of the E01 set whose first segment is ``path`` (libewf's naming)."""
    _, pyewf = libraries()
    return [os.path.abspath(p) for p in pyewf.glob(path)]


class MediaReader(Protocol):
    """Random read access to the media of an image."""

    size: int

    def read_at(self, offset: int, n: int) -> bytes: ...

    def stored_hashes(self) -> dict[str, str]: ...

    def headers(self) -> dict[str, str]: ...

    def close(self) -> None: ...


class _RawReader:
    """Raw media in one or more segments, concatenated; ``os.pread`` on read-only files."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._files: list[BinaryIO] = []
        self._starts: list[int] = []
        self.size = 0
        try:
            for path in paths:
                f = open_evidence(path)
                self._files.append(f)
                self._starts.append(self.size)
                self.size += os.fstat(f.fileno()).st_size
        except OSError:
            self.close()
            raise

    def read_at(self, offset: int, n: int) -> bytes:
        parts: list[bytes] = []
        end = min(offset + n, self.size)
        while offset < end:
            i = max(k for k, start in enumerate(self._starts) if start <= offset)
            seg_end = self._starts[i + 1] if i + 1 < len(self._starts) else self.size
            data = os.pread(
                self._files[i].fileno(), min(end, seg_end) - offset, offset - self._starts[i]
            )
            if not data:
                break
            parts.append(data)
            offset += len(data)
        return b"".join(parts)

    def stored_hashes(self) -> dict[str, str]:
        return {}  # raw media stores none

    def headers(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files = []


class _FileObject:
    """What libewf reads a segment through (it needs read, seek, tell and get_size)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._size = os.fstat(f.fileno()).st_size

    def read(self, size: int = -1) -> bytes:
        return self._f.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def get_offset(self) -> int:
        return self._f.tell()

    def get_size(self) -> int:
        return self._size

    def close(self) -> None:
        self._f.close()


class _EwfReader:
    """An E01 set through libewf, given the segments as read-only file objects."""

    def __init__(self, paths: Sequence[str]) -> None:
        _, pyewf = libraries()
        self._objects = [_FileObject(open_evidence(p)) for p in paths]
        self.handle = pyewf.handle()
        try:
            self.handle.open_file_objects(self._objects)
        except Exception:
            self._close_files()
            raise
        self.size = int(self.handle.get_media_size())

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        return bytes(self.handle.read_buffer_at_offset(n, offset)) if n else b""

    def stored_hashes(self) -> dict[str, str]:
        """The digests the acquisition stored in the image (``md5``, ``sha1``), lower case."""
        out = {}
        for name in ("MD5", "SHA1"):
            value = self.handle.get_hash_value(name)
            if value:
                out[name.lower()] = str(value).lower()
        return out

    def headers(self) -> dict[str, str]:
        """Acquisition details (case number, examiner, notes, acquiry date...)."""
        out = {}
        for key, value in (self.handle.get_header_values() or {}).items():
            if value:
                out[str(key)] = str(value)
        return out

    def _close_files(self) -> None:
        for obj in self._objects:
            obj.close()

    def close(self) -> None:
        try:
            self.handle.close()
        finally:
            self._close_files()


def open_media(fmt: str, segments: Sequence[str]) -> MediaReader:
    """The media of an image of format ``fmt`` (:data:`E01`, :data:`RAW`, :data:`SPLIT_RAW`)."""
    if fmt == E01:
        return _EwfReader(segments)
    return _RawReader(segments)


def tsk_image(reader: MediaReader) -> Any:
    """A ``pytsk3.Img_Info`` reading through ``reader`` (The Sleuth Kit never opens a path)."""
    pytsk3, _ = libraries()

    base: Any = pytsk3.Img_Info

    class _Img(base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

        def close(self) -> None:
            pass

        def read(self, offset: int, size: int) -> bytes:
            return reader.read_at(offset, size)

        def get_size(self) -> int:
            return reader.size

    return _Img()
