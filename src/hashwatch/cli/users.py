"""``hashwatch users``: the accounts of the review workspace (docs/serve.md, "People").

A password is read from a prompt (asked twice) or, with ``--password-stdin``, from the first
line of standard input; never from an argument, which other users of the machine can see in
the process list. The store hashes it with argon2id and audits every change.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from hashwatch.cli._common import emit as _emit
from hashwatch.cli._common import err
from hashwatch.cli._common import hw as _hw
from hashwatch.errors import ConfigError

if TYPE_CHECKING:
    from hashwatch.store.users import UserStore

__all__ = ["UserRoleName", "users_app"]

# The values of hashwatch.store.users.UserRole (a test checks), without importing SQLAlchemy.
UserRoleName = Literal["reviewer", "lead", "admin"]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]

users_app = typer.Typer(help="User accounts of the review workspace.", no_args_is_help=True)


def _users(ctx: typer.Context) -> UserStore:
    from hashwatch.store.users import UserStore
    from hashwatch.web.settings import ServeSettings

    return UserStore(_hw(ctx).db, ServeSettings.from_env().user_policy())


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ConfigError("--password-stdin: standard input held no password")
        return line
    first: str = typer.prompt("Password", hide_input=True)
    second: str = typer.prompt("Repeat the password", hide_input=True)
    if first != second:
        raise ConfigError("the two passwords differ")
    return first


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str,
    role: Annotated[UserRoleName, typer.Option("--role", help="reviewer, lead or admin.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a user account (the password is prompted for, or read with --password-stdin)."""
    info = _users(ctx).add(name, role, _password(password_stdin))
    _emit(info.as_dict())


@users_app.command("passwd")
def users_passwd(ctx: typer.Context, name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password; ends their sessions and lifts a lockout."""
    info = _users(ctx).set_password(name, _password(password_stdin))
    err.print(f"password of {info.name} changed; their sessions have ended")


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: str) -> None:
    """Disable an account: its sessions end and its keys are refused at once."""
    _emit(_users(ctx).disable(name).as_dict())


@users_app.command("enable")
def users_enable(ctx: typer.Context, name: str) -> None:
    """Enable a disabled account again."""
    _emit(_users(ctx).enable(name).as_dict())


@users_app.command("unlock")
def users_unlock(ctx: typer.Context, name: str) -> None:
    """Lift a lockout after repeated failed sign-ins before it expires."""
    _emit(_users(ctx).unlock(name).as_dict())


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List user accounts (names, roles, states; never password hashes)."""
    for info in _users(ctx).all():
        _emit(info.as_dict())
