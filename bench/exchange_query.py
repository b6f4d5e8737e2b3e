"""A query-only round trip over loopback, beside the same match made with the library.

    .venv/bin/python bench/exchange_query.py [--entries 1000000] [--rounds 300]

Builds a SQLite database with one list of ``--entries`` random PDQ hashes (benign: random
bits), starts ``hashwatch serve`` (one worker) and asks it as a peer key with a ``query`` grant
(``POST /v1/match``, JSON signals; the peer's own rate and probing watch in the path, its query
logged), one signal per request and 100 per request, one request at a time. Each query is a
listed hash with 5 bits flipped, so it matches (a banded answer) and is not a probe. The
reference is the same match in-process: ``Matcher.match_many`` on the same database and index,
no HTTP; a matcher key's round trip is shown beside, to tell what the peer path adds to what
every match over HTTP costs (match records, the serve audit log). p50 and p99, and the ratio.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from _serving import start_serve
from hashwatch.app import Hashwatch
from hashwatch.matching.matcher import Signal
from hashwatch.signals.types import HashType
from hashwatch.store.service import KeyStore, Role


def build(base: Path, entries: int) -> tuple[str, list[str], dict[str, str]]:
    """The database, a sample of its hashes, and the tokens of a peer and a matcher key."""
    url = f"sqlite:///{base / 'bench.sqlite3'}"
    rng = np.random.default_rng(1)
    path = base / "list.txt"
    sample: list[str] = []
    with path.open("w") as out:
        for chunk in range(0, entries, 100_000):
            n = min(100_000, entries - chunk)
            rows = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
            values = [r.tobytes().hex() for r in rows]
            sample.extend(values[:1000])
            out.writelines(f"pdq {v}\n" for v in values)
    hw = Hashwatch.open(url, base)
    started = time.perf_counter()
    hw.lists.import_file("bench", path)
    print(f"imported {entries:,} PDQ hashes in {time.perf_counter() - started:.0f} s", flush=True)
    _ = hw.pdq_index  # build and persist the index once
    keys = KeyStore(hw.db)
    tokens = {
        "peer": keys.create(
            f"peer-{secrets.token_hex(3)}", Role.PEER, grants={"bench": "query"}
        ).token,
        "matcher": keys.create(
            f"matcher-{secrets.token_hex(3)}", Role.MATCHER, rate_per_s=10**6
        ).token,
    }
    hw.close()
    return url, sample, tokens


def near(values: list[str], seed: int) -> list[str]:
    """Each value with 5 bits flipped: a near copy, matched within the threshold."""
    rng = np.random.default_rng(seed)
    out = []
    for v in values:
        n = int(v, 16)
        for bit in rng.choice(256, 5, replace=False):
            n ^= 1 << int(bit)
        out.append(f"{n:064x}")
    return out


def serve(url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    peers_unlimited = {
        "HASHWATCH_SERVE_PEER_RATE_PER_S": "1000000",
        "HASHWATCH_SERVE_SIGNALS_PER_WINDOW": "0",
    }
    return start_serve(url, data_dir, env=peers_unlimited)


def pct(times: list[float]) -> tuple[float, float]:
    a = np.array(times) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        url, sample, tokens = build(base, args.entries)
        queries = near(sample, 2)
        batches = {1: [queries[i : i + 1] for i in range(args.rounds)]}
        batches[100] = [
            [queries[(i * 100 + j) % len(queries)] for j in range(100)]
            for i in range(max(args.rounds // 5, 20))
        ]
        results: dict[str, dict[int, tuple[float, float]]] = {"library": {}}
        proc, server = serve(url, base)
        try:
            for who, token in tokens.items():
                results[who] = {}
                headers = {"Authorization": f"Bearer {token}"}
                with httpx.Client(base_url=server, headers=headers, timeout=30) as client:
                    for size, runs in batches.items():
                        times = []
                        for batch in runs:
                            body = {"signals": [{"type": "pdq", "value": v} for v in batch]}
                            started = time.perf_counter()
                            r = client.post("/v1/match", json=body, params={"dihedral": "false"})
                            times.append(time.perf_counter() - started)
                            assert r.status_code == 200, r.text
                            assert all(s["matches"] for s in r.json()["signals"])
                        results[who][size] = pct(times[5:])
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        hw = Hashwatch.open(url, base)
        matcher = hw.matcher(dihedral=False)
        for size, runs in batches.items():
            times = []
            for batch in runs:
                items = [[Signal(HashType.PDQ, v)] for v in batch]
                started = time.perf_counter()
                found = matcher.match_many(items)
                times.append(time.perf_counter() - started)
                assert all(f.matches for f in found)
            results["library"][size] = pct(times[5:])
        hw.close()
    print(f"\nquery-only round trip, {args.entries:,} PDQ entries (ms)")
    print(
        "| signals per request | peer key over HTTP p50 / p99 | matcher key over HTTP p50 / p99 "
        "| library p50 / p99 | peer / library (p50) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for size in batches:
        (p50, p99), (m50, m99) = results["peer"][size], results["matcher"][size]
        l50, l99 = results["library"][size]
        print(
            f"| {size} | {p50:.2f} / {p99:.2f} | {m50:.2f} / {m99:.2f} | {l50:.2f} / {l99:.2f} "
            f"| {p50 / l50:.1f}× |"
        )


if __name__ == "__main__":
    main()
