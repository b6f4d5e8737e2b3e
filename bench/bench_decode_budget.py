"""Benchmark: the cost of hashing small files that decode to huge pictures, with and without the
decode budget, and the scaling of animated-frame bookkeeping with the frame count.

Run by hand (not a test)::

    .venv/bin/python bench/bench_decode_budget.py                 # default budget, then none
    .venv/bin/python bench/bench_decode_budget.py --budget 0      # no budget only

What it does, and why:

* Generates benign solid-colour inputs once into ``--cache`` (the WebP takes ~45 s to encode):
  an animated WebP of 30 frames of 6000x6000 (~1.5 KB), an animated GIF of 30 frames of
  6000x6000 and a 13300x13300 PNG (~550 KB), the shapes of issue 9's reports.
* Hashes each with ``hash_file`` (default options: PDQ of the first frame, then the animation's
  frames, one a second) in a fresh process per file, so that its peak RSS is its own, and prints
  seconds, peak RSS, the frames hashed and the error. ``--budget 0`` switches the budget off,
  which shows what the decoding itself costs now (one pass, forward only).
* Times the choice of frames for 1,000..100,000 frame durations, the old way (each frame's
  start summed anew: quadratic) and the new (one running sum).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

_CHILD = r"""
import json, resource, sys, time
from hashwatch.signals.hasher import HashOptions, hash_file
budget = int(sys.argv[2])
t = time.perf_counter()
s = hash_file(sys.argv[1], HashOptions(max_decode_pixels=budget or None))
print(json.dumps({
    "seconds": round(time.perf_counter() - t, 2),
    "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "pdq": s.pdq is not None,
    "frames": [f["frame"] for f in s.video.frames] if s.video else [],
    "error": s.error,
}))
"""


def _inputs(cache: Path) -> dict[str, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    webp, gif, png = cache / "anim-6000x6000x30.webp", cache / "anim-6000.gif", cache / "13300.png"
    if not webp.exists():
        frames = [Image.new("RGB", (6000, 6000), (i * 8 % 256, 100, 200)) for i in range(30)]
        buf = io.BytesIO()
        frames[0].save(
            buf,
            "WEBP",
            save_all=True,
            append_images=frames[1:],
            duration=100,
            lossless=True,
            quality=0,
            method=0,
        )
        webp.write_bytes(buf.getvalue())
    if not gif.exists():
        palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756
        frames = []
        for i in range(30):
            frame = Image.new("P", (6000, 6000), i % 4)
            frame.putpalette(palette)
            frames.append(frame)
        frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    if not png.exists():
        Image.new("RGB", (13300, 13300), (30, 60, 90)).save(png)
    return {"webp": webp, "gif": gif, "png": png}


def _choice_scaling() -> None:
    from hashwatch.signals.animated import choose_frames

    print("\nframe choice (1 s slots, 40 ms frames): old quadratic sum vs running sum")
    for count in (1_000, 10_000, 30_000, 100_000):
        durations = [40] * count
        t = time.perf_counter()
        choose_frames(durations, 1.0, "fast", None)
        new = time.perf_counter() - t
        old = float("nan")
        if count <= 30_000:
            t = time.perf_counter()
            _ = [sum(durations[:n]) / 1000 for n in range(count)]
            old = time.perf_counter() - t
        print(f"  {count:>7} frames: old {old:8.3f} s   new {new:8.4f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/hashwatch-bench-decode"))
    parser.add_argument("--budget", type=int, action="append", help="0: no budget")
    args = parser.parse_args()
    from hashwatch.signals.image import DEFAULT_MAX_DECODE_PIXELS

    budgets = args.budget or [DEFAULT_MAX_DECODE_PIXELS, 0]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for name, path in _inputs(args.cache).items():
        for budget in budgets:
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path), str(budget)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            label = f"budget {budget:,}" if budget else "no budget"
            print(f"{name:5} {path.stat().st_size:>9,} B  {label:22} {json.dumps(row)}")
    _choice_scaling()


if __name__ == "__main__":
    main()
