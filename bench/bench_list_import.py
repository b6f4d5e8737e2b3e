"""Importing a 1,000,000-record VICS 2.0 file into the database: time and peak memory.

    .venv/bin/python bench/bench_list_import.py [--records 1000000] [--db sqlite|postgresql|both]

Each import runs in a fresh process so its peak RSS is its own; a baseline process that opens the
database and imports nothing is measured the same way. Then the same file is imported again
(nothing changes: the version stays) and a file with 1 % of records changed is imported
(a new version). PostgreSQL gets a throwaway database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _databases import drop_database, fresh_databases
from bench_list_formats import records
from hashwatch.lists.formats import write_list
from hashwatch.lists.model import CategoryScheme, EntryRecord, ListHeader


def child(url: str, path: str, name: str) -> None:
    from hashwatch.app import Hashwatch
    from hashwatch.config import Settings

    hw = Hashwatch(Settings(database_url=url, data_dir=Path(tempfile.gettempdir()) / "hw-bench"))
    start = time.perf_counter()
    report = hw.lists.import_file(name, path) if path != "-" else None
    seconds = time.perf_counter() - start
    hw.db.change_seq()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"seconds": seconds, "peak_mib": peak, "report": report.as_dict() if report else None}
        )
    )


def run(url: str, path: Path | str, name: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, str(path), name],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def write(path: Path, count: int, changed_every: int = 0) -> None:
    def gen() -> Iterator[EntryRecord]:
        for n, rec in enumerate(records(count)):
            if changed_every and n % changed_every == 0:
                from dataclasses import replace

                rec = replace(rec, comment=f"changed {n}")
            yield rec

    header = ListHeader(format="vics2", scheme=CategoryScheme.US, metadata={})
    with path.open("wb") as fh:
        write_list(fh, "vics2", header, gen())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--db", default="both")
    ap.add_argument("--dir", default="/tmp/hw-bench-import")
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    first, second = work / f"list-{args.records}.json", work / f"list-{args.records}-v2.json"
    if not first.exists():
        write(first, args.records)
        write(second, args.records, changed_every=100)
    targets = fresh_databases(work, args.db)
    print(f"file: {args.records:,} VICS 2.0 records, {first.stat().st_size / 2**20:.0f} MiB")
    print("| database | step | seconds | records/s | peak RSS | baseline RSS | version |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, url, pg_name in targets:
        base = run(url, "-", "none")
        for step, path in (
            ("first import", first),
            ("same file again", first),
            ("1 % changed", second),
        ):
            r = run(url, path, "bench")
            rep = r["report"]
            print(
                f"| {label} | {step} | {r['seconds']:.1f} | {rep['records'] / r['seconds']:,.0f} "
                f"| {r['peak_mib']:.0f} MiB | {base['peak_mib']:.0f} MiB | {rep['version']} "
                f"(+{rep['added']} ~{rep['updated']} -{rep['withdrawn']}) |"
            )
        drop_database(pg_name)


if __name__ == "__main__":
    main()
