"""BitTorrent's file hashes: the v2 root against BEP 52 written out plainly, the v1 pieces
digest against its definition, and a curator's list entry made from media matching the
torrents of that media."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from hashwatch.app import Hashwatch
from hashwatch.matching.matcher import Signal
from hashwatch.scan.p2p.record import P2PRecord
from hashwatch.scan.p2p.registry import reader_for
from hashwatch.signals.bittorrent import BitTorrentAccumulator, v1_pieces_digest, v2_root
from hashwatch.signals.hasher import HashOptions, hash_stream
from hashwatch.signals.types import HashType, signal_type
from tests.media import scene
from tests.p2p_bt_builders import benign, direct_v2_root, info_dict, torrent

# BEP 52's cases, and 37 leaves: a tree padded at three levels.
SIZES = [0, 1, 16 * 1024, 16 * 1024 + 1, 1024 * 1024 + 7, 36 * 16 * 1024 + 5]


@pytest.mark.parametrize("size", SIZES)
def test_v2_root_is_bep52s_merkle_root(size: int) -> None:
    data = benign(size, size)
    expected = direct_v2_root(data).hex() if size else None
    assert v2_root(io.BytesIO(data)) == expected
    assert signal_type("bt_v2_root").hash_bytes(data) == expected
    # Fed in blocks that straddle the 16 KiB leaves, as the hasher's one read does.
    acc = BitTorrentAccumulator()
    for start in range(0, size, 10_000):
        acc.update(data[start : start + 10_000])
    assert acc.finish().v2_root == expected


@pytest.mark.parametrize("piece_length", [16 * 1024, 256 * 1024])
def test_v1_pieces_digest_is_sha256_of_the_piece_sha1s(piece_length: int) -> None:
    data = benign(9, 600_001)
    pieces = b"".join(
        hashlib.sha1(data[i : i + piece_length]).digest() for i in range(0, len(data), piece_length)
    )
    expected = f"{piece_length}:{hashlib.sha256(pieces).hexdigest()}"
    assert v1_pieces_digest(io.BytesIO(data), piece_length) == expected
    fs = hash_stream(
        io.BytesIO(data),
        "x.bin",
        len(data),
        HashOptions(bittorrent=True, bt_piece_lengths=(piece_length,)),
    )
    assert fs.bittorrent is not None and fs.bittorrent.v1_pieces == (expected,)
    assert fs.as_dict()["bt_v1_pieces"] == expected
    # Not asked for: not computed.
    assert hash_stream(io.BytesIO(data), "x.bin", len(data)).bittorrent is None


def test_a_listed_picture_is_found_through_its_torrents(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    buf = io.BytesIO()
    scene(41, (640, 480)).save(buf, "JPEG", quality=95)
    picture = buf.getvalue()
    assert len(picture) > 16 * 1024  # more than one v2 block, more than one 16 KiB piece
    path = tmp_path / "known.jpg"
    path.write_bytes(picture)
    sqlite_hw.add_media("known", [path], category="1", bt_piece_lengths=[16 * 1024])

    matcher = sqlite_hw.matcher()
    for name, info in (
        ("v2", info_dict([("x", picture)], name="p.png", v1=False, v2=True, single=True)),
        ("v1", info_dict([("x", picture)], name="p.png", single=True)),
        (
            "v1 other length",
            info_dict([("x", picture)], name="p.png", piece_length=1 << 15, single=True),
        ),
    ):
        data = torrent(info)
        reader = reader_for("p.torrent", data)
        assert reader is not None
        (rec,) = reader.read(io.BytesIO(data), len(data))
        assert isinstance(rec, P2PRecord)
        signals = [Signal(HashType(k), v) for k, v in rec.hashes.items() if k in set(HashType)]
        (result,) = matcher.match_many([signals])
        found = {m.hash_type for m in result.matches}
        if name == "v2":
            assert found == {"bt_v2_root"}
        elif name == "v1":
            assert found == {"bt_v1_pieces"}
        else:  # a piece length the curator did not ask for: not found by its pieces
            assert found == set()
