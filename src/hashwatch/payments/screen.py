"""``screen``: the library entry point of payment screening, and its outputs.

Reads every input into DuckDB (``ingest``), runs the relation rules as SQL (``rules``), the
network rules on the reduced graph (``network``), scores accounts (``alerts``) and writes
``alerts.csv``, ``alerts.jsonl``, ``screening.json`` and a self-contained ``report.html`` into
``out_dir``.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from hashwatch.payments.alerts import build_alerts
from hashwatch.payments.config import PaymentsConfig
from hashwatch.payments.html import write_report
from hashwatch.payments.ingest import IngestResult, connect, ingest_file
from hashwatch.payments.model import Alert, BadRow, ScreenResult
from hashwatch.payments.rules import build_relations

if TYPE_CHECKING:
    import duckdb

__all__ = ["Progress", "screen"]

# progress(phase, done, total): one call per input file read and per phase finished.
Progress = Callable[[str, int, int], None]


def screen(
    paths: Sequence[Path],
    config: PaymentsConfig,
    out_dir: Path,
    known_flagged: frozenset[str] | None = None,
    progress: Progress | None = None,
    rates: dict[str, float] | None = None,
) -> ScreenResult:
    """Screen transaction files and write the outputs into ``out_dir``.

    ``rates`` maps a currency to its EUR value (EUR is 1.0); ``known_flagged`` are accounts the
    analyst already flagged, which raise everything connected to them.
    """
    flagged = known_flagged or frozenset()
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    steps = len(paths) + 3

    def tick(phase: str, done: int) -> None:
        timings[phase] = time.perf_counter() - started - sum(timings.values())
        if progress is not None:
            progress(phase, done, steps)

    con = connect(config.engine, out_dir, config, {"EUR": 1.0, **(rates or {})})
    try:
        results: list[IngestResult] = []
        for idx, path in enumerate(paths):
            results.append(ingest_file(con, Path(path), idx, config))
            tick(f"read {Path(path).name}", idx + 1)
        build_relations(con, config)
        tick("relation rules", len(paths) + 1)
        alerts, timelines, relations, rule_counts = build_alerts(con, config, flagged)
        tick("network rules and scores", len(paths) + 2)
        rows = _count(con, "SELECT count(*) FROM tx")
        accounts = _count(
            con, "SELECT count(*) FROM (SELECT sender FROM tx UNION SELECT receiver FROM tx)"
        )
        relation_count = _count(con, "SELECT count(*) FROM rel")
    finally:
        con.close()
        spill = Path(config.engine.temp_directory or out_dir / "duckdb-spill")
        if config.engine.temp_directory is None:
            shutil.rmtree(spill, ignore_errors=True)
    unknown: dict[str, int] = {}
    samples: list[BadRow] = []
    for ingested in results:
        samples.extend(ingested.bad_samples)
        for name, count in ingested.unknown_countries.items():
            unknown[name] = unknown.get(name, 0) + count
    result = ScreenResult(
        alerts=tuple(alerts),
        inputs=tuple(r.summary for r in results),
        rows=rows,
        accounts=accounts,
        relations=relation_count,
        bad_rows=sum(r.summary.bad_rows for r in results),
        bad_row_samples=tuple(samples[:20]),
        unknown_countries=unknown,
        timings=timings,
        config_version=config.version,
        config_sha256=config.sha256,
        rule_counts=rule_counts,
    )
    _write_alerts(out_dir, result.alerts)
    write_report(out_dir / "report.html", result, timelines, relations, flagged)
    tick("outputs", steps)
    result = replace(result, timings=dict(timings))
    document = result.to_json()
    document["known_flagged_accounts"] = len(flagged)
    document["reduced_graph_relations"] = len(relations)
    (out_dir / "screening.json").write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    return result


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _write_alerts(out_dir: Path, alerts: tuple[Alert, ...]) -> None:
    with (out_dir / "alerts.jsonl").open("w", encoding="utf-8") as handle:
        for alert in alerts:
            handle.write(json.dumps(alert.to_json(), sort_keys=True) + "\n")
    with (out_dir / "alerts.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["account", "role", "score", "rules", "transactions", "counterparties", "explanation"]
        )
        for alert in alerts:
            writer.writerow(
                [
                    alert.account,
                    alert.role,
                    f"{alert.score:g}",
                    ";".join(alert.rule_names),
                    ";".join(alert.transactions),
                    ";".join(alert.counterparties),
                    alert.explanation,
                ]
            )
