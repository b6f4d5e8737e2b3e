"""``hashwatch exchange``: the publisher's signing key and the lists it publishes as feeds.

Thin like the rest of the CLI: :mod:`hashwatch.exchange.feed_keys` holds the key files,
:class:`hashwatch.exchange.feed.FeedStore` the feeds (docs/exchange.md, "Publishing").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hashwatch.cli._common import emit, err, hw

if TYPE_CHECKING:
    from hashwatch.exchange.checkpoint import SigningKey

__all__ = ["exchange_app"]

exchange_app = typer.Typer(
    help="Publishing lists as signed feeds: the signing key, publish, unpublish, feeds.",
    no_args_is_help=True,
)

KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="The signing key's PEM file (default: <data dir>/exchange/signing-key.pem; "
        "its public key is in PATH.pub).",
        show_default=False,
    ),
]


def _key_path(ctx: typer.Context, key: Path | None) -> Path:
    from hashwatch.exchange.feed_keys import default_key_path

    return key or default_key_path(hw(ctx).settings.data_dir)


def _load_key(ctx: typer.Context, key: Path | None) -> SigningKey:
    from hashwatch.exchange.feed_keys import load_publisher_key

    return load_publisher_key(_key_path(ctx, key))


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


@exchange_app.command("keygen")
def keygen(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Option(
            "--name", help="The publisher's name in checkpoints, e.g. agency.example.org."
        ),
    ],
    key: KeyOption = None,
) -> None:
    """Create the Ed25519 key that signs this publisher's checkpoints (file mode 0600, never
    overwritten) and print the public key to hand to peers."""
    from hashwatch.exchange.feed_keys import create_publisher_key, public_path

    path = _key_path(ctx, key)
    created = create_publisher_key(path, name)
    err.print(f"wrote the signing key {path} and its public key {public_path(path)}")
    typer.echo(str(created.verifier))


@exchange_app.command("key")
def show_key(ctx: typer.Context, key: KeyOption = None) -> None:
    """Print the public (verifier) key that peers pin: `peers add ... --key <this>`."""
    typer.echo(str(_load_key(ctx, key).verifier))


@exchange_app.command("publish")
def publish(
    ctx: typer.Context,
    list_name: Annotated[str, typer.Argument(metavar="LIST", help="The list to publish.")],
    origin: Annotated[
        str | None,
        typer.Option("--origin", help="The feed's origin (default: <key name>/feeds/<list>)."),
    ] = None,
    hashes: Annotated[
        str | None,
        typer.Option(
            "--hashes", help="Hash types that may leave, e.g. md5,sha1,pdq (default: all)."
        ),
    ] = None,
    fields: Annotated[
        str | None,
        typer.Option(
            "--fields",
            help="Fields that may leave, from category, series, victim_identified, tags, date, "
            "comment (default: category,series,tags,date).",
        ),
    ] = None,
    key: KeyOption = None,
) -> None:
    """Publish a list as a signed feed, or change what leaves of a published one (the feed
    is caught up and its new size signed at once)."""
    from hashwatch.exchange.feed import FeedStore

    signing = _load_key(ctx, key)
    info = FeedStore(hw(ctx).db).publish(
        list_name, signing, origin=origin, hash_types=_names(hashes), fields=_names(fields)
    )
    err.print(f"published {list_name} as {info.origin}: {info.size} records signed")
    emit(info.as_dict())


@exchange_app.command("unpublish")
def unpublish(
    ctx: typer.Context,
    list_name: Annotated[str, typer.Argument(metavar="LIST", help="The published list.")],
) -> None:
    """Stop serving a list's feed (its log is kept: publishing again continues it)."""
    from hashwatch.exchange.feed import FeedStore

    info = FeedStore(hw(ctx).db).unpublish(list_name)
    err.print(f"unpublished {list_name} ({info.size} records kept)")


@exchange_app.command("feeds")
def feeds(ctx: typer.Context) -> None:
    """List feeds: origin, what leaves, size, root and last checkpoint (one JSON a line)."""
    from hashwatch.exchange.feed import FeedStore

    for info in FeedStore(hw(ctx).db).all():
        emit(info.as_dict())
