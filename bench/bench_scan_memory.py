"""The scan's main process at the end of a large scan: peak memory of clustering and outputs.

    .venv/bin/python bench/bench_scan_memory.py [--items 100000] [--new-share 1.0]

Hashing is the workers' (bounded per unit); what grows with the evidence is the main process's
last phase: clustering the new media and writing the case outputs from the scan's state
database. This benchmark feeds that phase a synthetic record stream, as the workers would
have stored it: N generated benign records (a share of them new images with a PDQ hash, its
8 dihedral variants, EXIF leads and a 3.5 KB thumbnail; the rest plain files), written unit
by unit to a real state database; then runs the real ``Scanner`` finish (clustering, summary,
results.jsonl, VICS case, report.html, clusters and thumbnails files, manifest) and prints the
main process's peak RSS (VmHWM) before and after it, the time it took and the report's size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from hashwatch.app import Hashwatch
from hashwatch.audit import AuditLog
from hashwatch.config import Settings
from hashwatch.runner.local import LocalRunner
from hashwatch.scan.model import ItemRecord, ItemStatus
from hashwatch.scan.state import ScanState
from hashwatch.triage import ScanConfig, Scanner


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def feed(state: ScanState, n: int, new_share: float, root: str) -> None:
    rng = np.random.default_rng(15)
    thumb = bytes(rng.integers(0, 256, 3500, dtype=np.uint8))
    unit: list[ItemRecord] = []
    for i in range(n):
        path = f"{root}/d{i // 1000:04d}/f{i:07d}"
        if rng.random() < new_share:
            hashes = [rng.bytes(32).hex() for _ in range(8)]
            record = ItemRecord(
                path=path + ".jpg",
                root=root,
                size=40_000,
                md5=rng.bytes(16).hex(),
                sha256=rng.bytes(32).hex(),
                media_type="image",
                mime="image/jpeg",
                width=320,
                height=240,
                pdq=hashes[0],
                pdq_quality=90,
                pdq_dihedral=hashes,
                pdq_policy="fast-2",
                status=ItemStatus.NEW,
                exif={"make": "Generated", "model": f"Cam {i % 7}"},
                thumbnail=thumb,
            )
        else:
            record = ItemRecord(
                path=path + ".txt",
                root=root,
                size=4_000,
                md5=rng.bytes(16).hex(),
                sha256=rng.bytes(32).hex(),
                status=ItemStatus.OTHER,
            )
        unit.append(record)
        if len(unit) == 64:
            state.save_unit([r.path for r in unit], unit)
            unit = []
    if unit:
        state.save_unit([r.path for r in unit], unit)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--new-share", type=float, default=1.0)
    ap.add_argument("--dir", default="/tmp/hw-bench-memory")
    args = ap.parse_args()
    base = Path(args.dir)
    shutil.rmtree(base, ignore_errors=True)
    (base / "evidence").mkdir(parents=True)
    case = base / "case"
    case.mkdir()
    hw = Hashwatch(
        Settings.from_env(database_url=f"sqlite:///{base / 'hw.sqlite3'}", data_dir=base)
    )
    state = ScanState(case)
    t = time.perf_counter()
    feed(state, args.items, args.new_share, str(base / "evidence"))
    print(f"{args.items:,} records fed in {time.perf_counter() - t:.0f} s ({os.cpu_count()} cores)")
    config = ScanConfig(evidence=[base / "evidence"], case_dir=case)
    scanner = Scanner(config, hw.matcher(None), [], LocalRunner(1))
    state.set_meta("started", "2026-12-05T00:00:00+00:00")
    state.set_meta("case_id", str(uuid.uuid4()))
    state.set_meta("lists", [])
    state.set_meta("settings", {})
    before = peak_rss()
    t = time.perf_counter()
    outcome = scanner._finish(state, AuditLog(case / "audit.log"))
    took = time.perf_counter() - t
    after = peak_rss()
    s = outcome.summary
    print(
        f"finish: {took:.1f} s; {s.files:,} records, {s.new_clusters:,} clusters; "
        f"main-process peak RSS {before / 2**20:,.0f} MB before, {after / 2**20:,.0f} MB after "
        f"(+{(after - before) / 2**20:,.0f} MB); report.html "
        f"{(case / 'report.html').stat().st_size / 2**20:.1f} MB"
    )


if __name__ == "__main__":
    main()
