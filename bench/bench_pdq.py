"""Benchmark: PDQ images/s of hashwatch's ``fast`` policy against "Pillow full decode + pdqhash".

Run by hand (not a test)::

    .venv/bin/python bench/bench_pdq.py            # 40 images of 12 MP, plus 1024 px copies
    .venv/bin/python bench/bench_pdq.py --count 10 --markdown

What it does, and why:

* Generates benign "phone-like" JPEGs of 4000x3000 (12 MP): the bundled public test photos
  (a bridge, a letterboxed sample, a screenshot-like PNG) upscaled with random crops, colour and
  gamma shifts, and procedurally drawn scenes (sky, hills, shapes, texture, text). Sensor-like
  noise (luma and chroma) is added before saving at quality ~90, because noise is what makes real
  phone JPEGs slow to decode and what makes PDQ bits near the median unstable. The files are
  cached (``--cache``) so later runs measure, not generate.
* Times, on ONE core (the process is pinned to one CPU and thread pools are limited to one
  thread), the reference pipeline (``Image.open`` + full decode + ``np.asarray`` + pdqhash, the
  way python-threatexchange hashes) and ``compute_pdq(data, FAST)`` on the same bytes, read into
  memory first so the disk is not measured.
* Prints images/s, the speed ratio, and the agreement distribution (bits between the two hashes
  of the same file: median, p90, p99, max). The issue's goal: ratio >= 10x at 12 MP with median
  <= 2 bits and p99 <= 12 bits.

``--bits DIR`` measures something else: the CPU time of ``hash_decoded`` on pictures of DIR
(``*/*.jpg``, e.g. bench/bench_scan_scale.py's tree) already decoded, with and without the
dihedral hashes, for ``fast-2`` and ``reference-1``: "before" makes the bits from pdqhash's
vectors (``compute`` / ``compute_dihedral``, as hashwatch did before issue 15), "after" is the
current code; rounds alternate, and both must give the same hashes::

    .venv/bin/python bench/bench_pdq.py --bits /tmp/hw-bench-scale/tree-12000 --count 400

``--policies DIR`` compares ``fast-2`` with ``fast-3`` on the same decoded pictures of DIR:
CPU of ``hash_decoded(..., dihedral=True)`` (rounds alternate; the plain hashes must be equal,
and fast-3's first dihedral hash must be its plain hash), how many pictures' first dihedral
hash or quality differs between the two, and the CPU a fresh process (a scan worker's start)
spends importing hashwatch's PDQ and hashing its first picture under each policy
(``resource.getrusage``, whole process, numba's cache already filled)::

    .venv/bin/python bench/bench_pdq.py --policies /tmp/hw-bench-scale/tree-12000 --count 2000
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# One core, one thread: must happen before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
import PIL  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter, ImageFont  # noqa: E402

from hashwatch.signals import pdq  # noqa: E402
from hashwatch.signals.image import DecodedImage, decode_image  # noqa: E402
from hashwatch.signals.pdq import (  # noqa: E402
    FAST,
    FAST_2,
    REFERENCE,
    PdqPolicy,
    PdqResult,
    compute_pdq,
    hash_decoded,
    pdq_distance,
)

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    ROOT / "tests/data/pdq/dih/bridge-1-original.jpg",
    ROOT / "tests/data/pdq/misc/letterboxed_sample-b.jpg",
    ROOT / "tests/data/pdq/misc/c.png",
    ROOT / "tests/data/pdq/dih/bridge-2-rotate-90.jpg",
]
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hashwatch-bench"


# --------------------------------------------------------------------------- corpus


def _procedural_scene(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A drawn outdoor-ish scene at a modest size (it is upscaled later, like a real crop)."""
    w, h = size
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    top = rng.uniform(60, 200, 3)
    bottom = rng.uniform(100, 255, 3)
    sky = (top * (1 - y) + bottom * y) * np.ones((1, w, 1))
    img = Image.fromarray(np.clip(sky, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    # Hills: a few layers of sine profiles.
    xs = np.arange(w)
    for layer in range(int(rng.integers(2, 5))):
        base = h * (0.45 + 0.12 * layer + rng.uniform(-0.05, 0.05))
        amp = rng.uniform(0.02, 0.12) * h
        freq = rng.uniform(1, 6) * 2 * np.pi / w
        phase = rng.uniform(0, 2 * np.pi)
        ys = base + amp * np.sin(xs * freq + phase) + 0.3 * amp * np.sin(xs * freq * 3.1)
        poly = [(0, h)] + [(int(x), int(v)) for x, v in zip(xs[::8], ys[::8], strict=True)]
        poly.append((w, h))
        colour = tuple(int(c) for c in rng.integers(20, 200, 3))
        draw.polygon(poly, fill=colour)
    # Objects: ellipses, rectangles, lines.
    for _ in range(int(rng.integers(8, 30))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(10, w // 3)), y0 + int(rng.integers(10, h // 3))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(2, 12)))
    font = ImageFont.load_default(size=max(12, h // 12))
    draw.text((w * 0.05, h * 0.05), f"scene {rng.integers(1000)}", fill=(250, 250, 250), font=font)
    # Texture: upscaled value noise, blended in.
    tex = rng.uniform(-40, 40, (h // 16 + 1, w // 16 + 1)).astype(np.float32)
    tex_img = Image.fromarray(tex, "F").resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) + np.asarray(tex_img)[..., None]
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))


def _phone_like(src: Image.Image, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Random crop, colour/gamma shift, upscale to ``size``, add sensor-like noise."""
    src = src.convert("RGB")
    sw, sh = src.size
    aspect = size[0] / size[1]
    cw = int(sw * rng.uniform(0.7, 1.0))
    ch = int(cw / aspect)
    if ch > sh:
        ch = int(sh * rng.uniform(0.7, 1.0))
        cw = int(ch * aspect)
    x0 = int(rng.integers(0, sw - cw + 1))
    y0 = int(rng.integers(0, sh - ch + 1))
    img = src.crop((x0, y0, x0 + cw, y0 + ch)).resize(size, Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    arr = arr ** rng.uniform(0.8, 1.25)
    arr = arr * rng.uniform(0.85, 1.15, 3) + rng.uniform(-0.05, 0.05, 3)
    arr *= 255.0
    h, w = size[1], size[0]
    luma_noise = rng.normal(0.0, rng.uniform(3.0, 8.0), (h, w, 1)).astype(np.float32)
    chroma_noise = rng.normal(0.0, rng.uniform(1.0, 3.0), (h, w, 3)).astype(np.float32)
    arr += luma_noise
    arr += chroma_noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def generate_corpus(cache: Path, count: int, size: tuple[int, int], seed: int = 1) -> list[Path]:
    """Write (or reuse) ``count`` benign phone-like JPEGs of ``size`` under ``cache``."""
    folder = cache / f"{size[0]}x{size[1]}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = [Image.open(p) for p in SOURCES if p.exists()]
    paths = []
    for i in range(count):
        path = folder / f"phone-{i:03d}.jpg"
        # Draw the random numbers even for cached files so file i is always the same image.
        sub = np.random.default_rng(rng.integers(2**63))
        paths.append(path)
        if path.exists():
            continue
        if i % 2 == 0 and sources:
            src: Image.Image = sources[(i // 2) % len(sources)]
        else:
            src = _procedural_scene(
                sub, (int(sub.integers(800, 1600)), int(sub.integers(600, 1200)))
            )
        img = _phone_like(src, sub, size)
        quality = int(sub.integers(86, 95))
        img.save(path, "JPEG", quality=quality, subsampling=2)
    return paths


# --------------------------------------------------------------------------- measuring


def reference_hash(data: bytes) -> str:
    """The baseline: Pillow full decode + pdqhash, as python-threatexchange does it."""
    image = Image.open(io.BytesIO(data))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.concatenate([array[..., np.newaxis]] * 3, axis=2)
    bits, _quality = pdqhash.compute(array)
    return f"{int(''.join(str(int(b)) for b in bits), 2):064x}"


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    label: str
    images: int
    ref_per_s: float
    fast_per_s: float
    distances: tuple[int, ...]

    @property
    def ratio(self) -> float:
        return self.fast_per_s / self.ref_per_s

    def pct(self, q: float) -> float:
        return float(np.percentile(self.distances, q))


def _timed(fn: Callable[[bytes], str], blobs: Sequence[bytes]) -> tuple[float, list[str]]:
    """Seconds to hash every blob once, and the hashes."""
    start = time.perf_counter()
    hashes = [fn(b) for b in blobs]
    return time.perf_counter() - start, hashes


def measure(label: str, blobs: Sequence[bytes], policy: PdqPolicy, repeat: int) -> Row:
    """Time the reference and ``policy`` on the same in-memory bytes, best of ``repeat``.

    The two alternate, so that load from other processes hits both alike.
    """

    def fast_fn(data: bytes) -> str:
        return compute_pdq(data, policy).hash

    fast_fn(blobs[0])  # warm-up: imports, plug-ins, cached filter weights
    reference_hash(blobs[0])
    ref_best = fast_best = float("inf")
    ref_hashes: list[str] = []
    fast_hashes: list[str] = []
    for _ in range(repeat):
        seconds, ref_hashes = _timed(reference_hash, blobs)
        ref_best = min(ref_best, seconds)
        seconds, fast_hashes = _timed(fast_fn, blobs)
        fast_best = min(fast_best, seconds)
    dists = tuple(pdq_distance(a, b) for a, b in zip(ref_hashes, fast_hashes, strict=True))
    return Row(label, len(blobs), len(blobs) / ref_best, len(blobs) / fast_best, dists)


def _downsized(paths: Sequence[Path], longest: int) -> list[bytes]:
    """The same pictures re-saved at ``longest`` px (quality 90), as in-memory JPEGs."""
    out = []
    for p in paths:
        opened = Image.open(p)
        opened.draft("RGB", (longest, longest))
        img = opened.convert("RGB")
        img.thumbnail((longest, longest), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def format_table(rows: Sequence[Row], policy: PdqPolicy) -> str:
    """The result as a Markdown table."""
    lines = [
        f"| images | n | reference img/s | `{policy.name}` img/s | ratio | "
        "median bits | p90 | p99 | max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.images} | {r.ref_per_s:.1f} | {r.fast_per_s:.1f} | "
            f"{r.ratio:.1f}x | {statistics.median(r.distances):g} | {r.pct(90):g} | "
            f"{r.pct(99):g} | {max(r.distances)} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- --bits


def _bits_from_vectors(
    pixels: np.ndarray, dihedral: bool, dct64: str = "compute_dihedral"
) -> tuple[tuple[str, ...], int]:
    """The bits as hashwatch made them before: pdqhash's 256-element vectors, packed."""
    if dct64 != "compute_dihedral":
        raise ValueError("before issue 15 every dihedral hash came from compute_dihedral")

    def hexed(vector: np.ndarray) -> str:
        return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()

    if dihedral:
        vectors, quality = pdqhash.compute_dihedral(pixels)
        return tuple(hexed(v) for v in vectors), int(quality)
    vector, quality = pdqhash.compute(pixels)
    return (hexed(vector),), int(quality)


def _kernel_load_cpu() -> float:
    """CPU seconds a fresh process spends on its first 64x64 dihedral hash (numba, cached)."""
    code = (
        "import time, numpy as np; from hashwatch.signals import pdq; "
        "px = np.zeros((64, 64, 3), np.uint8); t = time.process_time(); "
        "pdq._pdq_hashes(px, True, 'compute_dihedral'); print(time.process_time() - t)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # fill cache
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout)


def measure_bits(tree: Path, count: int, rounds: int) -> None:
    """Per-picture CPU time of hash_decoded, bits from vectors (before) and from the DCT."""
    paths = sorted(tree.glob("*/*.jpg"))[:count]
    if not paths:
        raise SystemExit(f"no */*.jpg under {tree}")
    current = pdq._pdq_hashes
    cases: list[tuple[PdqPolicy, bool, list[DecodedImage]]] = []
    for policy in (FAST_2, REFERENCE):
        decoded = [decode_image(p.read_bytes(), policy) for p in paths]
        cases += [(policy, False, decoded), (policy, True, decoded)]
    times: dict[tuple[str, bool, str], list[float]] = {}
    before_results: dict[tuple[str, bool], list[PdqResult]] = {}
    try:
        for _ in range(rounds):
            for label, bits_fn in (("before", _bits_from_vectors), ("after", current)):
                pdq._pdq_hashes = bits_fn
                for policy, dihedral, decoded in cases:
                    hash_decoded(decoded[0], policy, dihedral=dihedral)  # warm (numba load)
                    start = time.process_time()
                    results = [hash_decoded(d, policy, dihedral=dihedral) for d in decoded]
                    spent = time.process_time() - start
                    times.setdefault((policy.name, dihedral, label), []).append(spent)
                    key = (policy.name, dihedral)
                    if label == "before":
                        before_results[key] = results
                    elif results != before_results[key]:
                        raise SystemExit(f"{policy.name} dihedral={dihedral}: hashes differ")
    finally:
        pdq._pdq_hashes = current
    print(f"hash_decoded on {len(paths)} decoded pictures of {tree}, one core, {rounds} rounds")
    print("| policy | dihedral | before ms/picture | after ms/picture | saved ms |")
    print("|---|---|---:|---:|---:|")
    for policy, dihedral, _ in cases:
        before, after = (
            statistics.median(times[(policy.name, dihedral, label)]) * 1e3 / len(paths)
            for label in ("before", "after")
        )
        print(f"| {policy.name} | {dihedral} | {before:.3f} | {after:.3f} | {before - after:.3f} |")
    print(f"first dihedral hash of 64x64 pixels in a fresh process: {_kernel_load_cpu():.3f} s CPU")


_STARTUP = """
import resource, sys
from hashwatch.signals.image import decode_image
from hashwatch.signals.pdq import get_pdq_policy, hash_decoded
policy, dihedral = get_pdq_policy(sys.argv[1]), sys.argv[2] == "1"
data = open(sys.argv[3], "rb").read()
hash_decoded(decode_image(data, policy), policy, dihedral=dihedral)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_utime + usage.ru_stime, "numba" in sys.modules)
"""


def _startup_cpu(policy: str, dihedral: bool, picture: Path) -> tuple[float, bool]:
    """CPU seconds of a fresh process that imports the PDQ code and hashes one picture."""
    argv = [sys.executable, "-c", _STARTUP, policy, "1" if dihedral else "0", str(picture)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), out[1] == "True"


def measure_policies(tree: Path, count: int, rounds: int) -> None:
    """fast-2 against fast-3: dihedral CPU a picture, first-hash agreement, start-up CPU."""
    paths = sorted(tree.glob("*/*.jpg"))[:count]
    if not paths:
        raise SystemExit(f"no */*.jpg under {tree}")
    decoded = [decode_image(p.read_bytes(), FAST) for p in paths]
    plain = [hash_decoded(d, FAST) for d in decoded]
    results: dict[str, list[PdqResult]] = {}
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for policy in (FAST_2, FAST):
            hash_decoded(decoded[0], policy, dihedral=True)  # warm (numba load for fast-2)
            start = time.process_time()
            got = [hash_decoded(d, policy, dihedral=True) for d in decoded]
            times.setdefault(policy.name, []).append(time.process_time() - start)
            results[policy.name] = got
    for new, alone in zip(results[FAST.name], plain, strict=True):
        if (new.hash, new.quality) != (alone.hash, alone.quality) or new.dihedral is None:
            raise SystemExit("fast-3: the dihedral call's hash is not the plain hash")
    apart = sum(
        (old.hash, old.quality) != (new.hash, new.quality)
        for new, old in zip(results[FAST.name], results[FAST_2.name], strict=True)
    )
    variants = sum(
        a != b
        for new, old in zip(results[FAST.name], results[FAST_2.name], strict=True)
        for a, b in zip(new.dihedral or (), old.dihedral or (), strict=True)
    )
    print(f"hash_decoded(dihedral=True) on {len(paths)} decoded pictures of {tree}, one core")
    print("| policy | ms/picture (median of rounds) |")
    print("|---|---:|")
    for name in (FAST_2.name, FAST.name):
        print(f"| {name} | {statistics.median(times[name]) * 1e3 / len(paths):.3f} |")
    print(
        f"pictures whose first dihedral hash or quality differs (fast-2 vs fast-3): {apart}; "
        f"dihedral hashes that differ: {variants} of {8 * len(paths)}"
    )
    for name, dihedral in ((FAST.name, True), (FAST_2.name, True)):  # fill numba's cache
        _startup_cpu(name, dihedral, paths[0])
    startup: dict[tuple[str, bool], list[float]] = {}
    numba: dict[tuple[str, bool], bool] = {}
    for _ in range(rounds):
        for key in ((FAST.name, False), (FAST_2.name, True), (FAST.name, True)):
            cpu, numba[key] = _startup_cpu(*key, paths[0])
            startup.setdefault(key, []).append(cpu)
    print(f"fresh process: import, decode and hash one picture ({rounds} runs each, median)")
    print("| policy | dihedral | CPU s | numba loaded |")
    print("|---|---|---:|---|")
    for key, cpus in startup.items():
        print(f"| {key[0]} | {key[1]} | {statistics.median(cpus):.3f} | {numba[key]} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=40, help="12 MP images to generate/use")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where images are kept")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timing runs")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown table")
    parser.add_argument(
        "--bits", type=Path, metavar="DIR", help="time hash_decoded on DIR/*/*.jpg instead"
    )
    parser.add_argument(
        "--policies", type=Path, metavar="DIR", help="fast-2 against fast-3 on DIR/*/*.jpg"
    )
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    if args.bits is not None:
        measure_bits(args.bits, args.count, max(args.repeat, 5))
        return 0
    if args.policies is not None:
        measure_policies(args.policies, args.count, max(args.repeat, 5))
        return 0
    policy = FAST

    paths = generate_corpus(args.cache, args.count, (4000, 3000))
    big = [p.read_bytes() for p in paths]
    small = _downsized(paths, 1024)
    rows = [
        measure("12 MP JPEG (4000x3000, q86-94, noisy)", big, policy, args.repeat),
        measure("1024 px JPEG (q90)", small, policy, max(args.repeat, 3)),
    ]
    table = format_table(rows, policy)
    if args.markdown:
        print(table)
        return 0
    print(f"policy {policy.name}: {policy}")
    print(f"one core, Pillow {PIL.__version__}, numpy {np.__version__}")
    print(table)
    for r in rows:
        print(f"{r.label}: distances {sorted(r.distances)}")
    big_row = rows[0]
    ok = big_row.ratio >= 10 and statistics.median(big_row.distances) <= 2 and big_row.pct(99) <= 12
    print(f"goal at 12 MP (>= 10x, median <= 2, p99 <= 12): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
