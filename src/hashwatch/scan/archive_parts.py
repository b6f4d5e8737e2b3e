"""A range of a large zip's members as one item of work: what a worker is told to read.

Kept apart from :mod:`hashwatch.scan.archive_split` (the planner) so that the walk and the
work units carry parts without importing it, as :mod:`hashwatch.scan.image_parts` does for
disk images. A part is small, frozen and picklable; its :attr:`key` is the same on every run
over the same archive, so ``--resume`` skips the parts already done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["ArchivePart"]


@dataclass(frozen=True, slots=True)
class ArchivePart:
    """Members ``[first, last)`` (central-directory order) of a zip of ``size`` bytes.

    ``head``: this part also makes the archive's own record (its digests over the whole file,
    one sequential read). ``budget``: the uncompressed bytes this part may take out of the
    archive, its share of the archive's limit (:mod:`hashwatch.scan.archive_split`).
    """

    first: int
    last: int
    members: int  # members in the archive's central directory
    size: int  # the archive file's size
    budget: int
    head: bool = False

    @property
    def key(self) -> str:
        """Stable over runs: the member range and the archive's member count."""
        return json.dumps(["zip", self.first, self.last, self.members], separators=(",", ":"))

    @property
    def label(self) -> str:
        """How a record of the part itself (an error) is named: ``[members 1-500 of 2000]``."""
        return f"[members {self.first + 1}-{self.last} of {self.members}]"
