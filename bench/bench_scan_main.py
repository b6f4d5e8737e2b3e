"""The scan's main process alone: its CPU time per file, before and after a change, alternated.

    .venv/bin/python bench/bench_scan_main.py TREE [TREE...] [--before SRC] [--after SRC]
        [--rounds 3] [--lists none|known] [--workers 2] [--dir /tmp/hw-bench-scan-main]
        [--profile OUT]

Each scan runs in a child process (``hashwatch scan TREE --out CASE -j W`` through the CLI's
``app``); the child prints its own CPU time (``getrusage(RUSAGE_SELF)``: the main process only,
not the fork server and the workers). ``--before SRC`` runs every scan a second time with
``SRC`` (a ``src`` folder of another checkout, e.g. a ``git worktree`` of the starting commit)
first on ``PYTHONPATH``, alternating the two in each round, so that the machine's load falls
on both alike.

``--lists known``: the database holds one known list of 10,000 random MD5 + PDQ entries, with
the MD5 of every 10th of the tree's first 50 files (matches) and, for every 40th picture of
the first 2,000, its PDQ with a few bits flipped (PDQ matches and near misses); ``none``: an
empty database. ``--profile OUT`` writes a cProfile (process CPU clock) of the last child.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def child(tree: str, case: str, workers: int, profile: str | None) -> None:
    """One scan in this process; prints its CPU seconds as JSON."""
    from hashwatch.cli.main import app

    args = ["scan", tree, "--out", case, "-j", str(workers)]
    before = resource.getrusage(resource.RUSAGE_SELF)
    if profile:
        import cProfile

        prof = cProfile.Profile(time.process_time)
        prof.enable()
        app(args, standalone_mode=False)
        prof.disable()
        prof.dump_stats(profile)
    else:
        app(args, standalone_mode=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = after.ru_utime + after.ru_stime
    print(json.dumps({"scan_cpu": cpu, "process_cpu": total}))


def make_lists(data: Path, tree: Path) -> None:
    """A database with one known list (see the module's docstring)."""
    import numpy as np

    from hashwatch.app import Hashwatch
    from hashwatch.config import Settings
    from hashwatch.lists.model import ListKind
    from hashwatch.signals.hasher import HashOptions, hash_file

    hw = Hashwatch(Settings.from_env(data_dir=data))
    rng = np.random.default_rng(1)
    rows = ["md5,pdq"]
    for _ in range(10_000):
        rows.append(f"{rng.bytes(16).hex()},{rng.bytes(32).hex()}")
    files = sorted(p for p in tree.rglob("*") if p.is_file() and not p.name.startswith("."))
    for p in files[:50:10]:
        rows.append(f"{hashlib.md5(p.read_bytes()).hexdigest()},{rng.bytes(32).hex()}")
    pictures = [p for p in files[:2000] if p.suffix == ".jpg"][::40]
    for n, p in enumerate(pictures):
        fs = hash_file(p, HashOptions())
        if not fs.pdq:
            continue
        value = bytearray(bytes.fromhex(fs.pdq.hash))
        for bit in range(4 + 12 * (n % 3)):  # 4 bits: a match; 16, 28: near misses
            value[bit * 7 % 32] ^= 1 << (bit % 8)
        rows.append(f"{rng.bytes(16).hex()},{value.hex()}")
    (data / "known.csv").write_text("\n".join(rows) + "\n")
    hw.lists.import_file("known", data / "known.csv", kind=ListKind.KNOWN)


def run_one(
    src: Path, tree: Path, work: Path, template: Path, workers: int, profile: str | None
) -> float:
    data = work / "data"
    case = work / "case"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, data)
    env = dict(os.environ, HASHWATCH_DATA_DIR=str(data), PYTHONPATH=str(src))
    cmd = [sys.executable, __file__, "--child", str(tree), str(case), str(workers)]
    if profile:
        cmd.append(profile)
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["scan_cpu"])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        tree, case, workers = sys.argv[2], sys.argv[3], int(sys.argv[4])
        child(tree, case, workers, sys.argv[5] if len(sys.argv) > 5 else None)
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="+", type=Path)
    ap.add_argument("--before", type=Path, help="a src folder to compare with (run alternately)")
    ap.add_argument("--after", type=Path, default=SRC, help="the src folder measured (this one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lists", choices=("none", "known"), default="none")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/hw-bench-scan-main"))
    ap.add_argument("--profile", help="write a cProfile of the last scan (after) here")
    args = ap.parse_args()
    variants = [("after", args.after)] + ([("before", args.before)] if args.before else [])
    for tree in args.trees:
        files = sum(1 for p in tree.rglob("*") if p.is_file() and not p.name.startswith("."))
        template = args.dir / f"template-{tree.name}-{args.lists}"
        if not template.exists():
            template.mkdir(parents=True)
            if args.lists == "known":
                make_lists(template, tree)
        cpu: dict[str, list[float]] = {name: [] for name, _ in variants}
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, src in order:
                last = r == args.rounds - 1 and name == "after"
                profile = args.profile if last else None
                cpu[name].append(
                    run_one(src, tree, args.dir / "work", template, args.workers, profile)
                )
        line = [f"{tree} ({files} files, lists: {args.lists}, -j {args.workers}):"]
        for name, values in cpu.items():
            med = statistics.median(values)
            runs = " ".join(f"{v:.2f}" for v in values)
            line.append(
                f"  {name}: median {med:.2f} s CPU ({1000 * med / files:.3f} ms a file; {runs})"
            )
        if args.before:
            ratio = statistics.median(cpu["after"]) / statistics.median(cpu["before"])
            line.append(f"  after / before: {ratio:.2f}")
        print("\n".join(line), flush=True)


if __name__ == "__main__":
    main()
