"""LimeWire 5's downloads.dat: the downloads it meant to finish, each by its SHA-1, read from
files built by ``tests/p2p_limewire_builders.py`` as LimeWire's source writes them."""

from __future__ import annotations

import io

from hashwatch.scan.p2p.limewire_downloads import DownloadsDatReader
from hashwatch.scan.p2p.record import P2PReadProblem, P2PRecord
from hashwatch.scan.p2p.registry import reader_for
from tests import p2p_emule_builders as emule
from tests import p2p_limewire_builders as b

READER = DownloadsDatReader()


def _read(data: bytes) -> list[P2PRecord | P2PReadProblem]:
    return list(READER.read(io.BytesIO(data), len(data)))


def test_each_download_is_a_record_with_its_sha1_name_size_and_paths() -> None:
    made = b.benign_downloads(3)
    found = _read(b.downloads_dat(made))
    assert all(isinstance(r, P2PRecord) for r in found) and len(found) == 3
    first, _, torrent = (r for r in found if isinstance(r, P2PRecord))
    assert first.name == "garden-00.jpg" and first.size == made[0].size
    assert first.hashes == {"sha1_base32": made[0].urn.removeprefix("urn:sha1:")}
    assert first.save_path == made[0].save and first.complete is False
    assert first.details["download_type"] == "MANAGED"
    assert first.details["incomplete_file"].endswith("Incomplete\\T-garden-00.jpg")
    assert torrent.name == "garden-02.jpg" and torrent.size is None
    assert torrent.hashes == {"sha1_base32": made[2].urn.removeprefix("urn:sha1:")}
    assert torrent.details["memento"] == "LibTorrentBTDownloadMementoImpl"
    assert torrent.details["torrentPath"].endswith("garden-02.jpg.torrent")
    assert reader_for("downloads.bak", b.sample_downloads()) is not None


def test_a_truncated_file_keeps_the_downloads_before_the_cut() -> None:
    data = b.sample_downloads()
    found = _read(data[: len(data) * 2 // 3])
    records = [r for r in found if isinstance(r, P2PRecord)]
    assert [r.index for r in records] == [0]
    problem = found[-1]
    assert isinstance(problem, P2PReadProblem) and problem.index == 1


def test_a_count_beyond_the_list_and_limewire_4_files_are_said_plainly() -> None:
    data = b.downloads_dat(b.benign_downloads(2), count=5)
    found = _read(data)
    assert len([r for r in found if isinstance(r, P2PRecord)]) == 2
    assert isinstance(found[-1], P2PReadProblem) and found[-1].index == 2
    old = emule.createtimes_cache([("urn:sha1:" + "A" * 32, 1)])  # a HashMap, not a list
    problem = _read(old)[0]
    assert isinstance(problem, P2PReadProblem)
    assert "java.util.HashMap, not a list" in problem.message
    assert "LimeWire 4" in problem.message
