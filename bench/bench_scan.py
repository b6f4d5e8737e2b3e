"""Scan throughput on a generated tree of ~20,000 files, beside ``sha256sum`` in the same run.

    .venv/bin/python bench/bench_scan.py [--files 20000] [--workers 2] [--dir /tmp/hw-bench-scan]
        [--floor] [--no-thumbnails]

The tree mixes what a seized device holds: photos of several sizes (12 MP, 1 MP, thumbnails),
documents and other small files, and archives (zip and tar.gz holding more pictures). The
lists hold 10,000 known entries (MD5 + PDQ), a few of which are in the tree. ``sha256sum`` over
the same files on disk (archives as bytes) is the reference: hashwatch does more per file (six
digests, image decoding, PDQ with dihedral variants, EXIF, thumbnails, matching, outputs).

``--floor`` also measures the work no scan of this tree can avoid: ``hashwatch hash`` (one
process) over a copy of the tree whose archives are replaced by their members as files (the
other files hard-linked), i.e. the digests, decoding and PDQ of every item the scan reports,
without archive reading, thumbnails, EXIF, matching, state or outputs. Its CPU time divided by
the cores bounds the scan's files/s from above on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from _proctree import tree_cpu
from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import ListKind


def picture(rng: np.random.Generator, size: tuple[int, int]) -> bytes:
    w, h = size
    small = rng.integers(0, 256, (max(2, h // 64), max(2, w // 64), 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BILINEAR)
    noise = rng.normal(0, 6, (h, w, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=88)
    return buf.getvalue()


def make_tree(root: Path, files: int) -> None:
    marker = root / f".complete-{files}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(7)
    big = [picture(rng, (4000, 3000)) for _ in range(4)]
    mid = [picture(rng, (1280, 960)) for _ in range(24)]
    thumbs = [picture(rng, (256, 192)) for _ in range(64)]
    n = 0
    while n < files:
        d = root / f"dir{n // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        kind = n % 20
        path = d / f"f{n:06d}"
        if kind == 0:
            data = big[n % len(big)] + n.to_bytes(4, "big")  # distinct bytes, same picture
            path.with_suffix(".jpg").write_bytes(data)
        elif kind < 6:
            path.with_suffix(".jpg").write_bytes(mid[n % len(mid)] + n.to_bytes(4, "big"))
        elif kind < 12:
            path.with_suffix(".jpg").write_bytes(thumbs[n % len(thumbs)] + n.to_bytes(4, "big"))
        elif kind == 12:
            with zipfile.ZipFile(path.with_suffix(".zip"), "w") as zf:
                for m in range(8):
                    zf.writestr(f"album/{m}.jpg", thumbs[(n + m) % len(thumbs)])
        elif kind == 13:
            with tarfile.open(path.with_suffix(".tar.gz"), "w:gz") as tar:
                for m in range(4):
                    data = mid[(n + m) % len(mid)]
                    info = tarfile.TarInfo(f"pics/{m}.jpg")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        else:
            path.with_suffix(".txt").write_bytes(rng.bytes(int(rng.integers(2_000, 60_000))))
        n += 1
    marker.touch()


def extracted_tree(tree: Path, root: Path) -> Path:
    """The tree with every zip and tar.gz replaced by a folder of its members (other files
    hard-linked: same bytes, no copy), built once."""
    out = root / "extracted"
    marker = out / ".complete"
    if marker.exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.name.startswith(".")):
        target = out / path.relative_to(tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                zf.extractall(target.with_suffix(".zip.d"))
        elif path.name.endswith(".tar.gz"):
            with tarfile.open(path, "r:gz") as tar:
                tar.extractall(target.with_name(path.name + ".d"), filter="data")
        else:
            os.link(path, target)
    marker.touch()
    return out


def hash_floor(tree: Path, root: Path, files: int, workers: int) -> None:
    """CPU of ``hashwatch hash`` over the extracted tree, and the files/s it allows."""
    extracted = extracted_tree(tree, root)
    items = sum(1 for p in extracted.rglob("*") if p.is_file() and not p.name.startswith("."))
    env = {**os.environ, "HASHWATCH_DATA_DIR": str(root / "floor-data")}
    before = os.times()
    subprocess.run(
        [sys.executable, "-m", "hashwatch", "hash", str(extracted)],
        check=True,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    cores = min(workers, os.cpu_count() or 1)
    print(
        f"floor: hashwatch hash over every item ({items} files, archive members extracted): "
        f"{cpu:.1f} s CPU, {cpu / items * 1000:.2f} ms an item; at most "
        f"{files / cpu * cores:.0f} files/s of this tree on {cores} cores"
    )


def _watch_children(seen: dict[int, float], stop: threading.Event) -> None:
    """Until ``stop``: the CPU seconds (user + sys) last seen of every process below this one
    (the scan's fork server and its workers, which this process does not wait for while the
    scan runs)."""
    me = os.getpid()
    while not stop.is_set():
        for pid, seconds in tree_cpu(me).items():
            if pid != me:
                seen[pid] = max(seen.get(pid, 0.0), seconds)
        stop.wait(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default="/tmp/hw-bench-scan")
    ap.add_argument("--floor", action="store_true", help="also measure the hashing floor")
    ap.add_argument("--no-thumbnails", action="store_true", help="scan with --no-thumbnails")
    args = ap.parse_args()
    root = Path(args.dir)
    tree = root / "tree"
    t0 = time.perf_counter()
    make_tree(tree, args.files)
    print(f"tree ready in {time.perf_counter() - t0:.0f} s")
    files = sorted(p for p in tree.rglob("*") if p.is_file() and not p.name.startswith("."))
    total = sum(p.stat().st_size for p in files)
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    hw = Hashwatch(Settings(database_url=f"sqlite:///{work / 'hw.sqlite3'}", data_dir=work))
    rng = np.random.default_rng(1)
    rows = ["md5,pdq"]
    for _ in range(10_000):
        rows.append(f"{rng.bytes(16).hex()},{rng.bytes(32).hex()}")
    for p in files[:50:10]:
        rows.append(f"{hashlib.md5(p.read_bytes()).hexdigest()},{rng.bytes(32).hex()}")
    (work / "known.csv").write_text("\n".join(rows) + "\n")
    hw.lists.import_file("known", work / "known.csv", kind=ListKind.KNOWN)
    names = "\n".join(str(p) for p in files).encode()
    subprocess.run(
        ["xargs", "-d", "\n", "sha256sum"], input=names, check=True, stdout=subprocess.DEVNULL
    )  # warm the cache
    t = time.perf_counter()
    subprocess.run(
        ["xargs", "-d", "\n", "sha256sum"], input=names, check=True, stdout=subprocess.DEVNULL
    )
    t_ref = time.perf_counter() - t
    t = time.perf_counter()
    own = os.times()
    seen: dict[int, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_children, args=(seen, stop), daemon=True)
    watcher.start()
    outcome = hw.scan(
        [tree], work / "case", workers=args.workers, thumbnails=not args.no_thumbnails
    )
    t_hw = time.perf_counter() - t
    stop.set()
    watcher.join()
    done = os.times()
    cpu_main = (done.user - own.user) + (done.system - own.system)
    cpu_workers = sum(seen.values())
    s = outcome.summary
    print(f"tree: {len(files)} files on disk, {total / 1e6:.0f} MB; {os.cpu_count()} cores")
    print(
        f"sha256sum:  {t_ref:7.2f} s  {len(files) / t_ref:8.0f} files/s  "
        f"{total / t_ref / 1e6:7.1f} MB/s"
    )
    print(
        f"hashwatch scan ({args.workers} workers"
        f"{', no thumbnails' if args.no_thumbnails else ''}): "
        f"{t_hw:7.2f} s  {len(files) / t_hw:8.0f} files/s "
        f"{total / t_hw / 1e6:7.1f} MB/s  ({s.files} items incl. archive members)"
    )
    print(f"ratio scan/sha256sum wall time: {t_hw / t_ref:.1f}x")
    cpu = cpu_main + cpu_workers
    print(
        f"scan CPU: {cpu:.1f} s (main process {cpu_main:.1f} s, workers and fork server "
        f"{cpu_workers:.1f} s as last seen), {cpu / len(files) * 1000:.2f} ms a file; "
        f"{len(files) / cpu * min(args.workers, os.cpu_count() or 1):.0f} files/s if "
        f"{args.workers} workers had a core each to themselves"
    )
    print("statuses:", s.by_status, "clusters:", s.new_clusters)
    if args.floor:
        hash_floor(tree, root, len(files), args.workers)


if __name__ == "__main__":
    main()
