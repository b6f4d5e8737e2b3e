"""``hashwatch peers ...``: subscribe to other organisations' lists, sync, review what came in.

Thin like the rest of the CLI (see :mod:`hashwatch.cli.main`): each command calls
:class:`hashwatch.exchange.sync.Syncer` or :class:`hashwatch.exchange.peers.PeerStore` and
prints. A peer's token is never printed: ``peers list`` shows its first characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hashwatch.cli._common import emit as _emit
from hashwatch.cli._common import err
from hashwatch.cli._common import hw as _hw
from hashwatch.errors import ConfigError
from hashwatch.lists.model import CategoryScheme

if TYPE_CHECKING:
    from hashwatch.exchange.sync import Syncer, SyncReport

__all__ = ["peers_app"]

peers_app = typer.Typer(
    help="Peers: subscribe to other organisations' lists, sync them, review what came in.",
    no_args_is_help=True,
)
KeysArg = Annotated[
    list[str] | None, typer.Argument(help="Entry keys (e.g. md5:…) as `peers quarantine` shows.")
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every entry waiting from this peer.")]


def _syncer(ctx: typer.Context) -> Syncer:
    from hashwatch.exchange.sync import Syncer

    return Syncer(_hw(ctx).db)


@peers_app.command("add")
def peers_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What we call the peer (e.g. agency-a).")],
    url: Annotated[str, typer.Argument(help="Its service, e.g. https://hashwatch.agency.example")],
    lists: Annotated[
        list[str],
        typer.Option(
            "--list",
            help="REMOTE:LOCAL: read its list REMOTE into our list LOCAL (created as a known "
            "list when missing). Repeatable.",
        ),
    ],
    token: Annotated[
        str | None, typer.Option("--token", help="Our API key at the peer (kept, never shown).")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="The peer's public key, NAME+KEYID+BASE64 (`exchange key`)."),
    ] = None,
    trust: Annotated[
        str,
        typer.Option(
            "--trust",
            help="auto: entries apply at once; review: they wait in quarantine for a person.",
        ),
    ] = "auto",
    kind: Annotated[
        str, typer.Option("--kind", help="The exchange the peer speaks (hashwatch, ...).")
    ] = "hashwatch",
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="REMOTE=LOCAL: the peer's category code and ours. Repeatable; codes not "
            "mapped (and not of our list's scheme) are kept raw and tagged category-unmapped.",
        ),
    ] = None,
    scheme: Annotated[
        CategoryScheme,
        typer.Option("--scheme", help="Our category scheme, for local lists created here."),
    ] = CategoryScheme.US,
) -> None:
    """Subscribe to a peer's lists: checks its signed checkpoint and pins its feed's origin."""
    from hashwatch.exchange.peers import parse_list_pairs, parse_map

    info = _syncer(ctx).subscribe(
        name,
        url,
        lists=parse_list_pairs(lists),
        token=token,
        key=key,
        kind=kind,
        trust=trust,
        category_map=parse_map(maps or []),
        scheme=scheme,
    )
    _emit(info.as_dict())


@peers_app.command("list")
def peers_list(ctx: typer.Context) -> None:
    """Peers, their subscriptions, the last sync and the last error (tokens: a prefix)."""
    for info in _hw(ctx).peers.all():
        _emit(info.as_dict())


def _progress(report: SyncReport) -> None:
    err.print(
        f"{report.peer} {report.remote_list} -> {report.local_list}: page {report.pages}, "
        f"at record {report.position}, +{report.added} ~{report.updated} -{report.revoked}"
        f" quarantined {report.quarantined}",
        highlight=False,
    )


@peers_app.command("sync")
def peers_sync(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One peer (default: every peer).")] = None,
) -> None:
    """Pull, verify and apply what is new; progress per page on stderr, a summary line per
    subscription on stdout. A failure is recorded on the subscription (see `peers list`)."""
    syncer = _syncer(ctx)
    if name is None:
        reports = syncer.sync_all(on_page=_progress)
    else:
        reports = syncer.sync(name, on_page=_progress, raise_errors=False)
    for report in reports:
        _emit(report.as_dict())
    failed = [r.failure for r in reports if r.failure is not None]
    if failed:
        raise failed[0]


@peers_app.command("remove")
def peers_remove(ctx: typer.Context, name: str) -> None:
    """Forget a peer and what waits in its quarantine; our lists and their entries stay."""
    _hw(ctx).peers.remove(name)
    err.print(f"removed peer {name}", highlight=False)


@peers_app.command("quarantine")
def peers_quarantine(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One peer (default: every peer).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries.")] = 1000,
) -> None:
    """Entries from `review` peers waiting for a decision: hash types, category, provenance."""
    for entry in _syncer(ctx).quarantine(name, limit=limit):
        _emit(entry.as_dict())


def _keys(keys: list[str] | None, every: bool) -> list[str] | None:
    if every and keys:
        raise ConfigError("name entries or give --all, not both")
    if not every and not keys:
        raise ConfigError("name the entries to decide (keys from `peers quarantine`) or --all")
    return None if every else keys


@peers_app.command("accept")
def peers_accept(
    ctx: typer.Context, name: str, keys: KeysArg = None, every: AllOpt = False
) -> None:
    """Accept entries waiting from a peer: they enter our list and match from now on."""
    _emit(_syncer(ctx).accept(name, _keys(keys, every)))


@peers_app.command("reject")
def peers_reject(
    ctx: typer.Context, name: str, keys: KeysArg = None, every: AllOpt = False
) -> None:
    """Reject entries waiting from a peer (a later change by the peer brings them back)."""
    _emit(_syncer(ctx).reject(name, _keys(keys, every)))
