"""``hashwatch peers opinion PEER KEY``: tell a peer what we think of one of its entries.

Thin (see :mod:`hashwatch.cli.main`): :class:`hashwatch.exchange.feedback.Feedback` finds the
subscription that brought the entry, sends the opinion and audits it here. Registered on
``peers`` by :mod:`hashwatch.cli.main`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hashwatch.cli._common import emit as _emit
from hashwatch.cli._common import err
from hashwatch.cli._common import hw as _hw
from hashwatch.errors import ConfigError

__all__ = ["opinion"]


def opinion(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The peer whose entry it is (`peers list`).")],
    key: Annotated[
        str,
        typer.Argument(help="The entry's key, e.g. md5:… (as `lists export` or a match shows)."),
    ],
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="The media is what the entry says.")
    ] = False,
    false_positive: Annotated[
        bool,
        typer.Option("--false-positive", help="It is not (say why with --reason)."),
    ] = False,
    disputed: Annotated[
        bool, typer.Option("--disputed", help="Its category or facts are contested.")
    ] = False,
    seen: Annotated[bool, typer.Option("--seen", help="Matched here; no judgement.")] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (needed with --false-positive; sent to the peer)."),
    ] = None,
    examiner: Annotated[
        str | None, typer.Option("--examiner", help="Who decides (default: login name).")
    ] = None,
) -> None:
    """Send our opinion of one of a peer's entries back to the peer: confirmed, false
    positive (with a reason), disputed or seen. What was sent is kept in our audit trail."""
    chosen = [
        value
        for flag, value in (
            (confirmed, "confirmed"),
            (false_positive, "false_positive"),
            (disputed, "disputed"),
            (seen, "seen"),
        )
        if flag
    ]
    if len(chosen) != 1:
        raise ConfigError("give one of --confirmed, --false-positive, --disputed, --seen")
    from hashwatch.exchange.feedback import Feedback

    sent = Feedback(_hw(ctx).db).send(name, key, chosen[0], reason, actor=examiner)
    where = (
        f"entry {sent.entry_id} of {sent.local_list}" if sent.entry_id else "a quarantined entry"
    )
    err.print(
        f"sent '{sent.opinion.value}' on {where} to {sent.peer} (its list {sent.remote_list})"
    )
    _emit(sent.as_dict())
