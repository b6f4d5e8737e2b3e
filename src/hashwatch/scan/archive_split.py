"""Large zips split into parts of member ranges, so that one archive does not hold one worker.

A zip's central directory lists every member with its compressed size, so the scanning
process can plan a large zip without reading any member: the :class:`ArchivePlanner` turns a
zip above ``split_bytes`` (``HASHWATCH_ARCHIVE_SPLIT_BYTES``, 1 GiB by default; 0: never split)
into parts of consecutive members ``[first, last)`` whose compressed bytes add up to about
``part_bytes`` (256 MiB, or ``split_bytes`` where that is smaller; larger for a directory of
many entries, which every part reads again: see :data:`ENTRY_BYTES`), each an
:class:`~hashwatch.scan.walk.EvidenceFile` carrying an
:class:`~hashwatch.scan.archive_parts.ArchivePart`, as disk images are planned into parts
(:mod:`hashwatch.scan.images`). Workers read a part with
:func:`~hashwatch.scan.archives.expand_evidence`, which lists the whole directory (names and
member count as in one listing: duplicate names get the same `` [#n]``) and opens only the
part's members; a nested archive inside a member is expanded by the part that holds the member.

- **The archive's own record** (digests over the whole file) is made by the first part, which
  reads the file once more from start to end after its members; its size on the progress bar
  and in work units is its members' bytes plus the file's.
- **Limits** (:class:`~hashwatch.scan.archives.ArchiveLimits`) are the archive's, shared: each
  part may take out of the zip a share of the archive's uncompressed-bytes limit proportional
  to its members' compressed bytes, rounded down, so that the shares never add up to more
  than the whole archive was allowed. Members past ``max_members`` are in no part, and the
  last part reports "too many members" as the whole listing would. Nesting depth, the
  per-member ratio and the memory for nested archives are per member or per process, as
  before. A part whose share is spent stops, and says so in a record of its own
  (``big.zip [members 501-1000 of 2000]``); the other parts go on, within their shares.
- **Only zip is split.** A tar has no directory: its members could be found by one walk over
  the headers (seeking over each member's data, cheap for a plain tar on a disk), but that
  walk, its stable resume keys and a reader that starts at a header offset are not built, so
  a tar is one unit. A compressed tar (``.tar.gz``, ``.tar.xz``, ...) and 7z cannot be
  entered in the middle without first decompressing everything before it (or an index of
  the decompressor's state at each entry point): they stay one unit. A zip whose directory
  cannot be read (damaged, carved) is read whole from its local headers, as before.

Planning is deterministic (``--resume`` relies on it) and cached per zip, since a scan walks
the evidence twice (to count, then to work).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import replace

from hashwatch.scan._archive_io import ArchiveLimits, Budget
from hashwatch.scan.archive_parts import ArchivePart
from hashwatch.scan.walk import EvidenceFile
from hashwatch.signals.digests import open_evidence

__all__ = ["ARCHIVE_PART_BYTES", "ARCHIVE_SPLIT_BYTES", "ArchivePlanner"]

ARCHIVE_SPLIT_BYTES = 1 << 30  # zips larger than this are split...
ARCHIVE_PART_BYTES = 256 << 20  # ...into parts of about this many compressed bytes
_LOCAL_HEADER = 30  # a member's local header, before its name and extra field
# Every part lists the whole directory again: ~11 us an entry measured (docs/benchmarks.md),
# what hashing ~330 bytes costs. A part is given at least 4 KiB per entry of the directory
# (so the listing stays near a tenth of its work), but never more than the split threshold.
ENTRY_BYTES = 4096


def _cost(info: zipfile.ZipInfo) -> int:
    """A member's bytes in the file: local header, name, extra field, compressed data."""
    name = len(info.filename.encode("utf-8", "replace"))
    return _LOCAL_HEADER + name + len(info.extra) + info.compress_size


class ArchivePlanner:
    """Turns the walk's files into work: a zip above ``split_bytes`` becomes its parts, every
    other file (disk image parts included) passes through unchanged."""

    def __init__(
        self,
        split_bytes: int = ARCHIVE_SPLIT_BYTES,
        *,
        part_bytes: int | None = None,
        limits: ArchiveLimits | None = None,
    ) -> None:
        self.split_bytes = split_bytes
        self.part_bytes = part_bytes or min(split_bytes, ARCHIVE_PART_BYTES)
        self.limits = limits or ArchiveLimits()
        self._plans: dict[str, list[EvidenceFile]] = {}

    def expand(self, files: Iterable[EvidenceFile]) -> Iterator[EvidenceFile]:
        for ef in files:
            plain = ef.error is not None or ef.part is not None or ef.archive_part is not None
            if plain or self.split_bytes <= 0 or ef.size <= self.split_bytes:
                yield ef
                continue
            if ef.key not in self._plans:
                self._plans[ef.key] = self._plan(ef) or [ef]
            yield from self._plans[ef.key]

    def _members(self, ef: EvidenceFile) -> list[zipfile.ZipInfo] | None:
        """The central directory's entries; None for anything else (read whole, as before)."""
        try:
            with open_evidence(ef.path) as raw:
                if raw.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
                    return None
                raw.seek(0)
                with zipfile.ZipFile(raw) as zf:
                    return zf.infolist()
        except Exception:  # damaged, unreadable, changed: the worker reads it and says why
            return None

    def _plan(self, ef: EvidenceFile) -> list[EvidenceFile] | None:
        infos = self._members(ef)
        if infos is None:
            return None
        planned = infos[: self.limits.max_members]
        ranges: list[tuple[int, int, int]] = []  # first, last, compressed bytes
        part_bytes = max(self.part_bytes, min(len(infos) * ENTRY_BYTES, self.split_bytes))
        first = cost = 0
        for index, info in enumerate(planned):
            if index > first and cost + _cost(info) > part_bytes:
                ranges.append((first, index, cost))
                first, cost = index, 0
            cost += _cost(info)
        if planned:
            ranges.append((first, len(planned), cost))
        if len(ranges) < 2:
            return None
        if len(infos) > len(planned):  # the last part meets the member that is one too many
            first, _, cost = ranges[-1]
            ranges[-1] = (first, len(planned) + 1, cost)
        whole = Budget(self.limits, ef.size).limit
        total = sum(cost for _, _, cost in ranges)
        out = []
        for number, (first, last, cost) in enumerate(ranges):
            share = whole * cost // total if total else whole // len(ranges)
            part = ArchivePart(first, last, len(infos), ef.size, share, head=number == 0)
            size = cost + (ef.size if part.head else 0)  # the head reads the file once more
            out.append(replace(ef, size=size, archive_part=part))
        return out
