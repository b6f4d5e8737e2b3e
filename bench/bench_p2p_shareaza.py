"""Shareaza library files parsed per second: a generated library of N files (one shared folder
of sub-folders of 1,000 files each, every file with SHA-1, Tiger, MD5, ED2K and a benign name)
read by hashwatch's Shareaza reader, beside the reference in the same run: hashwatch's eMule
reader on a ``known.met`` of as many records (``bench/bench_p2p.py`` writes it), the P2P
reader the project measured first.

    .venv/bin/python bench/bench_p2p_shareaza.py [--files 100000] [--repeat 3]

The library is laid out as Shareaza's ``CLibraryFile::Serialize`` writes version 29 (strings
UTF-16 after MFC's 0xFF 0xFFFE mark). The best of ``--repeat`` runs is kept; the peak memory
of the read is traced (tracemalloc) to show it does not grow with the library.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_p2p import write_known_met
from hashwatch.scan.p2p.emule import KnownMetReader
from hashwatch.scan.p2p.record import P2PReadProblem
from hashwatch.scan.p2p.shareaza import ShareazaLibraryReader

_EPOCH = 116_444_736_000_000_000


def _s(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    n = len(raw) // 2
    return b"\xff\xfe\xff" + (bytes([n]) if n < 0xFF else b"\xff" + struct.pack("<H", n)) + raw


def _count(n: int) -> bytes:
    return struct.pack("<H", n) if n < 0xFFFF else b"\xff\xff" + struct.pack("<I", n)


def write_library(path: Path, n: int) -> None:
    per = 1000
    folders = (n + per - 1) // per
    with path.open("wb") as out:
        out.write(struct.pack("<Q", _EPOCH + 1_700_000_000 * 10_000_000))
        out.write(struct.pack("<iIIIII", 29, 0, n + 1, n, n, folders))
        out.write(_count(1) + _s("C:\\Shared") + struct.pack("<ii", 2, 1) + _count(folders))
        index = 0
        for f in range(folders):
            files = min(per, n - index)
            out.write(_s(f"C:\\Shared\\set-{f:04d}") + struct.pack("<ii", 2, 1) + _count(0))
            out.write(_count(files))
            for _ in range(files):
                seed = index.to_bytes(8, "little")
                sha1 = hashlib.sha1(seed).digest()
                md5 = hashlib.md5(seed).digest()
                out.write(
                    _s(f"n{index:07d}.jpg")
                    + struct.pack("<IQQiQ", index + 1, 10_000 + index, _EPOCH, 0, 0)
                    + struct.pack("<I", 1) + sha1
                    + struct.pack("<I", 1) + sha1 + md5[:4]
                    + struct.pack("<I", 1) + md5
                    + struct.pack("<I", 1) + md5[::-1]
                    + struct.pack("<I", 0)
                    + struct.pack("<i", 0)
                    + b"\x00"  # no schema
                    + struct.pack("<i", 0) + b"\x00" + b"\x00"
                    + struct.pack("<iQ", 1, _EPOCH)
                    + struct.pack("<IIii", index % 7, index % 3, 0, 0)
                    + _count(0)
                )  # fmt: skip
                index += 1
        out.write(_count(0))  # the top folder's own files
        out.write(b"\x00" * 16)


def _read(reader: ShareazaLibraryReader | KnownMetReader, path: Path) -> int:
    """Records read; a problem means the generated file is wrong, so it stops the run."""
    n = 0
    with path.open("rb") as fh:
        for found in reader.read(fh, path.stat().st_size):
            if isinstance(found, P2PReadProblem):
                raise SystemExit(f"{path.name}: {found}")
            n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n: int = args.files
    with tempfile.TemporaryDirectory() as tmp_text:
        library, met = Path(tmp_text) / "Library1.dat", Path(tmp_text) / "known.met"
        write_library(library, n)
        write_known_met(met, n)
        timings: dict[str, float] = {}
        for name, reader, path in (
            ("shareaza", ShareazaLibraryReader(), library),
            ("emule_reference", KnownMetReader(), met),
        ):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                got = _read(reader, path)
                best = min(best, time.perf_counter() - start)
                assert got == n, (name, got)
            timings[name] = best
        tracemalloc.start()
        _read(ShareazaLibraryReader(), library)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            json.dumps(
                {
                    "files": n,
                    "library_mib": round(library.stat().st_size / 2**20, 1),
                    "shareaza_records_per_s": round(n / timings["shareaza"]),
                    "emule_records_per_s": round(n / timings["emule_reference"]),
                    "ratio_shareaza_to_emule": round(
                        timings["emule_reference"] / timings["shareaza"], 2
                    ),
                    "shareaza_read_peak_traced_mib": round(peak / 2**20, 1),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
