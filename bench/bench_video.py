"""Benchmark: seconds of 720p video hashed per CPU-second, hashwatch against a plain baseline.

Run by hand (not a test)::

    .venv/bin/python bench/bench_video.py              # 20 s of 720p30
    .venv/bin/python bench/bench_video.py --seconds 10 --markdown

Why CPU-seconds: the machine is shared and FFmpeg decodes with threads, so wall time would
measure the scheduler; ``time.process_time`` counts every thread of the process.

* Generates a benign 1280x720, 30 fps H.264 video (moving shapes on a gradient, with some noise,
  rendered with numpy and encoded with PyAV into a temporary file).
* Baseline: decode every frame with PyAV, convert every 30th (1 fps, vPDQ's sampling) to
  full-size RGB and hash it with ``pdqhash.compute``.
* hashwatch: ``hash_video(data)`` (``fast-1``: luma plane, reduced, replayed PDQ filter).
* One BLAS thread (see below); FFmpeg's decoder threads are left at PyAV's default for both.
* Prints both rates, the ratio, and the bits between the two hashes of each sampled frame.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

# One BLAS thread, as hashwatch's runner sets for its workers: OpenBLAS threads spin while they
# wait, which would add CPU time to every small matrix product. Must happen before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import av  # noqa: E402
import numpy as np  # noqa: E402
import pdqhash  # noqa: E402

from hashwatch.signals.pdq import pdq_distance  # noqa: E402
from hashwatch.signals.video import hash_video  # noqa: E402


def make_video(
    path: Path, seconds: int, fps: int = 30, width: int = 1280, height: int = 720
) -> None:
    """Moving circles and bars over a drifting gradient, encoded as H.264 (yuv420p)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(seconds * fps):
            t = i / fps
            base = 128 + 60 * np.sin(xx / 180 + t) + 40 * np.cos(yy / 120 - 0.7 * t)
            rgb = np.stack([base, base * 0.8 + 30, 255 - base], axis=-1)
            for k in range(4):
                cx = width * (0.5 + 0.4 * np.sin(0.6 * t + k * 1.7))
                cy = height * (0.5 + 0.4 * np.cos(0.9 * t + k * 2.1))
                disk = (xx - cx) ** 2 + (yy - cy) ** 2 < (60 + 20 * k) ** 2
                rgb[disk] = (40 * k + 50, 220 - 40 * k, 90 + 30 * k)
            bar = int((t * 200) % width)
            rgb[:, bar : bar + 40] = 20
            rgb += rng.normal(0, 4, size=(height, width, 1)).astype(np.float32)
            frame = av.VideoFrame.from_ndarray(np.clip(rgb, 0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def baseline(data: bytes) -> dict[int, str]:
    """Decode every frame; full-size RGB + pdqhash on every 30th (1 fps at 30 fps)."""
    hashes = {}
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        step = max(1, int(float(stream.average_rate or 30)))
        for n, frame in enumerate(container.decode(stream)):
            if n % step == 0:
                vector, _ = pdqhash.compute(frame.to_ndarray(format="rgb24"))
                hashes[n] = np.packbits(vector.astype(np.uint8)).tobytes().hex()
    return hashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs each")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        make_video(path, args.seconds)
        data = path.read_bytes()
    base_t, fast_t = [], []
    for _ in range(args.repeat):
        t0 = time.process_time()
        ref = baseline(data)
        base_t.append(time.process_time() - t0)
        t0 = time.process_time()
        result = hash_video(data)
        fast_t.append(time.process_time() - t0)
    assert result.error is None, result.error
    bits = [pdq_distance(f["pdq"], ref[f["frame"]]) for f in result.frames]
    duration = result.duration or args.seconds
    base_rate, fast_rate = duration / min(base_t), duration / min(fast_t)
    rows = [
        ("decode all + RGB + pdqhash @1 fps", min(base_t), base_rate),
        ("hashwatch hash_video (fast-1)", min(fast_t), fast_rate),
    ]
    agreement = f"median {statistics.median(bits)}, max {max(bits)} bits ({len(bits)} frames)"
    if args.markdown:
        print("| pipeline | CPU s | video s / CPU s |")
        print("| --- | ---: | ---: |")
        for name, cpu, rate in rows:
            print(f"| {name} | {cpu:.2f} | {rate:.2f} |")
        print(f"\nratio {fast_rate / base_rate:.2f}x; agreement {agreement}")
    else:
        for name, cpu, rate in rows:
            print(f"{name:40s} {cpu:7.2f} CPU s  {rate:7.2f} video s per CPU s")
        print(f"ratio {fast_rate / base_rate:.2f}x; agreement {agreement}")


if __name__ == "__main__":
    main()
