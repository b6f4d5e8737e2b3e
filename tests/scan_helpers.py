"""Helpers for tests of scans: a progress that stops a scan part-way, as a kill would."""

from __future__ import annotations


class InterruptAtFile:
    """A scan's progress that stops the scan (the operator's Ctrl-C) once ``at`` files are
    done: the state holds what was stored so far, and ``--resume`` goes on from there."""

    def __init__(self, at: int = 1) -> None:
        self.at, self.seen = at, 0

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        self.seen += files
        if self.seen >= self.at:
            raise KeyboardInterrupt

    def phase(self, text: str) -> None:
        pass
