"""What BitTorrent's file hashes add to the one-pass digest read, per GB.

    .venv/bin/python bench/bench_bittorrent.py [--mb 512] [--runs 2]

One file of random bytes is hashed from disk (warm page cache) by ``hash_file``: the byte
digests alone (the reference, as every scan reads), then with the v2 root
(``HashOptions(bittorrent=True)``, as ``lists add-media`` asks), then with the v2 root and the
five common v1 piece lengths (256 KiB-4 MiB). Prints seconds per GB and the ratio to the
reference, best of ``--runs``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hashwatch.signals.bittorrent import COMMON_PIECE_LENGTHS
from hashwatch.signals.hasher import HashOptions, hash_file


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=512)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "benign.bin"
        with path.open("wb") as fh:
            for _ in range(args.mb):
                fh.write(os.urandom(1 << 20))
        hash_file(path)  # warm the page cache
        cases = [
            ("digests only (reference)", HashOptions()),
            ("+ bt_v2_root", HashOptions(bittorrent=True)),
            (
                "+ bt_v2_root + 5 v1 piece lengths",
                HashOptions(bittorrent=True, bt_piece_lengths=COMMON_PIECE_LENGTHS),
            ),
        ]
        base = None
        for label, options in cases:
            best = min(_timed(path, options) for _ in range(args.runs))
            per_gb = best * 1024 / args.mb
            base = base or per_gb
            print(f"{label:38s} {per_gb:6.2f} s/GB  ratio {per_gb / base:.2f}")


def _timed(path: Path, options: HashOptions) -> float:
    start = time.perf_counter()
    hash_file(path, options)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
