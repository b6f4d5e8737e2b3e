"""What a P2P client artifact holds: one :class:`P2PRecord` per file it shared, downloaded or
meant to download, and the :class:`P2PArtifactReader` seam each client format implements.

A P2P client keeps records of files after the files themselves are deleted: eMule's
``known.met``, a BitTorrent client's resume data, a ``.torrent`` file. Each record names the
file by the hashes hashwatch matches (ED2K, Gnutella's urn:sha1, BitTorrent's), so a deleted
file can still be a lead, with when and under which name it was shared.

A reader never raises for bad input: a truncated or malformed artifact yields the records it
could read and then one :class:`P2PReadProblem` saying where and why it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

__all__ = ["P2PArtifactReader", "P2PReadProblem", "P2PRecord"]


@dataclass(frozen=True)
class P2PRecord:
    """One file as a P2P client recorded it.

    ``hashes`` maps a hash name to its canonical value. Names that are registered signal
    types (``ed2k``, ``sha1_base32``, ``sha1``, ``md5``, ``sha256``, ``bt_v2_root``, ...)
    are matched against the lists; the others (``btih`` — a v1 info-hash in lower-case hex,
    ``btmh`` — a v2 info-hash multihash in hex, ``aich`` — eMule's AICH root in Base32) are
    identifiers kept for the report and for linking records to one another.
    """

    client: str  # "emule", "amule", "shareaza", "limewire", "frostwire", "qbittorrent", ...
    artifact: str  # the kind of artifact: "known.met", "part.met", "torrent", "magnet", ...
    index: int  # the record's position in its artifact, from 0
    name: str | None = None  # the file name the client recorded
    size: int | None = None  # bytes
    hashes: dict[str, str] = field(default_factory=dict)
    # ISO-8601 UTC times by what they mean: "last_shared", "last_seen_complete", "added",
    # "completed", "last_active", ...
    dates: dict[str, str] = field(default_factory=dict)
    complete: bool | None = None  # True: completed/shared; False: in progress; None: unknown
    completeness: float | None = None  # 0.0-1.0 where the artifact says (a part file's gaps)
    save_path: str | None = None  # where the client saved or shares the file
    # Everything else the artifact says, JSON-serialisable (requests, transferred bytes,
    # the torrent's name, piece length, file index, tracker, ...).
    details: dict[str, Any] = field(default_factory=dict)
    # Why a record cannot be matched by its hashes, said plainly (e.g. a file of a
    # multi-file v1 torrent: its pieces span files); None when it can.
    unmatchable: str | None = None


@dataclass(frozen=True)
class P2PReadProblem:
    """Where reading an artifact stopped or skipped, and why (never the whole content)."""

    client: str
    artifact: str
    offset: int | None  # byte offset in the artifact where the problem was found
    message: str
    index: int | None = None  # the record it concerns, when one


class P2PArtifactReader(ABC):
    """One client format. Readers are registered in :mod:`hashwatch.scan.p2p.registry`."""

    client: ClassVar[str]
    artifact: ClassVar[str]

    @abstractmethod
    def recognises(self, name: str, head: bytes) -> bool:
        """Whether a file with this base name, starting with these bytes (up to 4 KiB), is
        this artifact. Decided from the name and the head alone, cheaply."""

    @abstractmethod
    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        """The records of the artifact, in order, read in bounded memory (records are
        streamed, never the whole artifact held unless it is small); a problem is yielded,
        never raised, and reading goes on past it where the format allows."""

    def problem(self, offset: int | None, message: str, index: int | None = None) -> P2PReadProblem:
        """A problem of this reader's artifact at byte ``offset`` (of record ``index``)."""
        return P2PReadProblem(self.client, self.artifact, offset, message, index)
