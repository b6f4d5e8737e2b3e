"""P2P records through a whole scan: a generated 100,000-record eMule ``known.met`` scanned by
``Hashwatch.scan`` (each record an item, matched, linked, stored, reported), beside the
reference in the same run: the eMule reader alone (records parsed, nothing else).

    .venv/bin/python bench/bench_scan_p2p.py [--records 100000]

The known list holds the ED2K of every 1,000th record, so the scan must find exactly
``records / 1000`` known records. Printed: records per second of each, their ratio, the peak
RSS of the scan's main process and of its worker (run again alone in a fresh process, since the
scan's workers are not this process's children), and the size of the outputs.
Names and hashes are benign counters (``bench/bench_p2p.py`` writes the file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_p2p import write_known_met
from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import ListKind
from hashwatch.scan.p2p.emule import KnownMetReader


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _hwm_mib() -> float:
    """This process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _worker_alone(evidence: str, out: Any) -> None:
    """The scan's worker on the evidence, in a fresh process: its peak RSS."""
    from hashwatch.scan.walk import walk_evidence
    from hashwatch.scan.worker import WorkerOptions, process_unit

    before = _hwm_mib()
    result = process_unit(WorkerOptions(), list(walk_evidence([evidence])))
    out.put((len(result.records), before, _hwm_mib()))


def _worker_peak(evidence: Path) -> tuple[int, float, float]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_worker_alone, args=(str(evidence), out))
    proc.start()
    got: tuple[int, float, float] = out.get()
    proc.join()
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    n: int = args.records
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        evidence = tmp / "seized" / "eMule" / "config"
        evidence.mkdir(parents=True)
        met = evidence / "known.met"
        write_known_met(met, n)
        listed = tmp / "known.txt"
        listed.write_text(
            "".join(
                f"ed2k {hashlib.md5(i.to_bytes(8, 'little')).hexdigest()}\n"
                for i in range(0, n, 1000)
            )
        )

        start = time.perf_counter()
        with met.open("rb") as fh:
            parsed = sum(1 for _ in KnownMetReader().read(fh, met.stat().st_size))
        reader_s = time.perf_counter() - start

        app = Hashwatch(Settings(database_url=f"sqlite:///{tmp / 'hw.sqlite3'}", data_dir=tmp))
        try:
            app.lists.import_file("bench-known", listed, kind=ListKind.KNOWN)
            rss_before = _rss_mib(resource.RUSAGE_SELF)
            start = time.perf_counter()
            outcome = app.scan([tmp / "seized"], tmp / "case", workers=1)
            scan_s = time.perf_counter() - start
        finally:
            app.close()
        summary = outcome.summary
        known = summary.p2p_by_status.get("known", 0)
        assert summary.p2p_records == n == parsed, (summary.p2p_records, parsed)
        assert known == len(range(0, n, 1000)), known
        items, worker_before, worker_peak = _worker_peak(tmp / "seized")
        assert items == n + 1, items
        results = (tmp / "case" / "results.jsonl").stat().st_size
        report = (tmp / "case" / "report.html").stat().st_size
        print(
            json.dumps(
                {
                    "records": n,
                    "reader_records_per_s": round(n / reader_s),
                    "scan_records_per_s": round(n / scan_s),
                    "scan_s": round(scan_s, 2),
                    "ratio_scan_to_reader": round(reader_s / scan_s, 4),
                    "known_found": known,
                    "main_peak_rss_mib": round(_rss_mib(resource.RUSAGE_SELF), 1),
                    "main_rss_before_scan_mib": round(rss_before, 1),
                    "worker_rss_before_mib": round(worker_before, 1),
                    "worker_peak_rss_mib": round(worker_peak, 1),
                    "results_jsonl_mib": round(results / 2**20, 1),
                    "report_html_kib": round(report / 1024, 1),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
