"""Lookups per second of ``hashwatch serve`` over loopback, against HMA's published target.

    .venv/bin/python bench/bench_serve.py [--entries 1000000] [--seconds 10] [--concurrency 8]
        [--reference-src PATH]

Builds a SQLite database with ``--entries`` random PDQ hashes (benign: random bits), starts
``hashwatch serve`` with 1 and then 2 workers, and drives it from a thread pool of httpx clients
on the same machine (the load generator competes with the server for the cores, so the numbers
are a floor). Measured: PDQ lookups one signal per request, 100 signals per request, and image
uploads (a generated 256x256 JPEG, hashed by the server); one signal per request is measured
with none matching and with half of them stored hashes (each match recorded and audited).
HMA states 4,000 lookups/s at 10 M hashes as its target. ``--reference-src PATH`` serves the
same database with another hashwatch's ``src`` folder in the same run (before/after: e.g. a
``git archive`` of an older commit) and prints the ratio.
"""

from __future__ import annotations

import argparse
import io
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from _serving import start_serve
from hashwatch.app import Hashwatch
from hashwatch.store.service import KeyStore, Role

HMA_TARGET = 4000
KINDS = {
    "pdq": "PDQ, 1 signal/request, none matching",
    "pdqhalf": "PDQ, 1 signal/request, half matching",
    "pdq100": "PDQ, 100 signals/request",
    "image": "image upload",
}


def build(base: Path, entries: int) -> tuple[str, str]:
    url = f"sqlite:///{base / 'bench.sqlite3'}"
    rng = np.random.default_rng(1)
    path = base / "list.txt"
    with path.open("w") as out:
        for chunk in range(0, entries, 100_000):
            n = min(100_000, entries - chunk)
            rows = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
            out.writelines(f"pdq {r.tobytes().hex()}\n" for r in rows)
    hw = Hashwatch.open(url, base)
    started = time.perf_counter()
    hw.lists.import_file("bench", path)
    print(f"imported {entries:,} PDQ hashes in {time.perf_counter() - started:.0f} s", flush=True)
    _ = hw.pdq_index  # build and persist the index once
    token = (
        KeyStore(hw.db)
        .create(
            f"bench-{secrets.token_hex(3)}", Role.MATCHER, rate_per_s=10**6, signals_per_window=0
        )
        .token
    )
    hw.close()
    return url, token


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    arr = (rng.random((256, 256, 3)) * 64 + np.linspace(0, 190, 256)[None, :, None]).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def drive(
    base: str,
    token: str,
    kind: str,
    seconds: float,
    concurrency: int,
    stored: list[str] | None = None,
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    rng = np.random.default_rng(7)
    known = stored or []
    images = [jpeg(i) for i in range(16)]
    latencies: list[float] = []
    lookups = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(n: int) -> None:
        local: list[float] = []
        count = 0
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            i = n
            while time.perf_counter() < stop:
                if kind == "image":
                    files = {"file": ("b.jpg", images[i % 16], "image/jpeg")}
                    t = time.perf_counter()
                    r = client.post("/v1/match", files=files)
                    per = 1
                else:
                    per = 100 if kind == "pdq100" else 1
                    sig = [{"type": "pdq", "value": rng.bytes(32).hex()} for _ in range(per)]
                    if kind == "pdqhalf" and i % 2 == 0:  # a stored hash: matched and recorded
                        sig = [{"type": "pdq", "value": known[i % len(known)]}]
                    t = time.perf_counter()
                    r = client.post("/v1/match", json={"signals": sig})
                local.append(time.perf_counter() - t)
                r.raise_for_status()
                count += per
                i += 1
        with lock:
            latencies.extend(local)
            lookups[0] += count

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {
        "lookups_s": lookups[0] / elapsed,
        "requests_s": len(lat) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
    }


def serve(
    url: str, data_dir: Path, workers: int, src: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    env = {"PYTHONPATH": str(src)} if src is not None else None
    return start_serve(url, data_dir, "--workers", str(workers), env=env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument("--reference-src", type=Path, help="another hashwatch's src folder")
    args = parser.parse_args()
    versions: list[tuple[str, Path | None]] = [("this", None)]
    if args.reference_src is not None:
        versions.insert(0, ("reference", args.reference_src.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        url, token = build(base, args.entries)
        with (base / "list.txt").open() as listing:
            stored = [line.split()[1] for _, line in zip(range(10_000), listing, strict=False)]
        rows = []
        results: dict[tuple[str, int, str], dict[str, float]] = {}
        for workers in args.workers:
            for kind in args.kinds:
                for version, src in versions:  # side by side, row by row
                    proc, address = serve(url, base, workers, src)
                    try:
                        drive(address, token, kind, 1.0, args.concurrency, stored)  # warm-up
                        res = drive(address, token, kind, args.seconds, args.concurrency, stored)
                    finally:
                        proc.terminate()
                        proc.wait(timeout=30)
                    results[(version, workers, kind)] = res
                    print(version, workers, kind, {k: round(v, 1) for k, v in res.items()})
                rows.append((workers, kind, results[("this", workers, kind)]))
    if args.reference_src is not None:
        print("\nthis / reference, lookups/s:")
        for (version, workers, kind), res in results.items():
            if version == "this":
                ref = results[("reference", workers, kind)]
                ratio = res["lookups_s"] / ref["lookups_s"]
                print(f"  {workers} worker(s) {KINDS[kind]}: {ratio:.2f}x")
    names = KINDS
    print(f"\n{args.entries:,} PDQ hashes, {args.concurrency} client threads on loopback\n")
    print("| workers | lookup | lookups/s | requests/s | p50 ms | p99 ms | of HMA 4,000/s |")
    print("|---|---|---|---|---|---|---|")
    for workers, kind, r in rows:
        print(
            f"| {workers} | {names[kind]} | {r['lookups_s']:,.0f} | {r['requests_s']:,.0f} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {r['lookups_s'] / HMA_TARGET:.2f}x |"
        )


if __name__ == "__main__":
    main()
