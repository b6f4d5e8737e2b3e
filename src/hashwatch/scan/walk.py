"""The evidence files under the roots of a scan, in a stable order, each with what went wrong.

The walk only looks: it ``lstat``s and lists directories, it never opens a file. What it yields
is what a scan worker needs to read one file (:class:`EvidenceFile`, small, frozen and
picklable, so work units can cross process and machine boundaries) and what a resumed scan
needs to recognise a file it has done already (:attr:`EvidenceFile.key`).

Symbolic links are never followed, neither to files nor to directories: a link may point out
of the evidence (``/etc``, another case) or back into it (a loop), and following it would read
something else than what was seized. A link is reported as such. Special files (FIFOs, sockets,
devices) are reported and never opened: opening a FIFO blocks until a writer appears, reading a
device reads the machine. Directories are walked with an explicit stack, so a deep tree cannot
exhaust the interpreter's recursion limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hashwatch.scan.archive_parts import ArchivePart
from hashwatch.scan.image_parts import ImagePart

__all__ = ["SYMLINK_NOT_FOLLOWED", "EvidenceFile", "walk_evidence"]

SYMLINK_NOT_FOLLOWED = "symbolic link not followed"
_EFFECTIVE = os.access in os.supports_effective_ids

_SPECIAL = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """One file of the evidence as the walk saw it (``error`` set: it will not be read)."""

    root: str  # the absolute evidence root it was found under
    path: str  # absolute, links not resolved
    size: int  # 0 where nothing will be read (links, special files, errors)
    mtime_ns: int  # from lstat; 0 where even lstat failed
    error: str | None = None
    # Set: not the file itself but a part of the disk image it is (``path``, its first
    # segment), planned by hashwatch.scan.images; None for every other file.
    part: ImagePart | None = None
    # Set: not the whole zip but a range of its members (``path`` is the zip), planned by
    # hashwatch.scan.archive_split; None for every other file.
    archive_part: ArchivePart | None = None

    @property
    def key(self) -> str:
        """A stable key for resume: the same file, unchanged, gives the same key on any run.

        JSON, because paths may hold any character but NUL (and undecodable bytes, kept as
        surrogate escapes, which ``ensure_ascii`` writes as ``\\udcXX``): a separator-joined
        string could be ambiguous.
        """
        fields: list[object] = [self.root, self.path, self.size, self.mtime_ns]
        if self.part is not None:
            fields.append(self.part.key)
        if self.archive_part is not None:
            fields.append(self.archive_part.key)
        return json.dumps(fields, separators=(",", ":"))


def _strerror(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def _classify(root: str, path: str, st: os.stat_result) -> EvidenceFile | None:
    """The record of a non-directory; ``None`` for a directory (to be walked)."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return None
    if stat.S_ISREG(mode):
        # A stat needs only the directory's permissions; say now that reading will fail,
        # for the ids the scan opens files with (effective ones, where the OS can tell).
        if not os.access(path, os.R_OK, effective_ids=_EFFECTIVE):
            denied = "cannot read: Permission denied"
            return EvidenceFile(root, path, st.st_size, st.st_mtime_ns, denied)
        return EvidenceFile(root, path, st.st_size, st.st_mtime_ns)
    if stat.S_ISLNK(mode):
        return EvidenceFile(root, path, 0, st.st_mtime_ns, SYMLINK_NOT_FOLLOWED)
    kind = _SPECIAL.get(stat.S_IFMT(mode), "unknown file type")
    return EvidenceFile(root, path, 0, st.st_mtime_ns, f"special file not read ({kind})")


def _walk_dir(root: str, top: str) -> Iterator[EvidenceFile]:
    """Depth first, entries sorted by name, with a stack of directories still to list."""
    stack: list[Iterator[tuple[str, os.stat_result | OSError]]] = []

    def listing(directory: str) -> Iterator[tuple[str, os.stat_result | OSError]] | EvidenceFile:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            mtime = 0
            with contextlib.suppress(OSError):
                mtime = os.lstat(directory).st_mtime_ns
            error = f"cannot list directory: {_strerror(exc)}"
            return EvidenceFile(root, directory, 0, mtime, error)

        def stats() -> Iterator[tuple[str, os.stat_result | OSError]]:
            for entry in entries:
                try:
                    yield entry.path, entry.stat(follow_symlinks=False)
                except OSError as exc:
                    yield entry.path, exc

        return stats()

    first = listing(top)
    if isinstance(first, EvidenceFile):
        yield first
        return
    stack.append(first)
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        path, st = item
        if isinstance(st, OSError):
            yield EvidenceFile(root, path, 0, 0, f"cannot read: {_strerror(st)}")
            continue
        record = _classify(root, path, st)
        if record is not None:
            yield record
            continue
        sub = listing(path)
        if isinstance(sub, EvidenceFile):
            yield sub
        else:
            stack.append(sub)


def walk_evidence(roots: Sequence[str | os.PathLike[str]]) -> Iterator[EvidenceFile]:
    """Every file under ``roots``, roots in the order given, each tree in sorted name order.

    A root that is a file is yielded as itself; a root that is a symbolic link is reported,
    not followed, like any other link (pass the real path to scan what it points to). Paths
    are made absolute without resolving links, so what is reported is where it was found.
    """
    for raw in roots:
        root = os.path.abspath(os.fspath(Path(raw)))
        try:
            st = os.lstat(root)
        except OSError as exc:
            yield EvidenceFile(root, root, 0, 0, f"cannot read: {_strerror(exc)}")
            continue
        record = _classify(root, root, st)
        if record is not None:
            yield record
        else:
            yield from _walk_dir(root, root)
