"""Subscribing to a served feed of N entries (default 1,000,000): entries/s, memory, the
cost of verification per page, beside an unverified fetch of the same pages.

    .venv/bin/python bench/exchange_sync.py [--entries 1000000] [--page 1000]
                                            [--dir /tmp/hw-bench-sync]

The publisher's list is built as ``bench/bench_list_add.py`` builds it (an MD5 and a PDQ hash
an entry) and published (``FeedStore.publish``); ``hashwatch serve`` serves it in its own
process. Then, in this process:

- reference: an unverified fetch of every page (``httpx`` GET and JSON decoding, nothing
  checked or applied): what reading the feed costs at all;
- verification alone: the same pages, already fetched, through ``FeedExchange.verify_page``
  (signature, both consistency proofs, record parsing): ms per page;
- sync: ``Syncer.sync`` into an empty SQLite database (fetch, verify, apply, one transaction
  a page): entries/s, and the peak resident memory before and after (``ru_maxrss``: bounded
  when it does not grow with the feed).

The ratio printed is sync time over unverified fetch time. python-threatexchange's file
exchange reads a local file, not a served feed, so the served reference is the unverified
fetch.
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from _serving import start_serve
from bench_list_add import LIST, build
from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.exchange.base import PeerConfig
from hashwatch.exchange.feed import FeedStore
from hashwatch.exchange.feed_client import FeedCheckpoint, FeedExchange
from hashwatch.exchange.feed_keys import create_publisher_key, default_key_path
from hashwatch.exchange.sync import Syncer
from hashwatch.store.service import KeyStore, Role


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(url: str, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    unlimited = {"HASHWATCH_SERVE_RATE_PER_S": "1000000", "HASHWATCH_SERVE_BURST": "1000000"}
    return start_serve(url, data, "--sync-interval", "0", env=unlimited)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hw-bench-sync"))
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    pub_url = f"sqlite:///{args.dir / 'publisher.sqlite3'}"
    pub = Hashwatch(Settings(database_url=pub_url, data_dir=args.dir / "publisher"))
    t = time.perf_counter()
    build(pub, args.entries)
    key = create_publisher_key(default_key_path(pub.settings.data_dir), "bench.example")
    info = FeedStore(pub.db).publish(LIST, key)
    token = KeyStore(pub.db).create("subscriber", Role.PEER, grants={LIST: "feed"}).token
    pub.close()
    print(
        f"publisher: {info.size:,} records built and published in {time.perf_counter() - t:.0f} s"
    )
    proc, base = serve(pub_url, args.dir / "publisher")
    try:
        headers = {"Authorization": f"Bearer {token}"}
        pages: list[dict[str, object]] = []
        t = time.perf_counter()
        with httpx.Client(headers=headers, timeout=120) as client:
            after = known = 0
            while True:
                # As a subscriber asks: after the first page, from the size it verified.
                params = {"after": after, "limit": args.page, "known_size": known}
                page = client.get(f"{base}/v1/feeds/{LIST}/records", params=params).json()
                pages.append(page)
                after += len(page["records"])
                known = int(str(page["checkpoint"]).split("\n")[1])
                if not page["more"]:
                    break
        fetch = time.perf_counter() - t
        print(
            f"reference, unverified fetch: {after:,} records in {len(pages)} pages, "
            f"{fetch:.1f} s ({after / fetch:,.0f} records/s)"
        )
        options = {"key": str(key.verifier), "page_size": str(args.page)}
        exchange = FeedExchange(PeerConfig("publisher", base, token, LIST, options))
        state = FeedCheckpoint()
        t = time.perf_counter()
        for page in pages:
            _, state, _ = exchange.verify_page(state, page)
        verify = time.perf_counter() - t
        print(
            f"verification alone: {verify / len(pages) * 1000:.1f} ms per page of {args.page} "
            f"records ({verify:.1f} s in all)"
        )
        del pages
        gc.collect()
        sub = Hashwatch(Settings(f"sqlite:///{args.dir / 'sub.sqlite3'}", args.dir / "sub"))
        syncer = Syncer(sub.db)
        syncer.subscribe(
            "publisher",
            base,
            lists=[(LIST, "from-publisher")],
            token=token,
            key=str(key.verifier),
            options={"page_size": str(args.page)},
        )
        before = rss_mib()
        marks: list[float] = []
        t = time.perf_counter()
        [report] = syncer.sync("publisher", on_page=lambda r: marks.append(rss_mib()))
        took = time.perf_counter() - t
        assert report.error is None and report.added == args.entries, report
        quarter = marks[len(marks) // 4] if marks else before
        print(
            f"sync (fetch, verify, apply; SQLite): {report.added:,} entries in {took:.1f} s "
            f"({report.added / took:,.0f} entries/s); peak RSS {before:.0f} MiB before, "
            f"{quarter:.0f} MiB a quarter through, {rss_mib():.0f} MiB after"
        )
        print(f"ratio sync / unverified fetch: {took / fetch:.1f}x")
        sub.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
