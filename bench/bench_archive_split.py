"""A large zip read whole by one worker beside the same zip split into parts on two workers.

    .venv/bin/python bench/bench_archive_split.py [--members 2000] [--member-kib 64] [--parts-mib 8]

Everything is generated: a stored zip of random (incompressible) members, the layout of a zip
of pictures. The reference is today's path for a small zip (``expand_evidence`` on the whole
file, one process); hashwatch's split path plans the zip (``ArchivePlanner``) and reads the
parts on a process pool of two, as the local runner would. Both hash every member and the
zip itself with SHA-256. Printed: planning time, the wall time of each path, their ratio, and
the directory read that every part repeats (``zipfile`` listing of the whole directory).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import BinaryIO

from hashwatch.scan.archive_split import ArchivePlanner
from hashwatch.scan.archives import expand_evidence
from hashwatch.scan.walk import EvidenceFile, walk_evidence


def _sha256(stream: BinaryIO, _display: str, _size: int | None, _mtime: str | None) -> str:
    digest = hashlib.sha256()
    while block := stream.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def _read(ef: EvidenceFile) -> int:
    return sum(1 for _ in expand_evidence(ef, _sha256))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--member-kib", type=int, default=64)
    parser.add_argument("--parts-mib", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for n in range(args.members):
                zf.writestr(
                    f"dir-{n // 100:03d}/member-{n:06d}.bin", os.urandom(args.member_kib << 10)
                )
        (whole,) = walk_evidence([path])
        print(f"zip: {args.members} members, {whole.size / 2**20:.0f} MiB")

        start = time.perf_counter()
        parts = list(ArchivePlanner(args.parts_mib << 20).expand([whole]))
        plan_s = time.perf_counter() - start
        start = time.perf_counter()
        with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
            listed = len(zf.infolist())
        list_s = time.perf_counter() - start
        print(
            f"planned {len(parts)} parts in {plan_s * 1000:.1f} ms; directory read per part "
            f"{list_s * 1000:.1f} ms ({listed} entries)"
        )

        start = time.perf_counter()
        items_whole = _read(whole)
        whole_s = time.perf_counter() - start
        start = time.perf_counter()
        with ProcessPoolExecutor(2) as pool:
            items_split = sum(pool.map(_read, parts))
        split_s = time.perf_counter() - start
        assert items_whole == items_split, (items_whole, items_split)
        print(f"reference (whole, one process): {whole_s:.2f} s")
        print(f"hashwatch (parts, two processes): {split_s:.2f} s")
        print(f"ratio whole/split: {whole_s / split_s:.2f}x")


if __name__ == "__main__":
    main()
