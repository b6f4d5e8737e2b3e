"""Publishing a 1,000,000-entry list as a feed: catch-up speed and memory, page latency.

    .venv/bin/python bench/exchange_publish.py [--entries 1000000] [--db sqlite|postgresql|both]
                                               [--pages 300] [--dir /tmp/hw-bench-feed]

The list is built as ``bench/bench_list_add.py`` builds it (one entry through the library, the
rest written straight into the tables, an MD5 and a PDQ hash each). Then:

- catch-up: ``exchange publish`` of the list (``FeedStore.publish``): every entry becomes an
  ``add`` record, its leaf and perfect nodes are written, the size is signed. Records/s, and
  the process's peak resident memory before and after (``ru_maxrss``: the catch-up is bounded
  when the peak does not grow with the list);
- reference: the same Merkle root computed as RFC 6962 section 2.1 defines it, a plain
  recursive MTH over all the record leaves held in memory (records read back from the
  database first, not timed), to compare the incremental tree with a full recomputation;
- pages: ``FeedStore.page`` in process, then ``GET /v1/feeds/agency/records`` with a peer key
  through the served app (TestClient: authentication, the catch-up check, the page, both
  proofs, the audit record), ``--pages`` requests each at random ``after`` and
  ``known_size``, limit 500: p50/p99; and ``GET /healthz`` through the same client, the cost
  of the HTTP round trip alone.

PostgreSQL gets a throwaway database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import resource
import shutil
import sys
import time
from pathlib import Path

from sqlalchemy import select

from _databases import drop_database, fresh_databases
from bench_list_add import LIST, build, p
from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.exchange.feed import FeedStore
from hashwatch.exchange.feed_keys import create_publisher_key, default_key_path
from hashwatch.exchange.merkle import leaf_hash
from hashwatch.store.feed_models import FEED_RECORDS
from hashwatch.store.service import KeyStore, Role


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962, 2.1: MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest
    power of two below n; over leaf hashes, recomputed in full."""
    n = len(leaves)
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def run(label: str, url: str, work: Path, entries: int, pages: int) -> None:
    data = work / "data"
    shutil.rmtree(data, ignore_errors=True)
    hw = Hashwatch(Settings(database_url=url, data_dir=data))
    try:
        t = time.perf_counter()
        build(hw, entries)
        print(f"{label}: built {entries:,} entries in {time.perf_counter() - t:.1f} s")
        key = create_publisher_key(default_key_path(data), "bench.example")
        gc.collect()
        before = rss_mib()
        t, cpu = time.perf_counter(), time.process_time()
        info = FeedStore(hw.db).publish(LIST, key)
        took, cpu = time.perf_counter() - t, time.process_time() - cpu
        print(
            f"{label}: catch-up {info.size:,} records in {took:.1f} s "
            f"({info.size / took:,.0f} records/s; this process's CPU {cpu:.1f} s, "
            f"{info.size / cpu:,.0f} records per CPU second); peak RSS {before:.0f} MiB "
            f"before, {rss_mib():.0f} MiB after"
        )
        with hw.db.read() as conn:
            texts = conn.execute(
                select(FEED_RECORDS.c.record)
                .where(FEED_RECORDS.c.feed_id == info.feed_id)
                .order_by(FEED_RECORDS.c.seq)
            ).scalars()
            leaves = [leaf_hash(s.encode("utf-8")) for s in texts]
        sys.setrecursionlimit(10_000)
        t = time.perf_counter()
        root = mth(leaves)
        ref = time.perf_counter() - t
        del leaves
        assert root == info.root, "the incremental root differs from RFC 6962's"
        print(
            f"{label}: reference RFC 6962 full MTH of the same leaves: {ref:.2f} s "
            "(same root); the catch-up also builds the records and writes every node"
        )
        token = KeyStore(hw.db).create("peer", Role.PEER, grants={LIST: "feed"}).token
        headers = {"Authorization": f"Bearer {token}"}
        from fastapi.testclient import TestClient

        from hashwatch.web.app import create_app
        from hashwatch.web.settings import ServeSettings

        rng = random.Random(7)
        store = FeedStore(hw.db)
        direct = []
        for _ in range(pages):
            after, known = rng.randrange(info.size), rng.randrange(info.size)
            t = time.perf_counter()
            store.page(info, after, 500, known)
            direct.append(time.perf_counter() - t)
        print(
            f"{label}: FeedStore.page, 500 records with both proofs, in process: "
            f"p50 {p(direct, 0.5) * 1000:.1f} ms, p99 {p(direct, 0.99) * 1000:.1f} ms"
        )
        settings = ServeSettings(background=False, rate_per_s=1e6, burst=1e6)
        with TestClient(create_app(hw, settings)) as c:
            times = []
            for _ in range(pages):
                after = rng.randrange(info.size)
                params = {"after": after, "limit": 500, "known_size": rng.randrange(info.size)}
                t = time.perf_counter()
                answer = c.get(f"/v1/feeds/{LIST}/records", params=params, headers=headers)
                times.append(time.perf_counter() - t)
                assert answer.status_code == 200, answer.text
            base = []
            for _ in range(pages):
                t = time.perf_counter()
                assert c.get("/healthz").status_code == 200
                base.append(time.perf_counter() - t)
        print(
            f"{label}: page of 500 records with both proofs over HTTP: "
            f"p50 {p(times, 0.5) * 1000:.1f} ms, p99 {p(times, 0.99) * 1000:.1f} ms "
            f"({pages} requests); GET /healthz through the same client: "
            f"p50 {p(base, 0.5) * 1000:.1f} ms"
        )
    finally:
        hw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hw-bench-feed"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for label, url, pg_name in fresh_databases(args.dir, args.db):
        try:
            run(label, url, args.dir, args.entries, args.pages)
        finally:
            drop_database(pg_name)


if __name__ == "__main__":
    main()
