"""``hashwatch cases ...``: record a scan's case in the database for review; list, show, status.

Thin like the rest of the CLI (see :mod:`hashwatch.cli.main`): each command calls
:class:`hashwatch.review.cases.CaseStore` and prints JSON Lines on stdout, a short summary
for people on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hashwatch.cli._common import emit, err, hw

__all__ = ["cases_app"]

cases_app = typer.Typer(
    help=(
        "Cases in the database for review: import, list, show, status, settings, decisions, "
        "pending list steps."
    ),
    no_args_is_help=True,
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
        f"({_counts(status.clusters_by_review)}); scan: {_counts(status.items_by_scan_status)}"
        f"; {status.list_steps_pending} list step(s) pending",
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
            "list_steps_pending": status.list_steps_pending,
        }
    )


@cases_app.command("set")
def cases_set(
    ctx: typer.Context,
    case: CaseArg,
    known_list: Annotated[
        str | None,
        typer.Option("--known-list", help="The known list that categorised media settles into."),
    ] = None,
    ignorable_list: Annotated[
        str | None,
        typer.Option(
            "--ignorable-list", help="The ignorable list that 'not relevant' media settles into."
        ),
    ] = None,
    consensus: Annotated[
        int | None,
        typer.Option(
            "--consensus", "-k", min=1, max=100, help="Reviewers who must agree (1: at once)."
        ),
    ] = None,
    scheme: Annotated[
        str | None,
        typer.Option(
            "--scheme",
            help="Category scheme of the votes: US, UK or CUSTOM (default: the known list's).",
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who changes it (default: login name).")
    ] = None,
) -> None:
    """Choose a case's agency lists, category scheme and number of agreeing reviewers;
    decisions whose entries could not be added (no list chosen then) are added now."""
    from hashwatch.review.consensus import ReviewStore
    from hashwatch.store.audit import actor_or_user

    app = hw(ctx)
    review = ReviewStore(app.db, app.lists)
    who = actor_or_user(actor)
    done = review.configure(
        case,
        actor=who,
        scheme=scheme,
        known_list=known_list,
        ignorable_list=ignorable_list,
        consensus_k=consensus,
    )
    _say_retried(review.retry_list_steps(case, actor=who))
    emit(done.as_json())


@cases_app.command("apply")
def cases_apply(
    ctx: typer.Context,
    case: CaseArg,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who adds them (default: login name).")
    ] = None,
) -> None:
    """Add the list entries of every standing decision whose list step is pending (it
    failed, e.g. no list was chosen, or did not run); exit 1 when some are still pending.
    The case's next decision does the same."""
    from hashwatch.review.consensus import ReviewStore
    from hashwatch.store.audit import actor_or_user

    app = hw(ctx)
    review = ReviewStore(app.db, app.lists)
    retried = review.retry_list_steps(case, actor=actor_or_user(actor))
    _say_retried(retried)
    for decision in retried:
        emit(decision.as_json())
    still = sum(1 for d in retried if d.list_error)
    err.print(
        f"{len(retried) - still} of {len(retried)} pending list step(s) done", highlight=False
    )
    if still:
        raise typer.Exit(1)


def _say_retried(decisions: list[Any]) -> None:
    for d in decisions:
        state = d.list_error or f"{len(d.entry_ids)} entries in {d.list_name}"
        err.print(f"decision {d.id} ({d.target}): {state}", highlight=False)


@cases_app.command("decisions")
def cases_decisions(ctx: typer.Context, case: CaseArg) -> None:
    """The case's decisions (revoked ones too) with the votes each was made on and the list
    entries it created (one JSON object a line)."""
    from hashwatch.review.consensus import ReviewStore

    app = hw(ctx)
    for decision in ReviewStore(app.db, app.lists).decisions(case):
        emit(decision.as_json())


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "none"
