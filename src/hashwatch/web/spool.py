"""Uploaded list files, spooled under ``<data dir>/spool`` (mode 0700) while they are imported.

The importer reads a path, so a list file sent over HTTP is written to disk first — into a
private directory of the data directory, never the system's temporary directory, and removed
when the import ends. A server that is killed cannot remove its files; each file's name
carries the id of the process that wrote it, and a starting server removes every file whose
process is gone (and any file it does not recognise), so nothing accumulates across crashes
while the other workers of a running server keep theirs.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["Spool"]

_NAME = re.compile(r"^list-(\d+)-[0-9a-f]{16}\.upload$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a file of this pid is an earlier process's: this one has none yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)

    def clean(self) -> int:
        """Remove the files of processes that are gone; returns how many were removed."""
        removed = 0
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match and _alive(int(match.group(1))):
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.is_dir() and not path.is_symlink():
                    continue  # not ours to remove
                path.unlink()
                removed += 1
        return removed

    @contextlib.contextmanager
    def file(self) -> Iterator[tuple[BinaryIO, Path]]:
        """A new private file (0600) open for writing, removed when the block ends."""
        path = self.directory / f"list-{os.getpid()}-{secrets.token_hex(8)}.upload"
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        try:
            with os.fdopen(fd, "wb") as out:
                yield out, path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
