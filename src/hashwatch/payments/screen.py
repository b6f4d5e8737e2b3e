"""``screen``: the library entry point of payment screening, and its outputs.

Reads every input into DuckDB (``ingest``), runs the relation rules as SQL (``rules``), scores
relations and counts fan-in / fan-out in SQL (``scoring``), runs the flagged-account rules on
the reduced graph (``network``), and writes each alert as it is read back (``alerts``) into
``alerts.csv``, ``alerts.jsonl`` and the sections of a self-contained ``report.html``, then
``screening.json``, in ``out_dir``. Accounts a person found not suspicious (``cleared``) are
left out unless a rule fires for them that had not fired then.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hashwatch.lists.formats.csv_format import neutralise
from hashwatch.payments.alerts import iter_alerts, prepare
from hashwatch.payments.config import PaymentsConfig
from hashwatch.payments.decisions import suppressed
from hashwatch.payments.html import section, write_report
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
    cleared: Mapping[str, frozenset[str]] | None = None,
) -> ScreenResult:
    """Screen transaction files and write the outputs into ``out_dir``.

    ``rates`` maps a currency to its EUR value (EUR is 1.0); ``known_flagged`` are accounts the
    analyst already flagged, which raise everything connected to them; ``cleared`` maps an
    account found not suspicious to the rules that had fired then
    (``decisions.load_cleared``): its alert is left out unless another rule fires now.
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
    sections = out_dir / ".report-sections.html"
    alerts: list[Alert] = []
    left_out = 0
    try:
        results: list[IngestResult] = []
        for idx, path in enumerate(paths):
            results.append(ingest_file(con, Path(path), idx, config))
            tick(f"read {idx + 1}: {Path(path).name}", idx + 1)
        build_relations(con, config)
        tick("relation rules", len(paths) + 1)
        scored = prepare(con, config, flagged)
        tick("scores and network rules", len(paths) + 2)
        with (
            (out_dir / "alerts.jsonl").open("w", encoding="utf-8") as jsonl,
            (out_dir / "alerts.csv").open("w", newline="", encoding="utf-8") as table,
            sections.open("w", encoding="utf-8") as parts,
        ):
            writer = csv.writer(table)
            writer.writerow(CSV_HEADER)
            for alert, payments in iter_alerts(con, config, flagged):
                if cleared and suppressed(alert, cleared):
                    left_out += 1
                    continue
                alerts.append(alert)
                _write_alert(jsonl, writer, alert)
                parts.write(section(len(alerts), alert, payments, flagged))
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
        rule_counts=scored.rule_counts,
    )
    write_report(out_dir / "report.html", result, sections)
    sections.unlink()
    tick("outputs", steps)
    result = replace(result, timings=dict(timings))
    document = result.to_json()
    document["known_flagged_accounts"] = len(flagged)
    document["cleared_accounts"] = len(cleared or {})
    document["alerts_left_out_as_cleared"] = left_out
    document["relations_in_scope"] = scored.scope_relations
    document["reduced_graph_relations"] = scored.reduced_relations
    (out_dir / "screening.json").write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    return result


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


CSV_HEADER = ["account", "role", "score", "rules", "transactions", "counterparties", "explanation"]


def _write_alert(jsonl: TextIO, writer: Any, alert: Alert) -> None:
    jsonl.write(json.dumps(alert.to_json(), sort_keys=True) + "\n")
    # Accounts, ids and words come from the export: a cell a spreadsheet would read as a
    # formula gets the same leading ' as list files (lists.formats.csv_format.neutralise).
    row = [
        alert.account,
        alert.role,
        f"{alert.score:g}",
        ";".join(alert.rule_names),
        ";".join(alert.transactions),
        ";".join(alert.counterparties),
        alert.explanation,
    ]
    writer.writerow([neutralise(cell) for cell in row])
