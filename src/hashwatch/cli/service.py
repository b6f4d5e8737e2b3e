"""``hashwatch serve``, ``hashwatch keys`` and ``hashwatch webhooks``: the HTTP service's commands.

Thin like the rest of the CLI: each command calls a store or starts uvicorn. The stores, FastAPI
and uvicorn are imported inside the commands, so ``hashwatch --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from hashwatch.cli._common import emit as _emit
from hashwatch.cli._common import err
from hashwatch.cli._common import hw as _hw
from hashwatch.errors import ConfigError

if TYPE_CHECKING:
    from hashwatch.store.service import KeyStore
    from hashwatch.store.webhooks import WebhookStore

__all__ = ["DisclosureName", "RoleName", "keys_app", "serve", "webhooks_app"]

# The values of hashwatch.store.service.Role (a test checks), without importing SQLAlchemy.
RoleName = Literal["matcher", "curator", "admin", "peer"]
# The values of hashwatch.store.service.Disclosure, likewise.
DisclosureName = Literal["exact", "banded", "hidden"]
DisclosureOption = Annotated[
    DisclosureName | None,
    typer.Option(
        "--disclosure",
        help="What the key's matches reveal: exact (distance), banded (its band) or hidden "
        "(match and facts only). Default: the server's (banded).",
    ),
]
SignalsOption = Annotated[
    int | None,
    typer.Option(
        "--signals-per-window",
        help="Signals the key may match per window (0: no cap; default: the server's).",
    ),
]


def _keys(ctx: typer.Context) -> KeyStore:
    from hashwatch.store.service import KeyStore

    return KeyStore(_hw(ctx).db)


def _webhooks(ctx: typer.Context) -> WebhookStore:
    from hashwatch.store.webhook_http import TargetPolicy
    from hashwatch.store.webhooks import WebhookStore
    from hashwatch.web.settings import ServeSettings

    allow = ServeSettings.from_env().webhook_allow_hosts
    return WebhookStore(_hw(ctx).db, policy=TargetPolicy.parse(allow))


keys_app = typer.Typer(help="API keys of the HTTP service.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhooks of the HTTP service.", no_args_is_help=True)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Server processes.")] = 1,
    retention_days: Annotated[
        float | None, typer.Option("--retention-days", help="Keep match records this long.")
    ] = None,
    max_upload_mb: Annotated[
        float | None, typer.Option("--max-upload-mb", help="Largest media upload (in memory).")
    ] = None,
    public_docs: Annotated[
        bool | None,
        typer.Option(
            "--public-docs/--no-public-docs",
            help="Serve /docs, /redoc and /openapi.json without a key (default: a key).",
        ),
    ] = None,
    metrics_public: Annotated[
        bool | None,
        typer.Option(
            "--metrics-public/--no-metrics-public",
            help="Serve /metrics without a key (default: an admin key).",
        ),
    ] = None,
    sync_interval: Annotated[
        float | None,
        typer.Option(
            "--sync-interval",
            help="Sync every peer this often, in seconds (default 300; 0: never).",
            show_default=False,
        ),
    ] = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="The key that signs published feeds' checkpoints (default: "
            "HASHWATCH_SIGNING_KEY, else <data dir>/exchange/signing-key.pem).",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log a line per request (client address, method, path, status); off by "
            "default: a per-request log line costs a fifth of a small lookup's time.",
        ),
    ] = False,
) -> None:
    """Run the HTTP matching service (docs/serve.md); database from --db or the environment."""
    import os
    import shutil
    import sys

    import uvicorn

    from hashwatch.web.metrics import MULTIPROC_ENV
    from hashwatch.web.settings import ServeSettings

    hw = _hw(ctx)
    hw.db  # noqa: B018 - migrate once here, before the workers start
    settings = ServeSettings.from_env(
        retention_days=retention_days,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024) if max_upload_mb else None,
        workers=workers,
        public_docs=public_docs,
        metrics_public=metrics_public,
        sync_interval_s=sync_interval,
    )
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Every worker writes its metrics here; a scrape of any worker reports the sum.
        metrics_dir = hw.settings.data_dir / "prometheus" / f"serve-{os.getpid()}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    os.environ["HASHWATCH_DATABASE_URL"] = hw.settings.database_url
    os.environ["HASHWATCH_DATA_DIR"] = str(hw.settings.data_dir)
    os.environ.update(settings.to_env())
    if signing_key is not None:
        os.environ["HASHWATCH_SIGNING_KEY"] = str(signing_key.resolve())
    # uvicorn's httptools protocol writing a response's head and body in one send()
    http = "hashwatch.web.http_protocol:CoalescingHttpToolsProtocol"
    if workers > 1 and os.name == "posix":
        # The supervisor only starts and watches the workers: replacing this process (the
        # database, the command line, their imports: ~190 MB) by a bare uvicorn keeps
        # ~150 MB out of the server's memory. Settings travel in the environment set above.
        hw.close()
        access = "--access-log" if access_log else "--no-access-log"
        argv = [sys.executable, "-m", "uvicorn", "hashwatch.web.app:app_from_env", "--factory"]
        argv += ["--host", host, "--port", str(port), "--workers", str(workers), "--http", http]
        os.execv(sys.executable, [*argv, "--log-level", "info", access])
    uvicorn.run(
        "hashwatch.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        http=http,
    )


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[
        RoleName | None,
        typer.Option("--role", help="matcher, curator, admin or peer (not with --user)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for the key.")] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="A key acting as this user, with the user's role."),
    ] = None,
    rate: Annotated[
        int | None, typer.Option("--rate", help="Requests per second (default: the server's).")
    ] = None,
    disclosure: DisclosureOption = None,
    signals_per_window: SignalsOption = None,
    lists: Annotated[
        str | None,
        typer.Option(
            "--lists",
            help="A peer key's lists, comma-separated: it may read their feeds "
            "(or only match against them, with --query-only).",
        ),
    ] = None,
    query_only: Annotated[
        bool,
        typer.Option("--query-only", help="The peer may match against --lists, never read them."),
    ] = False,
) -> None:
    """Create an API key and print its token once (only its SHA-256 is stored).

    A peer key (--role peer --name ORG --lists L1,L2) is for another organisation: it reads
    the feeds of the lists it is granted and nothing else (docs/exchange.md)."""
    import secrets

    from hashwatch.store.service import GrantAccess, Role

    if (role is None) == (user is None):
        raise ConfigError("give --role for a service key, or --user for a key acting as a user")
    names = [n.strip() for n in (lists or "").split(",") if n.strip()]
    if role == "peer" and not names:
        raise ConfigError("a peer key needs --lists L1[,L2...]: the lists it is granted")
    if role != "peer" and (names or query_only):
        raise ConfigError("--lists and --query-only are for peer keys (--role peer)")
    access = GrantAccess.QUERY if query_only else GrantAccess.FEED
    new = _keys(ctx).create(
        name or f"{role or user}-{secrets.token_hex(3)}",
        Role(role or "matcher"),
        rate_per_s=rate,
        disclosure=disclosure,
        signals_per_window=signals_per_window,
        user=user,
        grants=dict.fromkeys(names, access),
    )
    kind = f"{new.info.user_role} {new.info.user}'s" if new.info.user else new.info.role.value
    granted = f" ({access.value} access to {', '.join(names)})" if names else ""
    err.print(f"created {kind} key {new.info.name}{granted}; the token is shown only once:")
    typer.echo(new.token)


@keys_app.command("update")
def keys_update(
    ctx: typer.Context,
    name: str,
    rate: Annotated[int | None, typer.Option("--rate", help="Requests per second.")] = None,
    disclosure: DisclosureOption = None,
    signals_per_window: SignalsOption = None,
) -> None:
    """Change what a key's matches reveal, or its limits (servers apply it within a second)."""
    info = _keys(ctx).update(
        name, disclosure=disclosure, rate_per_s=rate, signals_per_window=signals_per_window
    )
    _emit(info.as_dict())


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, name: str) -> None:
    """Revoke an API key (every server refuses it within about a second)."""
    info = _keys(ctx).revoke(name)
    err.print(f"revoked key {info.name}")


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """List API keys (names, roles, prefixes, a peer's grants, a probing flag; never tokens)."""
    from hashwatch.exchange.probing import PeerFlags

    keys = _keys(ctx)
    flagged = {f.key: f.reason for f in PeerFlags(keys.db).open()}
    for info in keys.all():
        shown = info.as_dict()
        if info.name in flagged:
            shown["flagged"] = flagged[info.name]  # scan or sweep: `keys unflag` clears it
        _emit(shown)


@webhooks_app.command("add")
def webhooks_add(
    ctx: typer.Context,
    url: str,
    list_name: Annotated[
        str | None, typer.Option("--list", help="Only this list's matches.")
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="Only this category.")] = None,
) -> None:
    """Add a webhook; prints its signing secret once."""
    hook, secret = _webhooks(ctx).add(url, list_name=list_name, category=category)
    _emit({**hook, "secret": secret})


@webhooks_app.command("disable")
def webhooks_disable(ctx: typer.Context, webhook_id: int) -> None:
    """Stop sending to a webhook; its queued deliveries are cancelled."""
    _emit(_webhooks(ctx).disable(webhook_id))


@webhooks_app.command("remove")
def webhooks_remove(ctx: typer.Context, webhook_id: int) -> None:
    """Delete a webhook with its secret and deliveries (the audit trail keeps the fact)."""
    hook = _webhooks(ctx).remove(webhook_id)
    err.print(f"removed webhook {hook['id']} ({hook['url']})")


@webhooks_app.command("test")
def webhooks_test(
    ctx: typer.Context,
    webhook_id: int,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 10.0,
) -> None:
    """Send the webhook a signed test event now and print the outcome (exit 1 if it failed)."""
    from hashwatch.store.webhook_http import PinnedSender
    from hashwatch.web.webhooks import send_test_event

    store = _webhooks(ctx)
    target = store.test_target(webhook_id)
    sender = PinnedSender(store.policy, timeout_s=timeout)
    try:
        outcome = send_test_event(sender, target)
    finally:
        sender.close()
    _emit({"webhook_id": webhook_id, "delivered": outcome.ok, "outcome": outcome.reason})
    if not outcome.ok:
        raise typer.Exit(1)


@webhooks_app.command("list")
def webhooks_list(ctx: typer.Context) -> None:
    """List webhooks (never their secrets, URL credentials shown as ***)."""
    for hook in _webhooks(ctx).all():
        _emit(hook)


@webhooks_app.command("dead")
def webhooks_dead(ctx: typer.Context) -> None:
    """List deliveries that failed too often (the dead letters)."""
    for delivery in _webhooks(ctx).deliveries("dead", 1000):
        _emit(delivery)


@webhooks_app.command("resend")
def webhooks_resend(
    ctx: typer.Context,
    delivery_ids: Annotated[list[int] | None, typer.Argument(help="Deliveries to resend.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Resend every dead letter.")] = False,
) -> None:
    """Queue dead deliveries again; a running server sends them."""
    store = _webhooks(ctx)
    if all_dead:
        err.print(f"queued {store.resend_dead()} deliveries again")
        return
    if not delivery_ids:
        raise ConfigError("give delivery ids, or --all-dead")
    for delivery_id in delivery_ids:
        store.resend(delivery_id)
    err.print(f"queued {len(delivery_ids)} deliveries again")
