"""Byte digests over a 2 GB tree: hashwatch (MD5, SHA-1, SHA-256, ED2K blue+red, Gnutella)
against ``sha256sum`` alone, in the same run, on the same warm page cache.

    .venv/bin/python bench/bench_digests.py [--gb 2] [--workers 2] [--dir /tmp/hw-bench-tree]

The tree mixes sizes as a seized disk does: a few large files (videos, archives), some
medium ones (photos) and many small ones (documents, thumbnails). Both tools read every file
once per timed run; the tree is read once beforehand so both start from a warm cache.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from hashwatch.app import Hashwatch
from hashwatch.config import Settings


def make_tree(root: Path, total_bytes: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    marker = root / f".complete-{total_bytes}"
    files: list[Path] = []
    plan: list[int] = []
    big = int(total_bytes * 0.6)
    plan += [big // 4] * 4  # four large files
    medium = int(total_bytes * 0.3)
    plan += [3_000_000] * (medium // 3_000_000)  # photo-sized
    small = total_bytes - sum(plan)
    plan += [40_000] * max(0, small // 40_000)  # documents and thumbnails
    for n in range(len(plan)):
        sub = root / f"d{n % 37:02d}"
        path = sub / f"f{n:06d}.bin"
        files.append(path)
    if marker.exists():
        return files
    block = os.urandom(1 << 20)
    for path, size in zip(files, plan, strict=True):
        path.parent.mkdir(exist_ok=True)
        with path.open("wb") as fh:
            left = size
            while left > 0:
                chunk = block[: min(left, len(block))]
                fh.write(chunk)
                left -= len(chunk)
            fh.write(path.name.encode())  # distinct content per file
    marker.touch()
    return files


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/hw-bench-tree")
    args = ap.parse_args()
    root = Path(args.dir)
    files = make_tree(root, int(args.gb * 1e9))
    total = sum(f.stat().st_size for f in files)
    names = "\n".join(str(f) for f in files).encode()
    hw = Hashwatch(Settings(database_url="sqlite://", data_dir=root / ".hw"))

    def run_sha256sum() -> None:
        subprocess.run(
            ["xargs", "-d", "\n", "sha256sum"], input=names, check=True, stdout=subprocess.DEVNULL
        )

    def run_hashwatch() -> None:
        count = sum(1 for _ in hw.hash_paths(files, workers=args.workers, unit_size=16))
        assert count == len(files)

    run_sha256sum()  # warm the page cache
    t_ref = min(timed(run_sha256sum) for _ in range(2))
    t_hw = min(timed(run_hashwatch) for _ in range(2))
    print(f"tree: {len(files)} files, {total / 1e9:.2f} GB, {os.cpu_count()} cores")
    print(f"sha256sum (one digest, one process): {t_ref:6.2f} s  {total / t_ref / 1e6:7.0f} MB/s")
    print(
        f"hashwatch (six digests, {args.workers} workers): {t_hw:6.2f} s  "
        f"{total / t_hw / 1e6:7.0f} MB/s"
    )
    print(f"ratio hashwatch/sha256sum wall time: {t_hw / t_ref:.2f} (goal <= 1.5)")
    one = Path(files[0])
    t1_ref = timed(
        lambda: subprocess.run(["sha256sum", str(one)], check=True, stdout=subprocess.DEVNULL)
    )
    t1_hw = timed(lambda: list(hw.hash_paths([one], workers=1)))
    print(
        f"one {one.stat().st_size / 1e6:.0f} MB file: sha256sum {t1_ref:.2f} s, "
        f"hashwatch {t1_hw:.2f} s (ratio {t1_hw / t1_ref:.2f})"
    )


if __name__ == "__main__":
    main()
