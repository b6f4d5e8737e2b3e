"""``hashwatch payments decide / flagged export / case-export``: the analyst's decisions on
alerts, fed back as the known-flagged list, and an alert exported as a case folder
(``docs/payments.md``, Decisions and flagged accounts). Thin: parse, call
:mod:`hashwatch.payments.decisions` or :mod:`hashwatch.payments.case_export`, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hashwatch.cli._common import emit
from hashwatch.errors import ConfigError

__all__ = ["case_export", "decide", "flagged_app", "flagged_export"]

flagged_app = typer.Typer(
    help="The known-flagged list from the analyst's decisions.", no_args_is_help=True
)

ScreeningArg = Annotated[
    Path, typer.Argument(help="A screening's output directory (payments screen --out).")
]


def decide(
    out_dir: ScreeningArg,
    account: Annotated[str, typer.Argument(help="The account decided on.")],
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="The alert is confirmed: flag the account.")
    ] = False,
    not_suspicious: Annotated[
        bool,
        typer.Option(
            "--not-suspicious",
            help="Not suspicious: its alert is suppressed next time unless a new rule fires.",
        ),
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, in words.")] = "",
    analyst: Annotated[
        str | None, typer.Option("--analyst", help="Who decides (default: the OS user).")
    ] = None,
) -> None:
    """Record a decision on ACCOUNT in OUT_DIR/decisions.jsonl (append-only, hash-chained)."""
    from hashwatch.payments.decisions import decide as record

    if confirmed == not_suspicious:
        raise ConfigError("give exactly one of --confirmed or --not-suspicious")
    verdict = "confirmed" if confirmed else "not_suspicious"
    emit(record(out_dir, account, verdict, reason=reason, analyst=analyst).to_json())


@flagged_app.command("export")
def flagged_export(
    out_dirs: Annotated[
        list[Path], typer.Argument(help="Screenings' output directories with decisions.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The known-flagged list (payments screen --flagged).")
    ] = Path("flagged.csv"),
    cleared: Annotated[
        Path | None,
        typer.Option("--cleared", help="The cleared list (default: cleared.csv beside --out)."),
    ] = None,
) -> None:
    """Write the confirmed accounts (latest decision per account) as the known-flagged list,
    and the accounts found not suspicious, with the rules seen then, as the cleared list."""
    from hashwatch.payments.decisions import export_flagged

    emit(export_flagged(out_dirs, out, cleared).to_json())


def case_export(
    out_dir: ScreeningArg,
    account: Annotated[str, typer.Argument(help="The alerted account.")],
    to: Annotated[Path, typer.Option("--to", help="A new folder for the case.")],
) -> None:
    """Export ACCOUNT's alert as a case folder: alert.json, alert.html, manifest.json."""
    from hashwatch.payments.case_export import export_case

    emit(export_case(out_dir, account, to).to_json())
