"""``hashwatch cases ...``: record a scan's case in the database for review; list, show, status.

Thin like the rest of the CLI (see :mod:`hashwatch.cli.main`): each command calls
:class:`hashwatch.review.cases.CaseStore` and prints JSON Lines on stdout, a short summary
for people on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hashwatch.cli._common import emit, err, hw

__all__ = ["cases_app"]

cases_app = typer.Typer(
    help="Cases in the database for review: import, list, show, status.", no_args_is_help=True
)
CaseArg = Annotated[str, typer.Argument(help="The case id (from the manifest) or case number.")]


@cases_app.command("import")
def cases_import(
    ctx: typer.Context,
    case_dir: Annotated[Path, typer.Argument(help="A case directory written by 'hashwatch scan'.")],
    consensus: Annotated[
        int,
        typer.Option(
            "--consensus",
            "-k",
            min=1,
            help="Reviewers who must agree before a category is settled (1: a lone investigator).",
        ),
    ] = 3,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who imports (default: login name).")
    ] = None,
) -> None:
    """Verify a case directory and record it for review (again: nothing changes)."""
    done = hw(ctx).cases.import_case(case_dir, actor=actor, consensus_k=consensus)
    verb = "imported" if done.created else "already in the database, unchanged"
    err.print(
        f"case {done.case.case_uid} {verb}: {done.items} items, {done.clusters} clusters, "
        f"{done.thumbnails} thumbnails",
        highlight=False,
    )
    emit(done.as_json())


@cases_app.command("list")
def cases_list(ctx: typer.Context) -> None:
    """Every case in the database, the latest imported first (one JSON object a line)."""
    for info in hw(ctx).cases.all():
        emit(info.as_json())


@cases_app.command("show")
def cases_show(ctx: typer.Context, case: CaseArg) -> None:
    """A case's details, where it came from and its counts."""
    emit(hw(ctx).cases.status(case).as_json())


@cases_app.command("status")
def cases_status(ctx: typer.Context, case: CaseArg) -> None:
    """Items and clusters by review state, items by the scan's status."""
    status = hw(ctx).cases.status(case)
    err.print(
        f"case {status.case.case_number or status.case.case_uid}: {status.items} items "
        f"({_counts(status.items_by_review)}), {status.clusters} clusters "
        f"({_counts(status.clusters_by_review)}); scan: {_counts(status.items_by_scan_status)}",
        highlight=False,
    )
    emit(
        {
            "case": status.case.case_uid,
            "case_number": status.case.case_number,
            "items": status.items,
            "clusters": status.clusters,
            "items_by_review": status.items_by_review,
            "clusters_by_review": status.clusters_by_review,
            "items_by_scan_status": status.items_by_scan_status,
        }
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "none"
