"""The scan's main process at the end of a large scan: peak memory of clustering and outputs.

    .venv/bin/python bench/bench_scan_memory.py [--items 100000] [--new-share 1.0]
        [--fill sql|records] [--phases]

Hashing is the workers' (bounded per unit); what grows with the evidence is the main process's
last phase: clustering the new media and writing the case outputs from the scan's state
database. This benchmark feeds that phase a synthetic record stream, as the workers would
have stored it: N generated benign records (a share of them new images with a PDQ hash, its
8 dihedral variants, EXIF leads and a ~4 KB JPEG thumbnail; the rest plain files), written unit
by unit to a real state database; then runs the real ``Scanner`` finish (clustering, summary,
results.jsonl, VICS case, report.html, clusters and thumbnails files, manifest) and prints the
main process's peak RSS (VmHWM) before and after it, the time it took and the report's size.

``--fill records`` stores ``ItemRecord`` objects unit by unit through ``ScanState.save_unit``
(the workers' path; ~1 hour for a million on a 2-core machine). ``--fill sql`` (default)
writes the same records' JSON in one SQL statement from a template record made by
``ItemRecord.as_json``, with each item's path, digests, PDQ and dihedral hashes and EXIF
model set by ``json_set`` (a million in a minute or two). Either way the finish is the real
one, over a real state database. Every 50th new image repeats its predecessor's PDQ (a
cluster of two) and every 100th also its MD5 (one VICS Media with two files).

``--phases`` resets the peak (``/proc/self/clear_refs``) before each step of the finish
(clustering, summary, evidence roots, results.jsonl, VICS case, report.html, clusters and
thumbnails files, manifest) and prints each step's own peak RSS and time.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

import hashwatch.triage as triage
from hashwatch.app import Hashwatch
from hashwatch.audit import AuditLog
from hashwatch.config import Settings
from hashwatch.runner.local import LocalRunner
from hashwatch.scan.model import ItemRecord, ItemStatus
from hashwatch.scan.state import ScanState
from hashwatch.triage import ScanConfig, Scanner


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    return _status("VmHWM:")


def rss() -> int:
    return _status("VmRSS:")


PHASES: list[tuple[str, float, float, int, int]] = []  # name, s, CPU s, peak RSS, RSS after


def _measured(name: str, fn: Any) -> Any:
    """``fn`` with its own peak RSS recorded: the peak is reset before it runs."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        t, cpu = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        spent = time.process_time() - cpu
        PHASES.append((name, time.perf_counter() - t, spent, peak_rss(), rss()))
        return out

    return run


def measure_phases() -> None:
    """Wrap the finish's steps (as ``hashwatch.triage`` calls them) to record each one."""
    for name in (
        "MediaColumns",
        "cluster_columns",
        "roots_from_records",
        "roots_from_sorted_records",
        "write_vics_case",
        "write_vics_case_from_state",
        "write_html_report",
        "write_clusters",
        "write_thumbnails",
        "write_manifest",
    ):
        if hasattr(triage, name):  # the names of the code measured (before or after)
            setattr(triage, name, _measured(name, getattr(triage, name)))
    Scanner._summarise = _measured("summary", Scanner._summarise)  # type: ignore[method-assign]
    ScanState.record_texts = _measured_iter(  # type: ignore[method-assign]
        "results.jsonl", ScanState.record_texts
    )


def _measured_iter(name: str, fn: Any) -> Any:
    """An iterator-returning ``fn`` measured from its first item to its exhaustion."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        Path("/proc/self/clear_refs").write_text("5")
        t, cpu = time.perf_counter(), time.process_time()
        yield from fn(*args, **kwargs)
        spent = time.process_time() - cpu
        PHASES.append((name, time.perf_counter() - t, spent, peak_rss(), rss()))

    return run


def thumbnail() -> bytes:
    """A generated benign 160x120 JPEG (noise over a gradient, ~4 KB), as a scan's thumbnail
    would be: the report puts only real JPEG or PNG bytes in the page."""
    from PIL import Image

    rng = np.random.default_rng(15)
    ramp = np.linspace(0, 200, 160, dtype=np.float64)[None, :, None]
    pixels = ramp + rng.normal(0, 12, (120, 160, 3))
    out = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(out, "JPEG", quality=75)
    return out.getvalue()


def feed(state: ScanState, n: int, new_share: float, root: str) -> None:
    rng = np.random.default_rng(15)
    thumb = thumbnail()
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
                pdq_policy="fast-3",
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


def _hex(seed: int, k: int, size: int) -> str:
    return hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=size).hexdigest()


def feed_sql(state: ScanState, n: int, new_share: float, root: str) -> None:
    """The records of :func:`feed` (new images and plain files), written by SQL from a
    template record's ``as_json``; hashes derived from the item number (deterministic)."""
    thumb = thumbnail()
    new = ItemRecord(
        path="",
        root=root,
        size=40_000,
        md5="",
        sha256="",
        media_type="image",
        mime="image/jpeg",
        width=320,
        height=240,
        pdq="",
        pdq_quality=90,
        pdq_dihedral=[],
        pdq_policy="fast-3",
        status=ItemStatus.NEW,
        exif={"make": "Generated", "model": ""},
    ).as_json()
    new["pdq_dihedral"] = []  # as_json leaves an empty list out; json_set fills it
    other = ItemRecord(
        path="", root=root, size=4_000, md5="", sha256="", status=ItemStatus.OTHER
    ).as_json()
    conn = state.conn
    conn.create_function("hx", 3, _hex, deterministic=True)
    new_below = round(new_share * 100)
    seed_pdq = "(i - (i % 50 = 1))"  # every 50th: its predecessor's picture again
    seed_md5 = "(i - (i % 100 = 1))"  # every 100th: the same file again (same MD5)
    dihedral = ", ".join(f"hx({seed_pdq}, {k}, 32)" for k in range(1, 8))
    with conn:
        conn.execute("BEGIN")
        conn.execute(
            f"""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :n - 1)
            INSERT INTO items(root, path, status, record, thumbnail)
            SELECT :root, p, CASE WHEN isnew THEN 'new' ELSE 'other' END,
                CASE WHEN isnew THEN json_set(:new, '$.path', p,
                    '$.md5', hx({seed_md5}, 100, 16), '$.sha256', hx({seed_md5}, 101, 32),
                    '$.pdq', hx({seed_pdq}, 0, 32),
                    '$.pdq_dihedral', json_array(hx({seed_pdq}, 0, 32), {dihedral}),
                    '$.exif.model', 'Cam ' || (i % 7))
                ELSE json_set(:other, '$.path', p,
                    '$.md5', hx(i, 100, 16), '$.sha256', hx(i, 101, 32)) END,
                CASE WHEN isnew THEN :thumb END
            FROM (SELECT i, isnew, printf('%s/d%04d/f%07d', :root, i / 1000, i)
                || CASE WHEN isnew THEN '.jpg' ELSE '.txt' END AS p
                FROM (SELECT i, (i % 100) < :below AS isnew FROM n))
            """,
            {
                "n": n,
                "root": root,
                "new": json.dumps(new),
                "other": json.dumps(other),
                "thumb": thumb,
                "below": new_below,
            },
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--new-share", type=float, default=1.0)
    ap.add_argument("--dir", default="/tmp/hw-bench-memory")
    ap.add_argument("--fill", choices=("sql", "records"), default="sql")
    ap.add_argument("--phases", action="store_true", help="peak RSS of each step")
    ap.add_argument("--keep", action="store_true", help="keep the case directory")
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
    fill = feed_sql if args.fill == "sql" else feed
    fill(state, args.items, args.new_share, str(base / "evidence"))
    print(f"{args.items:,} records fed in {time.perf_counter() - t:.0f} s ({os.cpu_count()} cores)")
    config = ScanConfig(evidence=[base / "evidence"], case_dir=case)
    scanner = Scanner(config, hw.matcher(None), [], LocalRunner(1))
    state.set_meta("started", "2026-12-05T00:00:00+00:00")
    state.set_meta("case_id", str(uuid.uuid4()))
    state.set_meta("lists", [])
    state.set_meta("settings", {})
    if args.phases:
        measure_phases()
    before = peak_rss()
    t, cpu = time.perf_counter(), time.process_time()
    outcome = scanner._finish(state, AuditLog(case / "audit.log"))
    took, cpu = time.perf_counter() - t, time.process_time() - cpu
    after = max([peak_rss(), *(peak for _, _, _, peak, _ in PHASES)])  # --phases resets it
    s = outcome.summary
    print(
        f"finish: {took:.1f} s ({cpu:.1f} s CPU); {s.files:,} records, "
        f"{s.new_clusters:,} clusters; "
        f"main-process peak RSS {before / 2**20:,.0f} MB before, {after / 2**20:,.0f} MB after "
        f"(+{(after - before) / 2**20:,.0f} MB); report.html "
        f"{(case / 'report.html').stat().st_size / 2**20:.1f} MB"
    )
    for name, seconds, cpu, peak, now in PHASES:
        mb = f"peak {peak / 2**20:7,.0f} MB, after {now / 2**20:7,.0f} MB"
        print(f"  {name:<27} {seconds:7.1f} s ({cpu:6.1f} s CPU)  {mb}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
