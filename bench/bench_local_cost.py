"""What local features cost where they are now described: per picture in a scan worker (from
PDQ's decode) beside the former second decode in the main process, and per sampled frame of a
live stream beside the frame's PDQ. One run, the plain hashing measured beside it.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        .venv/bin/python bench/bench_local_cost.py [--pictures 30] [--repeat 5]

(native libraries single-threaded, as scan workers run them: on a shared machine a threaded
BLAS made PDQ's 64 x 64 filter several times slower and the figures meaningless.)

Pictures are bench_robust's generated references saved as JPEG (quality 90) at 800x600 and
at 4000x3000 (a 12 MP photo's size); frames are decoded from generated H.264 at 1280x720
and 1920x1080. Each figure is the fastest of ``--repeat`` runs per item, summed (the machine
is shared with other work: the minimum is the cost).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_robust import references
from hashwatch.signals.hasher import HashOptions, hash_stream
from hashwatch.signals.local_features import describe_query_file
from hashwatch.signals.pdq import FAST
from hashwatch.signals.video import hash_av_frame
from hashwatch.stream.sampler import describe_frame

T = TypeVar("T")


def fastest(items: Sequence[T], work: Callable[[T], object], repeat: int) -> float:
    """Seconds per item: each item's fastest of ``repeat`` runs, averaged."""
    total = 0.0
    for item in items:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            work(item)
            best = min(best, time.perf_counter() - start)
        total += best
    return total / len(items)


def jpeg(img: Image.Image, size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").resize(size).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def frames(refs: list[Image.Image], size: tuple[int, int]) -> list[Any]:
    """Decoded frames of an H.264 stream showing each picture for one frame."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=5)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for img in refs:
            rgb = np.asarray(img.convert("RGB").resize(size))
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, "rgb24")))
        out.mux(stream.encode(None))
    buf.seek(0)
    with av.open(buf, "r") as container:
        return list(container.decode(video=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pictures", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    refs = references(args.pictures)
    plain, local = HashOptions(thumbnail=True), HashOptions(thumbnail=True, local_features=True)

    print(f"{len(refs)} pictures, fastest of {args.repeat} per item")
    for size in ((800, 600), (4000, 3000)):
        data = [jpeg(img, size) for img in refs]

        def hashed(options: HashOptions) -> Callable[[bytes], object]:
            return lambda b: hash_stream(io.BytesIO(b), "q.jpg", None, options)

        def main_process(b: bytes) -> object:
            return describe_query_file(b, max_pixels=10**9, max_decode_pixels=None)

        t_plain = fastest(data, hashed(plain), args.repeat)
        t_local = fastest(data, hashed(local), args.repeat)
        t_main = fastest(data, main_process, args.repeat)
        print(
            f"  {size[0]}x{size[1]} JPEG: hashing {t_plain * 1e3:.1f} ms; with local features "
            f"in the worker {t_local * 1e3:.1f} ms (+{(t_local - t_plain) * 1e3:.1f} ms); "
            f"former second decode + description {t_main * 1e3:.1f} ms"
        )
    for size in ((1280, 720), (1920, 1080)):
        decoded = frames(refs, size)
        t_pdq = fastest(decoded, lambda f: hash_av_frame(f, FAST), args.repeat)
        t_orb = fastest(decoded, describe_frame, args.repeat)
        print(
            f"  {size[0]}x{size[1]} frame: PDQ {t_pdq * 1e3:.1f} ms, local features "
            f"{t_orb * 1e3:.1f} ms ({t_orb / t_pdq:.1f}x)"
        )


if __name__ == "__main__":
    main()
