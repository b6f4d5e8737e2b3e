"""Scan cost as the evidence grows: ``hashwatch scan`` beside ``hashwatch hash`` in one run.

    .venv/bin/python bench/bench_scan_scale.py [--sizes 3000,12000] [--workers 2]
        [--dir /tmp/hw-bench-scale] [--profile]

For each size N, a tree of N generated benign JPEGs of 320x240 (each a distinct picture, a few
planted near-duplicate pairs so clusters exist) is built once and kept in ``--dir``. Then, in
the same run:

- the reference: ``hashwatch hash TREE`` with one process (digests and PDQ of every picture,
  JSON Lines to /dev/null);
- ``hashwatch scan TREE --workers W`` into a fresh case directory (digests, PDQ with dihedral
  variants, EXIF, thumbnails, matching, clustering, report and case outputs).

Printed per size: wall time, CPU time (user + sys of the command and its children), files/s,
the scan's main-process peak RSS (VmHWM, read from /proc while it runs) and the size of
``report.html``; then the scan / hash CPU ratio (the issue's goal: at most 1.5x) and the time
per file against the smallest size (the goal: within 20 % at 10x the files).

``--profile`` also runs a 1-worker scan of the smallest tree under cProfile and prints the top
functions by cumulative and own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hashwatch.runner import single_threaded_libraries

# Before numpy loads: with a BLAS thread per core, --profile's in-process scan had PDQ's small
# luma products wait on spinning BLAS threads (15 ms a picture of wall time, under 0.3 ms of CPU).
single_threaded_libraries()

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from _proctree import tree_cpu  # noqa: E402

HW = [sys.executable, "-m", "hashwatch"]


def picture(rng: np.random.Generator, w: int = 320, h: int = 240) -> Image.Image:
    """A smooth random picture with a little noise (a photo's spectrum, not a test pattern)."""
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BILINEAR)
    noise = rng.integers(-6, 7, (h, w, 3), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(img, np.int16) + noise, 0, 255).astype(np.uint8))


def make_tree(root: Path, n: int) -> None:
    marker = root / f".complete-{n}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(n)
    last: Image.Image | None = None
    for i in range(n):
        d = root / f"dir{i // 1000:04d}"
        if i % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        if last is not None and i % 50 == 1:
            img = last.transpose(Image.Transpose.FLIP_LEFT_RIGHT)  # a planted mirrored copy
        else:
            img = picture(rng)
        img.save(d / f"p{i:07d}.jpg", "JPEG", quality=85)
        last = img
    marker.touch()


@dataclass
class Run:
    wall: float
    cpu: float
    peak_rss: int  # bytes, the command's own process


def _watch(pid: int, peak: list[int], cpu: dict[int, float], stop: threading.Event) -> None:
    """Until ``stop``: the main process's VmHWM, and the last CPU time seen of every process
    in its tree (workers forked from a fork server are never waited for by the command, so
    ``os.times`` would not count them)."""
    while not stop.is_set():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]) * 1024)
        except OSError:
            return
        for p, seconds in tree_cpu(pid).items():
            cpu[p] = max(cpu.get(p, 0.0), seconds)
        stop.wait(0.05)


def run(cmd: list[str], env: dict[str, str]) -> Run:
    before = os.times()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, cpu, stop = [0], dict[int, float](), threading.Event()
    watcher = threading.Thread(target=_watch, args=(proc.pid, peak, cpu, stop), daemon=True)
    watcher.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')[-3000:]}")
    after = os.times()
    # The command itself and everything it waited for (children's times add up the tree:
    # the fork server waits for its workers, the command for the fork server), exactly.
    main = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    if not any(p != proc.pid and Path(f"/proc/{p}").exists() for p in cpu):
        return Run(wall, main, peak[0])
    # A command that left helpers behind (they outlived it, unwaited): its own CPU exactly,
    # the rest of its tree as last seen.
    return Run(wall, main + sum(s for p, s in cpu.items() if p != proc.pid), peak[0])


def profile(tree: Path, work: Path) -> None:
    from hashwatch.app import Hashwatch
    from hashwatch.config import Settings

    case = work / "case-profile"
    shutil.rmtree(case, ignore_errors=True)
    url = f"sqlite:///{work / 'hw.sqlite3'}"
    hw = Hashwatch(Settings.from_env(database_url=url, data_dir=work))
    prof = cProfile.Profile(time.process_time)  # CPU: the machine is shared
    prof.enable()
    hw.scan([tree], case, workers=1)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="3000,12000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/hw-bench-scale")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-hash", action="store_true", help="skip the reference (large sizes)")
    ap.add_argument(
        "--also-no-thumbnails",
        action="store_true",
        help="a second scan row per size with --no-thumbnails (a first pass without them)",
    )
    args = ap.parse_args()
    base = Path(args.dir)
    work = base / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(
        os.environ,
        HASHWATCH_DATABASE_URL=f"sqlite:///{work / 'hw.sqlite3'}",
        HASHWATCH_DATA_DIR=str(work),
    )
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cores; machine shared with other work (compare ratios)")
    print(
        f"{'N':>8} {'hash wall':>10} {'hash cpu':>9} {'scan wall':>10} {'scan cpu':>9} "
        f"{'scan f/s':>9} {'cpu ratio':>9} {'scan ms/f':>9} {'main RSS':>9} {'report':>9}"
    )
    first: float | None = None
    last: float | None = None
    for n in sizes:
        tree = base / f"tree-{n}"
        t0 = time.perf_counter()
        make_tree(tree, n)
        made = time.perf_counter() - t0
        if made > 1:
            print(f"  (tree of {n} built in {made:.0f} s)")
        ref = None if args.no_hash else run([*HW, "hash", str(tree)], env)
        variants: list[tuple[str, list[str]]] = [("", [])]
        if args.also_no_thumbnails:
            variants.append((" no-thumbs", ["--no-thumbnails"]))
        for label, extra in variants:
            case = work / f"case-{n}"
            shutil.rmtree(case, ignore_errors=True)
            cmd = [*HW, "scan", str(tree), "-o", str(case), "-j", str(args.workers), *extra]
            scan = run(cmd, env)
            report = (case / "report.html").stat().st_size
            per_file = scan.wall / n * 1000
            if not label:
                first, last = first or per_file, per_file
            ratio = f"{scan.cpu / ref.cpu:8.2f}x" if ref else "       -"
            print(
                f"{n:>8} {ref.wall if ref else 0:>9.1f}s {ref.cpu if ref else 0:>8.1f}s "
                f"{scan.wall:>9.1f}s {scan.cpu:>8.1f}s {n / scan.wall:>9.0f} {ratio:>9} "
                f"{per_file:>9.3f} {scan.peak_rss / 2**20:>7.0f}MB {report / 2**20:>7.1f}MB"
                f"{label}"
            )
        sys.stdout.flush()
    if first is not None and last is not None and len(sizes) > 1:
        print(f"time per file, largest / smallest size: {last / first:.2f}x")
    if args.profile:
        profile(base / f"tree-{sizes[0]}", work)


if __name__ == "__main__":
    main()
