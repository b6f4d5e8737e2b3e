"""``hashwatch payments``: screening transaction exports for the published red flags of paid
live-streamed abuse (``docs/payments.md``). Thin: parse, call :func:`screen`, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hashwatch.cli._common import emit, progress

__all__ = ["payments_app", "screen_cmd"]

payments_app = typer.Typer(
    help="Screen payment exports for the red flags of paid live-streamed abuse.",
    no_args_is_help=True,
)


@payments_app.command("screen")
def screen_cmd(
    transactions: Annotated[
        list[Path], typer.Argument(help="Transaction files (CSV or Parquet).", exists=True)
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file laid over the default rules.")
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option("--schema", help="Column preset: amlsim, saml-d, paysim or ibm-aml."),
    ] = None,
    rates: Annotated[
        Path | None, typer.Option("--rates", help="CSV currency,rate (1 unit = rate EUR).")
    ] = None,
    flagged: Annotated[
        Path | None, typer.Option("--flagged", help="Known-flagged accounts, one a line.")
    ] = None,
    cleared: Annotated[
        Path | None,
        typer.Option(
            "--cleared",
            help="Accounts found not suspicious (cleared.csv of payments flagged export): "
            "left out unless a rule fires that had not fired then.",
        ),
    ] = None,
) -> None:
    """Screen TRANSACTIONS and write alerts.csv, alerts.jsonl, screening.json and report.html
    into --out. An alert needs at least two distinct rules; it is a lead for a person."""
    from hashwatch.payments.config import load_config, load_flagged, load_rates
    from hashwatch.payments.decisions import load_cleared
    from hashwatch.payments.screen import screen

    settings = load_config(config, schema=schema)
    table = load_rates(rates) if rates else None
    known = load_flagged(flagged) if flagged else None
    seen = load_cleared(cleared) if cleared else None
    with progress("screening") as bar:
        task = bar.add_task("screening", total=len(transactions) + 3, rate="") if bar else None

        def step(phase: str, done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=total, rate=phase)

        result = screen(transactions, settings, out, known, step, table, seen)
    emit(
        {
            "out": str(out),
            "rows": result.rows,
            "bad_rows": result.bad_rows,
            "accounts": result.accounts,
            "alerts": len(result.alerts),
            "config_version": result.config_version,
        }
    )
