"""The ``hashwatch`` command: the root of the command tree and its entry point.

No logic lives here or in the command modules beside it. Results go to stdout as JSON Lines (or
tables for people); progress and errors go to stderr; a :class:`HashwatchError` becomes its exit
code with a one-line message (:func:`hashwatch.cli._common.run_app`). Each command group lives in
its own module and imports only :mod:`hashwatch.cli._common`; the library itself is imported
inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
from hashwatch.cli.exchange import exchange_app

__all__ = ["app", "main"]

app = typer.Typer(
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
app.add_typer(index.index_app, name="index")
app.add_typer(lists.lists_app, name="lists")
app.add_typer(cases.cases_app, name="cases")
app.command()(review.review)
app.command()(service.serve)
app.command()(watch.watch)
app.add_typer(service.keys_app, name="keys")
service.keys_app.command("unflag")(peer_query.unflag)
app.add_typer(service.webhooks_app, name="webhooks")
app.add_typer(users.users_app, name="users")
app.add_typer(peers.peers_app, name="peers")
peers.peers_app.command("opinion")(peer_opinion.opinion)
peers.peers_app.command("query")(peer_query.query)
app.add_typer(exchange_app, name="exchange")
app.add_typer(payments.payments_app, name="payments")
payments.payments_app.command("synth")(payments_synth.synth)
payments.payments_app.command("decide")(payments_decide.decide)
payments.payments_app.add_typer(payments_decide.flagged_app, name="flagged")
payments.payments_app.command("case-export")(payments_decide.case_export)


def main() -> None:
    run_app(app)
