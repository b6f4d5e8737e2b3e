"""The ``hashwatch`` command: the root of the command tree and its entry point.

No logic lives here or in the command modules beside it. Results go to stdout as JSON Lines (or
tables for people); progress and errors go to stderr; a :class:`HashwatchError` becomes its exit
code with a one-line message (:func:`hashwatch.cli._common.run_app`). Each command group lives in
its own module and imports only :mod:`hashwatch.cli._common`; the library itself is imported
inside the commands, so ``--help`` answers at once. A group is registered with
:func:`~hashwatch.cli._lazy.add_lazy_typer` (one line): its commands are built when it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

import typer
from typer.models import TyperInfo

from hashwatch import __version__
from hashwatch.cli import (
    cases,
    index,
    lists,
    match,
    payments,
    payments_decide,
    payments_synth,
    peer_opinion,
    peer_query,
    peers,
    review,
    scan,
    service,
    users,
    watch,
)
from hashwatch.cli._common import DbOption, run_app
from hashwatch.cli._lazy import LazyGroups, add_lazy_typer
from hashwatch.cli.exchange import exchange_app

__all__ = ["app", "main"]


class _Groups(LazyGroups):
    """The root: its command groups are built when used (``add_lazy_typer``)."""

    lazy: ClassVar[dict[str, TyperInfo]] = {}


app = typer.Typer(
    cls=_Groups,
    help="Find known material by hash, put new material first, share hash lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    db: DbOption = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the index and default database live.")
    ] = None,
) -> None:
    ctx.ensure_object(dict).update(db=db, data_dir=data_dir)


@app.command()
def version() -> None:
    """Print the hashwatch version."""
    typer.echo(__version__)


app.command("hash")(match.hash_cmd)
app.command()(match.match)
app.command()(scan.scan)
app.command()(scan.verify)
add_lazy_typer(app, index.index_app, "index")
add_lazy_typer(app, lists.lists_app, "lists")
add_lazy_typer(app, cases.cases_app, "cases")
app.command()(review.review)
app.command()(service.serve)
app.command()(watch.watch)
add_lazy_typer(app, service.keys_app, "keys")
service.keys_app.command("unflag")(peer_query.unflag)
add_lazy_typer(app, service.webhooks_app, "webhooks")
add_lazy_typer(app, users.users_app, "users")
add_lazy_typer(app, peers.peers_app, "peers")
peers.peers_app.command("opinion")(peer_opinion.opinion)
peers.peers_app.command("query")(peer_query.query)
add_lazy_typer(app, exchange_app, "exchange")
add_lazy_typer(app, payments.payments_app, "payments")
payments.payments_app.command("synth")(payments_synth.synth)
payments.payments_app.command("decide")(payments_decide.decide)
payments.payments_app.add_typer(payments_decide.flagged_app, name="flagged")
payments.payments_app.command("case-export")(payments_decide.case_export)


def main() -> None:
    run_app(app)
