"""Ray: scan throughput and sharded PDQ matching, each beside its local reference in one run.

    .venv/bin/python bench/bench_ray.py [--files 2000] [--entries 10000000] [--part all]

Scan (``--part scan``): the tree of ``bench_scan.py`` (photos of several sizes, documents,
zip and tar.gz archives; generated, benign) scanned by the local runner with 1 and 2 workers
and by the Ray runner on a local Ray of 1 and 2 CPUs. Each run is preceded by a small
warm-up scan (Ray's worker processes start and import the hashing modules once, as they do
once per node on a cluster; the local runs get the same warm-up); Ray's own start-up is
printed apart. Every scan's results.jsonl
must equal the local one's (as sets).

Sharded matching (``--part shards``): ``--entries`` random PDQ hashes (benign stand-ins) in
one in-process ``MihPdqIndex`` (the reference) and in 1, 2 and 4 shard actors
(``hashwatch.matching.sharded``). Queries are stored hashes with 0-40 bits flipped and as many
random hashes, radius 31. Printed: batch throughput (queries/s in batches of 1,000), single
query latency (p50, p99), and recall against the reference (must be 1.0: the same rows).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from hashwatch.runner import single_threaded_libraries

single_threaded_libraries()  # as the command line does, before numpy is first imported

import numpy as np  # noqa: E402

from bench_scan import make_tree  # noqa: E402
from hashwatch.app import Hashwatch  # noqa: E402
from hashwatch.config import Settings  # noqa: E402
from hashwatch.index import MihPdqIndex  # noqa: E402
from hashwatch.index.base import QueryResult  # noqa: E402
from hashwatch.lists.model import ListKind  # noqa: E402


def _results(case: Path) -> set[str]:
    return set((case / "results.jsonl").read_text().splitlines())


def bench_scan(files: int, root: Path) -> None:
    import ray

    tree = root / "tree"
    make_tree(tree, files)
    warm = root / "warm"
    if not warm.exists():
        make_tree(warm, 40)
    on_disk = [p for p in tree.rglob("*") if p.is_file() and not p.name.startswith(".")]
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    hw = Hashwatch(Settings(database_url=f"sqlite:///{work / 'hw.sqlite3'}", data_dir=work))
    rng = np.random.default_rng(1)
    rows = ["md5,pdq"] + [f"{rng.bytes(16).hex()},{rng.bytes(32).hex()}" for _ in range(10_000)]
    (work / "known.csv").write_text("\n".join(rows) + "\n")
    hw.lists.import_file("known", work / "known.csv", kind=ListKind.KNOWN)
    print(f"scan: {len(on_disk)} files on disk under {tree}")
    timings: dict[str, float] = {}
    reference: set[str] | None = None
    for name, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
        if name == "ray":
            t = time.perf_counter()
            ray.shutdown()
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            started = time.perf_counter() - t
            t = time.perf_counter()
            hw.scan([warm], work / f"warm-{workers}", runner="ray", workers=workers)
            print(
                f"  ray {workers} CPU: start-up {started:.1f} s, warm-up scan "
                f"{time.perf_counter() - t:.1f} s (not counted)"
            )
        else:  # the same warm-up: numba's compiled kernels and the page cache, for fairness
            t = time.perf_counter()
            hw.scan([warm], work / f"warm-local-{workers}", runner="local", workers=workers)
            print(f"  local {workers}: warm-up scan {time.perf_counter() - t:.1f} s (not counted)")
        case = work / f"case-{name}-{workers}"
        t = time.perf_counter()
        outcome = hw.scan([tree], case, runner=name, workers=workers)
        seconds = time.perf_counter() - t
        timings[f"{name}-{workers}"] = seconds
        got = _results(case)
        if reference is None:
            reference = got
        assert got == reference, f"{name}-{workers}: results differ from the local scan's"
        print(
            f"  {name:5s} {workers} worker(s): {seconds:7.2f} s  "
            f"{len(on_disk) / seconds:7.1f} files/s  ({outcome.summary.files} items)"
        )
    ray.shutdown()
    for workers in (1, 2):
        ratio = timings[f"ray-{workers}"] / timings[f"local-{workers}"]
        print(f"  ray/local wall time with {workers} worker(s): {ratio:.2f}x")
    print(
        f"  scaling 1 -> 2 workers: local {timings['local-1'] / timings['local-2']:.2f}x, "
        f"ray {timings['ray-1'] / timings['ray-2']:.2f}x"
    )
    print("  results.jsonl equal (as sets) in all four runs")


def _queries(hashes: np.ndarray[Any, Any], count: int, seed: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    picked = hashes[rng.choice(len(hashes), size=count // 2, replace=False)]
    bits = np.unpackbits(picked, axis=1)
    for row, flips in zip(bits, rng.integers(0, 41, size=len(bits)), strict=True):
        row[rng.choice(256, size=flips, replace=False)] ^= 1
    noise = rng.integers(0, 256, size=(count - len(picked), 32), dtype=np.uint8)
    return np.concatenate([np.packbits(bits, axis=1), noise])


def _same(a: QueryResult, b: QueryResult) -> bool:
    return bool(
        np.array_equal(a.query, b.query)
        and np.array_equal(a.ids, b.ids)
        and np.array_equal(a.distances, b.distances)
    )


def _measure(query: Any, queries: np.ndarray[Any, Any], singles: int) -> dict[str, float]:
    query(queries[:100], 31)  # warm
    t = time.perf_counter()
    for start in range(0, len(queries), 1000):
        query(queries[start : start + 1000], 31)
    batch_qps = len(queries) / (time.perf_counter() - t)
    lat = []
    for i in range(singles):
        t = time.perf_counter()
        query(queries[i : i + 1], 31)
        lat.append(time.perf_counter() - t)
    return {
        "qps": batch_qps,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }


def bench_shards(entries: int, root: Path, queries_n: int, singles: int) -> None:
    import ray

    from hashwatch.matching.sharded import ShardedPdqIndex
    from hashwatch.store.database import Database

    work = root / "shards"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    url = f"sqlite:///{work / 'empty.sqlite3'}"
    Database.open(url).dispose()  # shards start from an empty database, then get the arrays
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 256, size=(entries, 32), dtype=np.uint8)
    ids = np.arange(entries, dtype=np.int64)
    queries = _queries(hashes, queries_n, seed=4)
    t = time.perf_counter()
    whole = MihPdqIndex()
    whole.add(ids, hashes)
    print(
        f"sharded matching: {entries:,} hashes; reference index built in "
        f"{time.perf_counter() - t:.1f} s, {whole.nbytes / 2**20:,.0f} MiB"
    )
    ref = whole.query(queries, 31)
    base = _measure(whole.query, queries, singles)
    print(
        f"  in process (reference): {base['qps']:9,.0f} queries/s  p50 {base['p50_ms']:.2f} ms"
        f"  p99 {base['p99_ms']:.2f} ms  ({len(ref)} rows)"
    )
    results: dict[str, Any] = {"entries": entries, "reference": base}
    ray.shutdown()
    ray.init(include_dashboard=False, log_to_driver=False)
    for count in (1, 2, 4):
        t = time.perf_counter()
        sharded = ShardedPdqIndex(url, None, count)
        sharded.refresh()
        sharded.add(ids, hashes)
        loaded = time.perf_counter() - t
        got = sharded.query(queries, 31)
        recall = 1.0 if _same(got, ref) else float(np.isin(ref.ids, got.ids).mean())
        m = _measure(sharded.query, queries, singles)
        results[f"shards-{count}"] = {**m, "recall": recall, "load_s": loaded}
        print(
            f"  {count} shard(s): {m['qps']:9,.0f} queries/s  p50 {m['p50_ms']:.2f} ms  "
            f"p99 {m['p99_ms']:.2f} ms  recall {recall:.3f}  (loaded in {loaded:.1f} s;"
            f" {m['qps'] / base['qps']:.2f}x the reference's queries/s)"
        )
        sharded.close()
    ray.shutdown()
    print(json.dumps(results))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2_000)
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--singles", type=int, default=1_000)
    ap.add_argument("--part", choices=("all", "scan", "shards"), default="all")
    ap.add_argument("--dir", default="/tmp/hw-bench-ray")
    args = ap.parse_args()
    root = Path(args.dir)
    if args.part in ("all", "scan"):
        bench_scan(args.files, root)
    if args.part in ("all", "shards"):
        bench_shards(args.entries, root, args.queries, args.singles)


if __name__ == "__main__":
    main()
