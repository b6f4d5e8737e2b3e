"""LimeWire 5's ``downloads.dat`` built as its published source writes it: an ``ArrayList`` of
download mementos (``com.limegroup.gnutella.downloader.serial.*DownloadMementoImpl``), each
holding its properties in one ``HashMap`` field, ``serialObjects``. The stream is written with
the Java serialisation writer of ``tests/p2p_emule_builders.py``.

File names, sizes and SHA-1 values are benign stand-ins. ``SAMPLES`` holds one small valid
artifact for the P2P contract test, keyed ``(client, artifact)``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.p2p_emule_builders import ENUM, FILE, JavaWriter, _Cls

__all__ = [
    "SAMPLES",
    "Download",
    "benign_downloads",
    "downloads_dat",
    "sample_downloads",
    "write_sample",
]

_PKG = "com.limegroup.gnutella.downloader.serial."
_MAP_SIG = "Ljava/util/Map;"
GNUTELLA: _Cls = (
    _PKG + "GnutellaDownloadMementoImpl",
    1655079783169954740,
    0x02,
    (("L", "serialObjects", _MAP_SIG),),
    None,
)
LIBTORRENT: _Cls = (
    _PKG + "LibTorrentBTDownloadMementoImpl",
    1160492348504657012,
    0x02,
    (("L", "serialObjects", _MAP_SIG),),
    None,
)
ARRAYLIST: _Cls = ("java.util.ArrayList", 8683452581122892189, 0x03, (("I", "size", None),), None)
DOWNLOADER_TYPE: _Cls = ("com.limegroup.gnutella.downloader.DownloaderType", 0, 0x12, (), ENUM)


@dataclass
class Download:
    name: str
    size: int
    sha1: bytes
    save: str
    torrent: bool = False

    @property
    def urn(self) -> str:
        return "urn:sha1:" + base64.b32encode(self.sha1).decode()


def _file(w: JavaWriter, path: str) -> None:
    w.begin(FILE)
    w.string(path)
    w.block(struct.pack(">H", ord("\\")))
    w.end()


def downloads_dat(downloads: Sequence[Download], *, count: int | None = None) -> bytes:
    """The ArrayList LimeWire 5 writes; ``count`` overrides the list's size field."""
    w = JavaWriter()
    w.begin(ARRAYLIST)
    n = len(downloads) if count is None else count
    w.out += struct.pack(">i", n)
    w.block(struct.pack(">i", max(n, 10)))
    for d in downloads:
        w.begin(LIBTORRENT if d.torrent else GNUTELLA)
        w.hashmap(5 if d.torrent else 6)
        w.string("defaultFileName" if not d.torrent else "name")
        w.string(d.name)
        w.string("sha1Urn")
        if d.torrent:
            w.string(d.urn)  # a libtorrent memento keeps the URN's text
        else:
            w.urn(d.urn)
        w.string("saveFile")
        _file(w, d.save)
        w.string("incompleteFile")
        _file(w, d.save.rsplit("\\", 1)[0] + "\\Incomplete\\T-" + d.name)
        if d.torrent:
            w.string("torrentPath")
            w.string("C:\\Users\\sam\\torrents\\" + d.name + ".torrent")
        else:
            w.string("downloadType")
            w.enum(DOWNLOADER_TYPE, "MANAGED")
            w.string("contentLength")
            w.long(d.size)
        w.end()
    w.end()
    return bytes(w.out)


def benign_downloads(n: int) -> list[Download]:
    return [
        Download(
            f"garden-{i:02d}.jpg",
            20_000 + i,
            hashlib.sha1(f"limewire-download-{i}".encode()).digest(),
            f"C:\\Users\\sam\\Shared\\garden-{i:02d}.jpg",
            torrent=i == 2,
        )
        for i in range(n)
    ]


def sample_downloads() -> bytes:
    return downloads_dat(benign_downloads(3))


SAMPLES: dict[tuple[str, str], Callable[[], bytes]] = {
    ("limewire", "downloads.dat"): sample_downloads,
}


def write_sample(directory: Path, key: tuple[str, str]) -> Path:
    """The sample for ``key`` written under its usual file name."""
    path = directory / "downloads.dat"
    path.write_bytes(SAMPLES[key]())
    return path
