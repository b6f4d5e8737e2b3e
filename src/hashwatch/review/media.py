"""Full-size media read from the evidence on demand, never copied into the database.

An item is read where the scan found it: a plain file with the read-only, no-access-time
opener of the scan (:func:`hashwatch.signals.digests.open_evidence`), an archive member in
place with the scan's own archive reader (:func:`hashwatch.scan.archives.expand_evidence`), an
item of a disk image (a file, a deleted file, a carved picture, an archive member in a file of
the image) in place with the scan's own image reader
(:func:`hashwatch.scan.image_lookup.read_image_item`); nothing is extracted to disk. The bytes
are checked against the SHA-256 the scan recorded: when the evidence is not reachable, was
changed, or the item was never hashed, the outcome says "not available" and why, so a page can
show the thumbnail instead.

:func:`read_evidence_thumbnail` makes an item's small JPEG from those bytes as the scan makes
it (the same bytes), for a case scanned without thumbnails (``hashwatch scan --no-thumbnails``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Generator
from dataclasses import dataclass
from typing import BinaryIO, cast

from hashwatch.errors import ConfigError, DecodeError
from hashwatch.scan.archives import ArchiveLimits, expand_evidence, safe_display
from hashwatch.scan.image_lookup import read_image_item
from hashwatch.scan.model import ARCHIVE_SEPARATOR
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.digests import open_evidence

__all__ = [
    "DEFAULT_MAX_MEDIA_BYTES",
    "MediaRead",
    "read_evidence_item",
    "read_evidence_thumbnail",
]

DEFAULT_MAX_MEDIA_BYTES = 1024 * 1024 * 1024  # what one full-size view may hold in memory
_CHANGED = "the evidence changed since the scan (SHA-256 differs)"


@dataclass(frozen=True)
class MediaRead:
    """The item's bytes (``available``), or why they cannot be shown (``reason``)."""

    available: bool
    data: bytes | None = None
    reason: str | None = None

    @classmethod
    def missing(cls, reason: str) -> MediaRead:
        return cls(False, None, f"not available: {reason}")


def _evidence_file(path: str) -> tuple[str, str] | None:
    """``(file on disk, display path)`` of the evidence file holding ``path``: the path
    itself when it is a regular file, else the first ``!/``-prefix that is one."""
    candidates = [path]
    start = 0
    while (at := path.find(ARCHIVE_SEPARATOR, start)) >= 0:
        candidates.insert(len(candidates) - 1, path[:at])
        start = at + len(ARCHIVE_SEPARATOR)
    for candidate in candidates:
        try:
            if stat.S_ISREG(os.lstat(candidate).st_mode):
                return candidate, safe_display(candidate)
        except (OSError, ValueError):
            continue
    return None


def _read_all(stream: BinaryIO, limit: int) -> bytes | None:
    data = stream.read(limit + 1)
    return None if len(data) > limit else data


def read_evidence_item(
    path: str,
    sha256: str | None,
    *,
    root: str | None = None,
    max_bytes: int = DEFAULT_MAX_MEDIA_BYTES,
    limits: ArchiveLimits | None = None,
) -> MediaRead:
    """The full bytes of the item the scan recorded at ``path`` (an archive member as
    ``outer.zip!/inner/file``, an item of a disk image as ``disk.E01!/p2(ext4)/a.jpg``),
    checked against its recorded ``sha256``.

    Read-only: the evidence's access and modification times stay as they were (where the
    OS allows ``O_NOATIME``). Nothing raises for the evidence's sake: an unreachable,
    changed or oversized item is a :class:`MediaRead` with ``available`` False.
    """
    if not sha256:
        return MediaRead.missing("the scan recorded no SHA-256 for this item")
    found = _evidence_file(path)
    if found is None:
        return MediaRead.missing("the evidence file is not reachable at its recorded path")
    on_disk, shown = found
    data: bytes | None
    if shown == path:
        try:
            with open_evidence(on_disk) as fh:
                data = _read_all(fh, max_bytes)
        except OSError as exc:
            return MediaRead.missing(f"cannot read the evidence ({exc.strerror or exc})")
        if data is None:
            return MediaRead.missing(f"larger than {max_bytes} bytes")
    elif (
        image := read_image_item(on_disk, path, max_bytes, sha256=sha256, limits=limits)
    ) is not None:
        if image.data is None:
            return MediaRead.missing(f"{image.reason} (in the disk image)")
        data = image.data
    else:
        data = _read_member(on_disk, root or os.path.dirname(on_disk), path, max_bytes, limits)
        if data is None:
            return MediaRead.missing("the archive member could not be read from the evidence")
    if hashlib.sha256(data).hexdigest() != sha256.lower():
        return MediaRead.missing(_CHANGED)
    return MediaRead(True, data)


def _read_member(
    archive: str, root: str, member: str, max_bytes: int, limits: ArchiveLimits | None
) -> bytes | None:
    """The bytes of ``member`` read with the scan's archive reader, or None."""
    try:
        st = os.lstat(archive)
    except OSError:
        return None
    ef = EvidenceFile(root, archive, st.st_size, st.st_mtime_ns)
    found: list[bytes] = []

    def handle(stream: BinaryIO, display: str, size: int | None, mtime: str | None) -> None:
        if display == member and not found:
            data = _read_all(stream, max_bytes)
            if data is not None:
                found.append(data)

    items = cast(Generator[object, None, None], expand_evidence(ef, handle, limits))
    try:
        for _item in items:
            if found:
                break
    finally:
        items.close()  # closes the evidence file at once, not when collected
    return found[0] if found else None


def read_evidence_thumbnail(
    path: str, sha256: str | None, media_type: str | None, *, root: str | None, policy: str | None
) -> MediaRead:
    """The small JPEG the scan makes of an item (a picture's thumbnail, a video's contact
    sheet), made now from the item's bytes as :func:`read_evidence_item` reads and checks
    them; "not available" and why when they cannot be read or give no picture.

    The scan's own steps (:func:`hashwatch.signals.hasher.hash_stream` with thumbnails on):
    a picture decoded by the scan's PDQ policy (``policy``, its ``pdq_policy`` setting)
    keeping colour, reduced by :func:`~hashwatch.signals.exif.thumbnail_of`, else made by
    :func:`~hashwatch.signals.exif.thumbnail_jpeg`; a video's sheet by
    :func:`~hashwatch.signals.contact_sheet.contact_sheet_jpeg`. The same evidence gives the
    same bytes as a scan with thumbnails stored. A video that is a file of its own is checked
    and decoded from the file as the scan decodes it, never held in memory whole (whatever its
    size); one inside an archive or a disk image is read as :func:`read_evidence_item` reads it.
    """
    if media_type == "video" and sha256:
        found = _evidence_file(path)
        if found is not None and found[1] == path:
            return _video_sheet_from_file(found[0], sha256)
    read = read_evidence_item(path, sha256, root=root)
    if not read.available or read.data is None:
        return read
    jpeg = _thumbnail_jpeg(read.data, media_type, policy)
    if jpeg is None:
        what = "contact sheet" if media_type == "video" else "thumbnail"
        return MediaRead.missing(f"no {what} can be made of this item's evidence")
    return MediaRead(True, jpeg)


def _video_sheet_from_file(on_disk: str, sha256: str) -> MediaRead:
    """A video file's contact sheet: its SHA-256 checked in blocks, then the sheet decoded
    from the same open file (read-only, access time kept)."""
    from hashwatch.signals.contact_sheet import contact_sheet_jpeg
    from hashwatch.signals.digests import READ_BLOCK_SIZE

    try:
        with open_evidence(on_disk) as fh:
            digest = hashlib.sha256()
            while block := fh.read(READ_BLOCK_SIZE):
                digest.update(block)
            if digest.hexdigest() != sha256.lower():
                return MediaRead.missing(_CHANGED)
            fh.seek(0)
            jpeg = contact_sheet_jpeg(fh)
    except OSError as exc:
        return MediaRead.missing(f"cannot read the evidence ({exc.strerror or exc})")
    if jpeg is None:
        return MediaRead.missing("no contact sheet can be made of this item's evidence")
    return MediaRead(True, jpeg)


def _thumbnail_jpeg(data: bytes, media_type: str | None, policy: str | None) -> bytes | None:
    if media_type == "video":
        from hashwatch.signals.contact_sheet import contact_sheet_jpeg

        return contact_sheet_jpeg(data)
    if media_type != "image":
        return None
    from hashwatch.signals.exif import thumbnail_jpeg, thumbnail_of
    from hashwatch.signals.hasher import HashOptions
    from hashwatch.signals.image import decode_image

    try:
        hints = HashOptions(policy=policy).pdq_policy if policy else HashOptions().pdq_policy
    except ConfigError:  # a policy this version does not know: the default's decode
        hints = HashOptions().pdq_policy
    try:
        decoded = decode_image(data, hints, keep_colour=True)
    except (DecodeError, MemoryError, OSError, ValueError):
        return None
    colour = decoded.colour
    del decoded  # the luma planes go; the colour picture is all the thumbnail needs
    thumb = thumbnail_of(colour) if colour is not None else None
    return thumb if thumb is not None else thumbnail_jpeg(data)
