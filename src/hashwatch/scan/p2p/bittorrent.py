"""BitTorrent's artifacts: ``.torrent`` files, clients' resume data and magnet links.

The readers live in :mod:`~hashwatch.scan.p2p.torrent`, :mod:`~hashwatch.scan.p2p.resume` and
:mod:`~hashwatch.scan.p2p.magnet`; this module registers them, most specific first (a
``.torrent`` or resume file may quote a magnet link; a text file is magnet's only when no
other reader claims it).
"""

from __future__ import annotations

from hashwatch.scan.p2p.magnet import MagnetReader
from hashwatch.scan.p2p.record import P2PArtifactReader
from hashwatch.scan.p2p.resume import (
    QBittorrentResumeReader,
    TransmissionResumeReader,
    UTorrentResumeReader,
)
from hashwatch.scan.p2p.torrent import TorrentReader

__all__ = ["READERS"]

READERS: tuple[P2PArtifactReader, ...] = (
    TorrentReader(),
    QBittorrentResumeReader(),
    UTorrentResumeReader(),
    TransmissionResumeReader(),
    MagnetReader(),
)
