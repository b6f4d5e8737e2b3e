"""Exact PDQ radius search at 10 M hashes: hashwatch ``MihPdqIndex`` against FAISS, one run.

    .venv/bin/python bench/bench_index.py [--n 10000000] [--queries 20000]
        [--faiss-queries 400] [--verify 2000] [--datasets uniform,clustered] [--json out.json]

FAISS runs as HMA configures it: ``IndexBinaryMultiHash(256, 16, 16)`` with ``nflip = 1``
(exact at radius 31 by pigeonhole: 16 substrings of 16 bits, one flip each), queried with
``range_search(q, 32)`` (FAISS keeps distances < 32, i.e. ≤ 31). Both run on one thread.
Both answer the same queries; recall is checked against a batched brute-force scan, itself
spot-checked against the numpy reference ``LinearPdqIndex``.

Datasets (the generators are the point of this benchmark: real PDQ hashes are not uniform):

* ``uniform``: independent uniform random 256-bit hashes.
* ``clustered``: PDQ-like. A latent model gives correlated, biased bits: a 24-dimensional
  Gaussian latent is mapped onto the 16×16 grid of PDQ coefficients by loadings smoothed over
  the grid (neighbouring bits co-vary, adjacent-bit correlation ≈ 0.4), plus a per-bit offset
  (sd 0.3, so bit frequencies span ≈ 0.2–0.8) and noise; as in PDQ each hash is thresholded at
  its own median. Hashes come in families of near-duplicates: family sizes are 1 + Lomax(1.2),
  capped at 20,000 (mean ≈ 5; a third of all hashes sit in families of more than 100); a member
  is the family's base with ``d`` bits flipped, d = 0 for a fifth of members, otherwise
  geometric with mean 6, capped at 31. Rows are shuffled.

Queries: half are stored hashes with 0..31 bits flipped (uniformly), half are fresh hashes
from the dataset's own generator (uniform, or a new latent-model hash). Radius 31.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from hashwatch.index import LinearPdqIndex, MihPdqIndex, MihStats, load_index, save_index
from hashwatch.index import _kernels as kernels
from hashwatch.index.base import rows_to_words

RADIUS = 31
Rows = npt.NDArray[np.uint8]


# -- memory -------------------------------------------------------------------------------


def _status(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss() -> int:
    return _status("VmRSS")


def release() -> None:
    """Collect garbage and hand freed heap back to the OS, so RSS deltas mean something."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


_RUN_PEAK = [0]


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) so that a phase's own peak can be read."""
    _RUN_PEAK[0] = max(_RUN_PEAK[0], peak())
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak() -> int:
    return _status("VmHWM")


# -- data ---------------------------------------------------------------------------------


@numba.njit(cache=True)
def _flip(rows: Any, d: Any, seed: int) -> Any:
    """Flip d[i] distinct random bits of row i (rejection sampling; d ≤ 31 of 256)."""
    np.random.seed(seed)
    out = rows.copy()
    chosen = np.zeros(256, dtype=np.uint8)
    for i in range(out.shape[0]):
        chosen[:] = 0
        c = 0
        while c < d[i]:
            b = np.random.randint(0, 256)
            if chosen[b] == 0:
                chosen[b] = 1
                out[i, b >> 3] ^= np.uint8(1 << (b & 7))
                c += 1
    return out


def flip_bits(rng: np.random.Generator, rows: Rows, d: npt.ArrayLike) -> Rows:
    result: Rows = _flip(rows, np.asarray(d, dtype=np.int64), int(rng.integers(2**31)))
    return result


def uniform(rng: np.random.Generator, n: int) -> Rows:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


@dataclass
class LatentModel:
    """Correlated, biased PDQ-like bits: see the module docstring."""

    loadings: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    noise: float = 0.6

    @classmethod
    def make(cls, rng: np.random.Generator, k: int = 24, smooth: float = 1.5) -> LatentModel:
        a = rng.standard_normal((k, 16, 16))
        x = np.arange(16)
        kern = np.exp(-0.5 * ((x[:, None] - x[None, :]) / smooth) ** 2)
        a = np.einsum("ij,kjl,ml->kim", kern, a, kern).reshape(k, 256)
        a /= np.sqrt((a**2).sum(0, keepdims=True))
        bias = rng.standard_normal(256) * 0.3
        return cls(a.astype(np.float32), bias.astype(np.float32))

    def sample(self, rng: np.random.Generator, n: int, chunk: int = 250_000) -> Rows:
        out = np.empty((n, 32), np.uint8)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            z = rng.standard_normal((e - s, self.loadings.shape[0]), dtype=np.float32)
            g = z @ self.loadings + self.bias
            g += self.noise * rng.standard_normal((e - s, 256), dtype=np.float32)
            out[s:e] = np.packbits(g > np.median(g, axis=1, keepdims=True), axis=1)
        return out


def clustered(rng: np.random.Generator, model: LatentModel, n: int) -> tuple[Rows, Any]:
    """Families of near-duplicates around latent-model bases; returns (rows, family sizes)."""
    sizes = np.minimum(1 + np.floor(rng.pareto(1.2, n)).astype(np.int64), 20_000)
    cut = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    sizes = sizes[:cut]
    sizes[-1] -= int(sizes.sum()) - n
    bases = model.sample(rng, sizes.shape[0])
    family = np.repeat(np.arange(sizes.shape[0]), sizes)
    d = np.minimum(rng.geometric(1 / 6, n), 31)
    d[rng.random(n) < 0.2] = 0
    d[np.concatenate([[0], np.cumsum(sizes)[:-1]])] = 0  # each family keeps its base
    rows = flip_bits(rng, bases[family], d)
    del bases, family, d
    return rows[rng.permutation(n)], sizes


def make_queries(
    rng: np.random.Generator, data: Rows, nq: int, fresh: Rows
) -> tuple[Rows, npt.NDArray[np.bool_]]:
    """Even rows planted (a stored hash, 0..31 bits flipped), odd rows fresh; (rows, planted)."""
    planted = np.arange(nq) % 2 == 0
    q = np.empty((nq, 32), np.uint8)
    src = rng.integers(0, data.shape[0], int(planted.sum()))
    q[planted] = flip_bits(rng, data[src], rng.integers(0, 32, src.shape[0]))
    q[~planted] = fresh[: int((~planted).sum())]
    return q, planted


# -- ground truth ---------------------------------------------------------------------------

Pairs = set[tuple[int, int]]


def brute_force(data: Rows, queries: Rows, radius: int) -> Pairs:
    """(query, id) pairs within radius, by a batched numba scan over every row."""
    words = rows_to_words(data)
    no_dead = np.zeros(words.shape[0], dtype=np.uint8)
    qi, pos, _ = kernels.scan(rows_to_words(queries), words, no_dead, radius)
    return set(zip(qi.tolist(), pos.tolist(), strict=True))


def spot_check(data: Rows, queries: Rows, truth: Pairs, radius: int) -> None:
    """The numba scan agrees with the numpy reference on a few queries (no shared code)."""
    ref = LinearPdqIndex.build(np.arange(data.shape[0], dtype=np.int64), data)
    res = ref.query(queries, radius)
    got = set(zip(res.query.tolist(), res.ids.tolist(), strict=True))
    want = {p for p in truth if p[0] < queries.shape[0]}
    if got != want:
        raise SystemExit("brute-force scan disagrees with LinearPdqIndex: benchmark invalid")


def recall(found: Pairs, truth: Pairs, nq: int) -> float:
    want = {p for p in truth if p[0] < nq}
    return len(found & want) / max(1, len(want))


# -- runs -----------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    build_s: float = 0.0
    nbytes: int = 0
    rss_delta: int = 0
    build_peak: int = 0
    qps_same: float = 0.0
    qps_all: float = 0.0
    qps_planted: float = 0.0
    qps_fresh: float = 0.0
    recall: float = 0.0
    exact: bool = False
    save_s: float = 0.0
    load_s: float = 0.0
    load_warm_s: float = 0.0
    load_mmap_s: float = 0.0
    file_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def run_hashwatch(
    data: Rows, queries: Rows, planted: Any, n_same: int, n_verify: int, truth: Pairs, tmp: Path
) -> Run:
    run = Run("hashwatch MihPdqIndex")
    ids = np.arange(data.shape[0], dtype=np.int64)
    release()
    before = rss()
    reset_peak()
    t = time.perf_counter()
    index = MihPdqIndex.build(ids, data)
    run.build_s = time.perf_counter() - t
    run.build_peak = peak() - before
    release()
    run.rss_delta = rss() - before
    run.nbytes = index.nbytes
    run.extra["widths"] = index.widths
    index.query(queries[:8], RADIUS)  # loads the compiled kernels

    def timed(q: Rows, index: MihPdqIndex = index) -> tuple[float, Any]:
        t0 = time.perf_counter()
        res = index.query(q, RADIUS)
        return time.perf_counter() - t0, res

    dt, res = timed(queries[:n_same])
    run.qps_same = n_same / dt
    index.stats = MihStats()
    dt, res = timed(queries)
    run.qps_all = queries.shape[0] / dt
    stats = MihStats(**vars(index.stats))
    dt_p, _ = timed(queries[planted])
    dt_f, _ = timed(queries[~planted])
    run.qps_planted = int(planted.sum()) / dt_p
    run.qps_fresh = int((~planted).sum()) / dt_f
    run.extra["results_per_query"] = round(len(res) / queries.shape[0], 2)
    run.extra["fallback_share"] = round(stats.fallbacks / stats.queries, 4)
    probed = stats.queries - stats.fallbacks - stats.scanned
    run.extra["candidates_per_probed_query"] = round(stats.candidates / max(1, probed))
    keep = res.query < n_verify
    found = set(zip(res.query[keep].tolist(), res.ids[keep].tolist(), strict=True))
    run.recall = recall(found, truth, n_verify)
    want = {p for p in truth if p[0] < n_verify}
    dist_ok = bool(
        np.array_equal(
            res.distances[keep],
            _distances(data, queries, res.query[keep], res.ids[keep]),
        )
    )
    run.exact = found == want and dist_ok
    path = tmp / "index.hwpdq"
    t = time.perf_counter()
    save_index(index, path, {"bench": True})
    run.save_s = time.perf_counter() - t
    run.file_bytes = path.stat().st_size
    del index
    release()
    t = time.perf_counter()
    loaded, _ = load_index(path)
    run.load_s = time.perf_counter() - t
    again = loaded.query(queries[:n_same], RADIUS)
    first = res.query < n_same
    run.extra["reload_identical"] = bool(
        np.array_equal(again.ids, res.ids[first]) and np.array_equal(again.query, res.query[first])
    )
    del loaded
    release()
    t = time.perf_counter()  # the file was just read: this one comes from the page cache
    loaded, _ = load_index(path)
    run.load_warm_s = time.perf_counter() - t
    del loaded
    release()
    t = time.perf_counter()
    mapped, _ = load_index(path, mmap=True)
    run.load_mmap_s = time.perf_counter() - t
    del mapped
    path.unlink()
    release()
    return run


def _distances(data: Rows, queries: Rows, qi: Any, ids: Any) -> Any:
    a = rows_to_words(queries)[qi]
    b = rows_to_words(data)[ids]
    return np.bitwise_count(a ^ b).sum(axis=1, dtype=np.int32)


def run_faiss(data: Rows, queries: Rows, n_same: int, truth: Pairs, tmp: Path) -> Run:
    import faiss

    faiss.omp_set_num_threads(1)
    run = Run("FAISS IndexBinaryMultiHash 16×16, nflip 1")
    release()
    before = rss()
    reset_peak()
    t = time.perf_counter()
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
    index.add(data)
    run.build_s = time.perf_counter() - t
    run.build_peak = peak() - before
    release()
    run.rss_delta = rss() - before
    q = queries[:n_same]
    t = time.perf_counter()
    lims, _dist, labels = index.range_search(q, RADIUS + 1)
    run.qps_same = n_same / (time.perf_counter() - t)
    qi = np.repeat(np.arange(n_same), np.diff(lims.astype(np.int64)))
    found = set(zip(qi.tolist(), labels.tolist(), strict=True))
    run.recall = recall(found, truth, n_same)
    run.exact = found == {p for p in truth if p[0] < n_same}
    path = tmp / "faiss.index"
    t = time.perf_counter()
    faiss.write_index_binary(index, str(path))
    run.save_s = time.perf_counter() - t
    run.file_bytes = path.stat().st_size
    del index
    release()
    t = time.perf_counter()
    loaded = faiss.read_index_binary(str(path))
    run.load_s = time.perf_counter() - t
    del loaded
    path.unlink()
    release()
    return run


# -- report ---------------------------------------------------------------------------------


def _mb(x: int) -> str:
    return f"{x / 1e6:,.0f} MB"


def report(dataset: str, n: int, hw: Run, fa: Run | None, n_same: int, nq: int) -> str:
    lines = [
        f"### {dataset}, N = {n:,}, radius {RADIUS}, 1 thread",
        "",
        "| | hashwatch MihPdqIndex | FAISS MultiHash 16×16 nflip 1 |",
        "| --- | ---: | ---: |",
    ]

    def row(label: str, a: str, b: str) -> None:
        lines.append(f"| {label} | {a} | {b} |")

    f = fa or Run("-")
    row(f"queries/s ({n_same} same queries)", f"{hw.qps_same:,.0f}", f"{f.qps_same:,.1f}")
    ratio = hw.qps_same / f.qps_same if fa and f.qps_same else float("nan")
    row("speed ratio", f"**{ratio:,.0f}×**", "1×")
    row(f"queries/s (all {nq:,})", f"{hw.qps_all:,.0f}", "—")
    row("queries/s planted / fresh", f"{hw.qps_planted:,.0f} / {hw.qps_fresh:,.0f}", "—")
    row("recall vs brute force", f"{hw.recall:.4f}", f"{f.recall:.4f}")
    row("exact result sets", str(hw.exact), str(f.exact))
    row("build time", f"{hw.build_s:.1f} s", f"{f.build_s:.1f} s")
    row("index memory: array bytes", _mb(hw.nbytes), "—")
    row("index memory: RSS delta", _mb(hw.rss_delta), _mb(f.rss_delta))
    row("peak RSS during build", _mb(hw.build_peak), _mb(f.build_peak))
    row(
        "save (fsync'd) / file size",
        f"{hw.save_s:.2f} s / {_mb(hw.file_bytes)}",
        f"{f.save_s:.2f} s / {_mb(f.file_bytes)}",
    )
    row(
        "load: first / page cache warm / mmap",
        f"{hw.load_s:.2f} s / {hw.load_warm_s:.2f} s / {hw.load_mmap_s:.2f} s",
        f"{f.load_s:.2f} s",
    )
    lines.append("")
    extra = ", ".join(f"{k}={v}" for k, v in hw.extra.items())
    lines.append(f"hashwatch details: {extra}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--faiss-queries", type=int, default=400)
    ap.add_argument("--verify", type=int, default=2_000, help="queries checked by brute force")
    ap.add_argument("--datasets", default="uniform,clustered")
    ap.add_argument("--no-faiss", action="store_true")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    # hashwatch's kernels are serial numba code (no prange): one thread without setting it.
    n_same = min(args.faiss_queries, args.queries)
    n_verify = max(n_same, min(args.verify, args.queries))
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hw-bench-index-") as tmpdir:
        for dataset in args.datasets.split(","):
            rng = np.random.default_rng(args.seed)
            t = time.perf_counter()
            if dataset == "uniform":
                data = uniform(rng, args.n)
                fresh = uniform(rng, args.queries)
                info: dict[str, Any] = {}
            elif dataset == "clustered":
                model = LatentModel.make(rng)
                data, sizes = clustered(rng, model, args.n)
                fresh = model.sample(rng, args.queries)
                info = {
                    "families": int(sizes.shape[0]),
                    "largest_family": int(sizes.max()),
                    "share_in_families_over_100": float(sizes[sizes > 100].sum() / args.n),
                }
            else:
                raise SystemExit(f"unknown dataset {dataset!r}")
            queries, planted = make_queries(rng, data, args.queries, fresh)
            print(f"[{dataset}] generated in {time.perf_counter() - t:.1f} s {info}", flush=True)
            t = time.perf_counter()
            truth = brute_force(data, queries[:n_verify], RADIUS)
            spot_check(data, queries[:8], truth, RADIUS)
            print(f"[{dataset}] brute force on {n_verify} queries: {time.perf_counter() - t:.1f} s")
            hw = run_hashwatch(data, queries, planted, n_same, n_verify, truth, Path(tmpdir))
            print(f"[{dataset}] hashwatch: {hw}", flush=True)
            fa = None if args.no_faiss else run_faiss(data, queries, n_same, truth, Path(tmpdir))
            print(f"[{dataset}] faiss: {fa}", flush=True)
            text = report(dataset, args.n, hw, fa, n_same, args.queries)
            texts.append(text)
            print(text, flush=True)
            out.append({"dataset": dataset, "n": args.n, "info": info, "hashwatch": hw.__dict__,
                        "faiss": None if fa is None else fa.__dict__})  # fmt: skip
            del data, fresh, queries, truth
            release()
    import faiss  # only for its version

    with open("/proc/cpuinfo") as f:
        names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    cpu = names[0] if names else "?"
    print(
        f"\n{os.cpu_count()} cores ({cpu}); numpy {np.__version__}, numba {numba.__version__}, "
        f"faiss {faiss.__version__}"
    )
    print(f"peak RSS of the whole run: {_mb(max(_RUN_PEAK[0], peak()))}")
    print("load average at the end (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("\n\n".join(texts))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
