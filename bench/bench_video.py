"""Benchmark: seconds of 720p video hashed per CPU-second, hashwatch against a plain baseline.

Run by hand (not a test)::

    .venv/bin/python bench/bench_video.py                       # 20 s of 720p30 per GOP kind
    .venv/bin/python bench/bench_video.py --seconds 20 --markdown --repeat 3

Why CPU-seconds: the machine is shared and FFmpeg decodes with threads, so wall time would
measure the scheduler; ``time.process_time`` counts every thread of the process.

* Generates benign 1280x720, 30 fps H.264 videos (moving shapes on a drifting gradient, with
  fresh noise in every frame, rendered with numpy and encoded with PyAV's libx264, preset
  veryfast, crf 23) with three GOP structures: a keyframe every 1 s (as phones record), every
  2 s (streaming and social re-encodes), both without scene cuts, and x264's default (keyint
  250 = 8.3 s at most, scene cuts on). The frame-type mix is printed with each video: x264
  chooses it (the fresh noise makes it choose almost no B-frames with its default settings).
* Baseline: decode every frame with PyAV, convert every 30th (1 fps, vPDQ's sampling) to
  full-size RGB and hash it with ``pdqhash.compute``; once with PyAV's default decoder threads,
  once with one thread. The ratio is taken against the cheaper of the two.
* hashwatch: ``hash_video(data, sampling=...)`` for "fast" (keyframe-first) and "exact" (every
  30th decoded frame), ``fast-1`` policy, one decoder thread (the default), plus both with
  FFmpeg's threads (``threads=0``) to show what the thread setting is worth.
* Agreement: for every frame a pipeline hashed, the bits between its hash and the full-RGB
  pdqhash of the same frame number (computed outside the timing): median / p95 / max.
* One BLAS thread (see below). Best of ``--repeat`` runs, runs interleaved.
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
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

# name -> libx264 parameters
GOPS = {
    "1 s GOP": "keyint=30:min-keyint=30:scenecut=0",
    "2 s GOP": "keyint=60:min-keyint=60:scenecut=0",
    "x264 default (keyint 250)": "keyint=250",
}


def make_video(
    path: Path, seconds: int, x264_params: str, fps: int = 30, width: int = 1280, height: int = 720
) -> None:
    """Moving circles and bars over a drifting gradient with noise, encoded as H.264 (yuv420p)."""
    rng = np.random.default_rng(7)
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "x264-params": x264_params}
        for i in range(seconds * fps):
            t = i / fps
            base = 128 + 60 * np.sin(xs / 180 + t) + 40 * np.cos(ys / 120 - 0.7 * t)
            rgb = np.stack([base, base * 0.8 + 30, 255 - base], axis=-1)
            for k in range(4):
                cx = width * (0.5 + 0.4 * np.sin(0.6 * t + k * 1.7))
                cy = height * (0.5 + 0.4 * np.cos(0.9 * t + k * 2.1))
                disk = (xs - cx) ** 2 + (ys - cy) ** 2 < (60 + 20 * k) ** 2
                rgb[disk] = (40 * k + 50, 220 - 40 * k, 90 + 30 * k)
            bar = int((t * 200) % width)
            rgb[:, bar : bar + 40] = 20
            rgb += rng.normal(0, 4, size=(height, width, 1)).astype(np.float32)
            frame = av.VideoFrame.from_ndarray(np.clip(rgb, 0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def baseline(data: bytes, threads: int | None = None) -> dict[int, str]:
    """Decode every frame; full-size RGB + pdqhash on every 30th (1 fps at 30 fps)."""
    hashes = {}
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        if threads is not None:
            stream.codec_context.thread_count = threads
        step = max(1, int(float(stream.average_rate or 30)))
        for n, frame in enumerate(container.decode(stream)):
            if n % step == 0:
                hashes[n] = _pdqhash(frame)
    return hashes


def _pdqhash(frame: av.VideoFrame) -> str:
    vector, _ = pdqhash.compute(frame.to_ndarray(format="rgb24"))
    return np.packbits(vector.astype(np.uint8)).tobytes().hex()


def full_rgb_hashes(data: bytes, numbers: Iterable[int]) -> dict[int, str]:
    """The baseline's hash (full RGB + pdqhash) of the given frame numbers (not timed)."""
    wanted = set(numbers)
    with av.open(io.BytesIO(data), mode="r") as container:
        return {
            n: _pdqhash(frame) for n, frame in enumerate(container.decode(video=0)) if n in wanted
        }


def frame_types(data: bytes) -> str:
    """Counts of I/P/B pictures, e.g. ``I 20, P 550, B 30``."""
    with av.open(io.BytesIO(data), mode="r") as container:
        counts = collections.Counter(int(f.pict_type) for f in container.decode(video=0))
    names = {1: "I", 2: "P", 3: "B"}  # AVPictureType
    return ", ".join(f"{names[kind]} {counts[kind]}" for kind in names if counts[kind])


def _bits(frames: dict[int, str], truth: dict[int, str]) -> str:
    bits = sorted(pdq_distance(value, truth[n]) for n, value in frames.items())
    p95 = bits[min(len(bits) - 1, int(0.95 * len(bits)))]
    return f"{statistics.median(bits):g} / {p95} / {bits[-1]} ({len(bits)} frames)"


def bench_one(data: bytes, repeat: int) -> list[tuple[str, float, str]]:
    """``(pipeline, best CPU s, agreement)`` rows for one video."""
    runs: dict[str, Callable[[], dict[int, str]]] = {
        "baseline: decode all + RGB + pdqhash @1 fps (PyAV threads)": lambda: baseline(data),
        "baseline, 1 decoder thread": lambda: baseline(data, threads=1),
        "hashwatch fast (keyframe-first)": lambda: _frames(hash_video(data)),
        "hashwatch fast, FFmpeg threads": lambda: _frames(hash_video(data, threads=0)),
        "hashwatch keyframes (keyframes only, <= 1/s)": lambda: _frames(
            hash_video(data, sampling="keyframes")
        ),
        "hashwatch exact (every 30th)": lambda: _frames(hash_video(data, sampling="exact")),
        "hashwatch exact, FFmpeg threads": lambda: _frames(
            hash_video(data, sampling="exact", threads=0)
        ),
    }
    best = dict.fromkeys(runs, float("inf"))
    outputs: dict[str, dict[int, str]] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            t0 = time.process_time()
            outputs[name] = run()
            best[name] = min(best[name], time.process_time() - t0)
    truth = full_rgb_hashes(data, set().union(*(o.keys() for o in outputs.values())))
    return [(name, best[name], _bits(outputs[name], truth)) for name in runs]


def _frames(result: object) -> dict[int, str]:
    assert getattr(result, "error", None) is None, getattr(result, "error", None)
    return {f["frame"]: f["pdq"] for f in getattr(result, "frames", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs each")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--gop", choices=list(GOPS), action="append", help="only these GOPs")
    args = parser.parse_args()
    if args.markdown:
        print("| video | pipeline | CPU s | video s / CPU s | × baseline | bits med / p95 / max |")
        print("| --- | --- | ---: | ---: | ---: | --- |")
    for gop in args.gop or list(GOPS):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.mp4"
            make_video(path, args.seconds, GOPS[gop])
            data = path.read_bytes()
        label = f"{gop}: {frame_types(data)}"
        rows = bench_one(data, args.repeat)
        base = min(cpu for name, cpu, _ in rows if name.startswith("baseline"))
        for name, cpu, bits in rows:
            rate, ratio = args.seconds / cpu, base / cpu
            if args.markdown:
                print(f"| {label} | {name} | {cpu:.2f} | {rate:.1f} | {ratio:.2f}× | {bits} |")
            else:
                print(f"{label:44.44s} {name:58s} {cpu:6.2f} CPU s {rate:6.1f} s/CPU s "
                      f"{ratio:5.2f}x  bits {bits}")  # fmt: skip
        if not args.markdown:
            print()


if __name__ == "__main__":
    main()
