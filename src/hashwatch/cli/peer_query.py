"""``hashwatch peers query`` (ask a peer whether our files match its lists) and ``hashwatch keys
unflag`` (clear a peer key's probing flag): query-only sharing from both sides.

Thin: the files are hashed here with the library and the rest is
:func:`hashwatch.exchange.query_client.query_peer` and
:class:`hashwatch.exchange.probing.PeerFlags`; both are imported inside the commands.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashwatch.cli._common import emit, err, hw
from hashwatch.errors import ConfigError

if TYPE_CHECKING:
    from hashwatch.app import Hashwatch
    from hashwatch.exchange.query_client import QueryTarget

__all__ = ["query", "unflag"]

TOKEN_ENV = "HASHWATCH_PEER_TOKEN"


def _target(opened: Hashwatch, name: str | None, url: str | None, token: str | None) -> QueryTarget:
    from hashwatch.exchange.query_client import QueryTarget

    if url is not None:
        token = token or os.environ.get(TOKEN_ENV)
        if not token:
            raise ConfigError(f"--url needs --token (or {TOKEN_ENV})")
        return QueryTarget.of_url(url, token)
    if name is None:
        raise ConfigError("name a peer (hashwatch peers add), or give --url and --token")
    from hashwatch.exchange.peers import PeerStore

    peer = PeerStore(opened.db).get(name)
    if not peer.token:
        raise ConfigError(f"peer {name!r} has no token: hashwatch peers add ... --token")
    return QueryTarget(peer.name, peer.url, peer.token)


def _items(
    opened: Hashwatch, paths: list[str], signals: str | None
) -> list[tuple[str, Any, str | None]]:
    """(item, its signals, error) per file, or per line of the signals file."""
    from hashwatch.app import parse_signal_line
    from hashwatch.errors import HashwatchError
    from hashwatch.signals.query import signals_of

    if signals is not None:
        if paths:
            raise ConfigError("give either FILEs or --signals, not both")
        items: list[tuple[str, Any, str | None]] = []
        with open(signals, encoding="utf-8-sig") as fh:
            for n, raw in enumerate(fh, start=1):
                text = raw.strip()
                if not text:
                    continue
                try:
                    items.append((f"line {n}", [parse_signal_line(text)], None))
                except HashwatchError as exc:
                    items.append((f"line {n}", [], str(exc)))
        return items
    if not paths:
        raise ConfigError("give FILEs to ask about, or --signals FILE")
    options = opened.hash_options(dihedral=False)
    return [(fs.path, signals_of(fs), fs.error) for fs in opened.hash_paths(paths, options)]


def query(
    ctx: typer.Context,
    args: Annotated[
        list[str] | None,
        typer.Argument(
            help="The peer's NAME, then FILEs or directories (with --url: FILEs only).",
            show_default=False,
        ),
    ] = None,
    signals: Annotated[
        str | None,
        typer.Option("--signals", help="Ask about hashes instead: one '<type> <hash>' a line."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The peer's service URL, when no peer is configured."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help=f"Our key there, with --url (or {TOKEN_ENV})."),
    ] = None,
) -> None:
    """Ask a peer whether files (or hashes) match its lists: the files are hashed here and
    only their hashes are sent; JSON Lines, one per file, with the peer's answer (list,
    category, distance as it discloses). What was asked (types and counts, never values) and
    answered is kept in our audit trail."""
    from hashwatch.exchange.query_client import query_peer

    opened = hw(ctx)
    rest = list(args or [])
    name = None if url is not None else (rest.pop(0) if rest else None)
    target = _target(opened, name, url, token)
    items = _items(opened, rest, signals)
    answers = query_peer(target, items, opened.db)
    for answer in answers:
        emit(answer.as_dict())
    matched = sum(1 for a in answers if a.matches)
    err.print(f"asked {target.name} about {len(answers)} item(s): {matched} matched")


def unflag(ctx: typer.Context, name: str) -> None:
    """Clear a peer key's probing flag: its full rate is restored (servers see it within a
    second). Audited."""
    from hashwatch.exchange.probing import PeerFlags

    cleared = PeerFlags(hw(ctx).db).clear(name)
    if not cleared:
        err.print(f"key {name} is not flagged")
        return
    err.print(f"cleared {len(cleared)} flag(s) of key {name}")
