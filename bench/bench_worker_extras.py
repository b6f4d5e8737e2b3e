"""What a scan worker adds to hashing a picture, step by step, in CPU time.

    .venv/bin/python bench/bench_worker_extras.py [--before SRC] [--rounds 5] [--files 300]
        [--scale-tree /tmp/hw-bench-scale/tree-12000] [--scan-tree /tmp/hw-bench-scan/tree]

Everything is benign and generated: the trees of ``bench_scan_scale.py`` (320x240 JPEGs) and
``bench_scan.py`` (256x192, 1280x960 and 4000x3000 JPEGs, zips, tar.gz, text), built by those
scripts. Per picture, in one process, CPU time (``time.process_time``):

- ``hash``: :func:`hash_stream` with ``hashwatch hash``'s options (in-memory bytes);
- ``worker``: :func:`hash_stream` with the scan worker's options (EXIF, thumbnail, dihedral),
  and ``worker - hash``, what those options add;
- ``border``: :func:`trimmed_decode` on the worker's decode (the border decision);
- ``thumb``: :func:`thumbnail_of` on the worker's colour decode;
- ``unit``: :func:`process_unit` over units of 64 evidence files read from disk (the
  worker's glue and its reads included), per file.

``--before SRC`` names the ``src`` folder of another version (for instance
``git archive HEAD src | tar -x -C /tmp/before``): each round then runs that version and this
checkout's (or ``--after SRC``) in turn, each in a fresh process, so that both see the same
machine; the medians over the rounds are printed side by side.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"


def _pictures(scale_tree: Path, scan_tree: Path, files: int) -> dict[str, list[Path]]:
    """The pictures measured, by kind: the first ``files`` of each size."""
    from PIL import Image

    groups: dict[str, list[Path]] = {"320x240": sorted(scale_tree.glob("*/*.jpg"))[:files]}
    for path in sorted(scan_tree.glob("*/*.jpg")):
        with Image.open(path) as im:
            name = f"{im.width}x{im.height}"
        group = groups.setdefault(name, [])
        if len(group) < (files if im.width < 4000 else max(10, files // 10)):
            group.append(path)
    return groups


def _per_item(fn: Callable[[Any], object], items: Sequence[Any], repeat: int = 3) -> float:
    """The least CPU milliseconds per item over ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for item in items:
            fn(item)
        best = min(best, (time.process_time() - start) / len(items))
    return best * 1e3


def measure(scale_tree: Path, scan_tree: Path, files: int) -> dict[str, float]:
    """One pass of every measurement with the hashwatch this interpreter imports."""
    from dataclasses import replace

    from hashwatch.scan.walk import walk_evidence
    from hashwatch.scan.worker import WorkerOptions, process_unit
    from hashwatch.signals.exif import thumbnail_of
    from hashwatch.signals.hasher import HashOptions, hash_stream
    from hashwatch.signals.image import decode_image
    from hashwatch.signals.robust import trimmed_decode

    options = WorkerOptions()
    hash_options = options.hashing
    worker_options = replace(hash_options, exif=True, thumbnail=True, dihedral=True)
    out: dict[str, float] = {}
    for kind, paths in _pictures(scale_tree, scan_tree, files).items():
        data = [p.read_bytes() for p in paths]
        decoded = [decode_image(d, worker_options.pdq_policy, keep_colour=True) for d in data]
        colours = [d.colour for d in decoded]

        def hashed(d: bytes, o: HashOptions) -> object:
            return hash_stream(io.BytesIO(d), "p.jpg", len(d), o)

        out[f"{kind} hash"] = _per_item(lambda d: hashed(d, hash_options), data)
        out[f"{kind} worker"] = _per_item(lambda d: hashed(d, worker_options), data)
        # What the worker's options add, from two measurements of the same process (the
        # machine's speed drifts less between them than between runs).
        out[f"{kind} worker - hash"] = out[f"{kind} worker"] - out[f"{kind} hash"]
        out[f"{kind} border"] = _per_item(trimmed_decode, decoded)
        out[f"{kind} thumb"] = _per_item(thumbnail_of, colours)
    for name, tree in (("320x240 tree", scale_tree), ("scan tree", scan_tree)):
        evidence = list(walk_evidence([tree]))[: files * 2]
        units = [evidence[i : i + 64] for i in range(0, len(evidence), 64)]
        process_unit(options, units[0])  # warm
        out[f"{name} unit"] = _per_item(lambda u: process_unit(options, u), units, 2) / 64
        results = [process_unit(options, u) for u in units]
        out[f"{name} pickle"] = _per_item(pickle.dumps, results, 2) / 64
        blobs = [pickle.dumps(r) for r in results]
        out[f"{name} unpickle"] = _per_item(pickle.loads, blobs, 2) / 64
        out[f"{name} bytes/record"] = sum(map(len, blobs)) / sum(len(r.records) for r in results)
    return out


def _run(src: Path, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(HERE), "--one", "--files", str(args.files)]
    cmd += ["--scale-tree", str(args.scale_tree), "--scan-tree", str(args.scan_tree)]
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="src folder of the version to compare")
    parser.add_argument("--after", type=Path, default=SRC, help="src folder (this checkout's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--scale-tree", type=Path, default=Path("/tmp/hw-bench-scale/tree-12000"))
    parser.add_argument("--scan-tree", type=Path, default=Path("/tmp/hw-bench-scan/tree"))
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.scale_tree, args.scan_tree, args.files)))
        return
    versions = {"before": args.before, "after": args.after} if args.before else {"now": args.after}
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for r in range(args.rounds):
        for name, src in versions.items():
            rounds[name].append(_run(src, args))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    keys = list(rounds[next(iter(versions))][0])
    print(f"{'ms per file (median of rounds)':34s}" + "".join(f"{n:>10s}" for n in versions))
    for key in keys:
        values = [statistics.median(x[key] for x in rounds[n]) for n in versions]
        fmt = "{:10.0f}" if key.endswith("bytes/record") else "{:10.3f}"
        print(f"{key:34s}" + "".join(fmt.format(v) for v in values))


if __name__ == "__main__":
    main()
