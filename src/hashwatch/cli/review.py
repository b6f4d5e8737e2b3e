"""``hashwatch review CASE_DIR``: review a case alone in the browser, on this machine.

Imports the case (consensus 1 unless ``--consensus`` says otherwise), creates or reuses a
person for the operating-system user (a lead, so that they can also decide), starts the
server on 127.0.0.1 and prints a sign-in link that works once, for five minutes (the token
is exchanged for a session cookie). Thin: the stores and the server are imported inside.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from hashwatch.cli._common import emit, err, hw

__all__ = ["review"]

LINK_TTL_S = 300.0


def _listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1 before the link is printed: a browser that follows the
    link at once waits in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def review(
    ctx: typer.Context,
    case_dir: Annotated[Path, typer.Argument(help="A case directory written by 'hashwatch scan'.")],
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port on 127.0.0.1 (0: any free).")
    ] = 8000,
    consensus: Annotated[
        int,
        typer.Option("--consensus", "-k", min=1, help="Reviewers who must agree (default 1)."),
    ] = 1,
    scheme: Annotated[
        str | None,
        typer.Option(
            "--scheme", help="Category scheme (US, UK, CUSTOM); default the case's, else US."
        ),
    ] = None,
    known_list: Annotated[
        str | None, typer.Option("--known-list", help="List that settled categories go into.")
    ] = None,
    ignorable_list: Annotated[
        str | None,
        typer.Option("--ignorable-list", help="List that 'not relevant' media goes into."),
    ] = None,
) -> None:
    """Review a case alone: import it, start the pages on 127.0.0.1, print a one-time link."""
    import getpass
    import secrets
    import sys

    import uvicorn

    from hashwatch.errors import UserNotFoundError
    from hashwatch.review.consensus import ReviewStore
    from hashwatch.store.users import UserRole, UserStore
    from hashwatch.web.app import create_app
    from hashwatch.web.pages import OneTimeLinks
    from hashwatch.web.settings import ServeSettings

    app_hw = hw(ctx)
    person = getpass.getuser()
    done = app_hw.cases.import_case(case_dir, actor=person, consensus_k=consensus)
    case = done.case.case_uid
    store = ReviewStore(app_hw.db, app_hw.lists)
    current = store.settings(case)
    if scheme is None and current.scheme is None and current.known_list is None:
        scheme = "US"
    if scheme or known_list or ignorable_list:
        store.configure(
            case,
            actor=person,
            scheme=scheme,
            known_list=known_list,
            ignorable_list=ignorable_list,
        )
    users = UserStore(app_hw.db)
    try:
        users.get(person)
    except UserNotFoundError:
        # Signs in by the link only: the password is never shown (set one with 'users passwd').
        users.add(person, UserRole.LEAD, secrets.token_urlsafe(32), actor=person)
    app = create_app(app_hw, ServeSettings.from_env())
    links = OneTimeLinks(LINK_TTL_S)
    app.state.sign_in_links = links
    sock = _listen(port)
    chosen = sock.getsockname()[1]
    url = f"http://127.0.0.1:{chosen}/review/login?token={links.issue(person)}"
    err.print(
        f"case {case}: {done.items} items, {done.clusters} clusters; signed in as {person} "
        f"by this link (once, within {int(LINK_TTL_S // 60)} minutes):",
        highlight=False,
    )
    number = done.case.case_number
    emit(
        {
            "case": case,
            "case_number": number,
            "user": person,
            "url": url,
            "expires_in_s": int(LINK_TTL_S),
        }
    )
    sys.stdout.flush()
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
