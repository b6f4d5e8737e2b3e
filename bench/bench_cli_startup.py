"""Start-up time of ``hashwatch --help`` and ``hashwatch version``, against ``python -c pass``.

    .venv/bin/python bench/bench_cli_startup.py [--runs 15]

Each command runs as a user runs it (the console entry, a fresh interpreter each time); the
median of the runs is printed with its ratio to an empty interpreter start on the same machine.
One untimed run of each first warms the page cache and the byte-code cache.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "hashwatch --help": [sys.executable, "-m", "hashwatch", "--help"],
    "hashwatch version": [sys.executable, "-m", "hashwatch", "version"],
    "hashwatch scan --help": [sys.executable, "-m", "hashwatch", "scan", "--help"],
}


def median_seconds(argv: list[str], runs: int) -> float:
    subprocess.run(argv, check=True, capture_output=True)
    times: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    results = {label: median_seconds(argv, args.runs) for label, argv in COMMANDS.items()}
    base = results["python -c pass"]
    print(f"{'command':<24} {'median':>9} {'x python -c pass':>17}")
    for label, seconds in results.items():
        print(f"{label:<24} {seconds * 1000:>7.0f} ms {seconds / base:>16.1f}x")


if __name__ == "__main__":
    main()
