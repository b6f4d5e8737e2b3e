"""The HTTP matching service: ``create_app(hw, settings)`` builds it, ``hashwatch serve`` runs it.

Every process builds its own matcher and index from the shared database and keeps them fresh
in a background thread that polls the change sequence about once a second. Two more threads
send webhook deliveries and purge expired match records; a failing job backs off
exponentially and an outage of the database is logged once, not once a tick. Before any route
runs, :class:`~hashwatch.web.gate.RequestGate` admits the caller and bounds the body. Errors
are translated to HTTP status codes in one place (:func:`_install_error_handlers`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc

from hashwatch import __version__
from hashwatch.app import Hashwatch
from hashwatch.audit import AuditLog
from hashwatch.errors import HashwatchError
from hashwatch.exchange.sync import Syncer
from hashwatch.store.service import KeyStore, MatchRecordStore, Role
from hashwatch.store.users import UserStore
from hashwatch.web import (
    pages,
    routes_admin,
    routes_cases,
    routes_lists,
    routes_match,
    routes_media,
    routes_opinions,
    routes_peer_admin,
    routes_peers,
    routes_session,
)
from hashwatch.web.apidocs import install_api_docs
from hashwatch.web.auth import ApiError, Authenticator, require
from hashwatch.web.decoding import BoundedMatchService, DecodeLimiter
from hashwatch.web.failures import (
    Outage,
    Retry,
    database_failure,
    is_database_error,
    status_of,
)
from hashwatch.web.gate import RequestGate
from hashwatch.web.metrics import Metrics
from hashwatch.web.routes_feeds import router as feeds_router
from hashwatch.web.schemas import LIST_NAME_ERROR
from hashwatch.web.service import MatchService
from hashwatch.web.settings import ServeSettings
from hashwatch.web.spool import Spool
from hashwatch.web.webhooks import DeliveryLoop

__all__ = ["app_from_env", "create_app", "status_of"]

log = logging.getLogger(__name__)

_MAX_DETAIL = 500  # characters of an error message: never a large input echoed back
_MAX_ECHO = 64  # characters of a rejected value shown in a 422


def _short(value: object) -> bool:
    return isinstance(value, str | int | float | bool | None) and len(repr(value)) <= _MAX_ECHO


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's 422 details without large inputs: ``input`` only when it is a short scalar,
    ``ctx`` only when small."""
    out: list[dict[str, Any]] = []
    for error in exc.errors():
        item: dict[str, Any] = {
            "type": error.get("type"),
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", ""))[:_MAX_DETAIL],
        }
        # a refused list name is explained, never repeated
        if "input" in error and _short(error["input"]) and error.get("type") != LIST_NAME_ERROR:
            item["input"] = error["input"]
        ctx = error.get("ctx")
        if isinstance(ctx, dict) and all(_short(v) for v in ctx.values()):
            item["ctx"] = ctx
        out.append(item)
    return out


def _install_error_handlers(app: FastAPI, settings: ServeSettings, outage: Outage) -> None:
    async def hashwatch_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HashwatchError)
        return JSONResponse({"detail": str(exc)[:_MAX_DETAIL]}, status_code=status_of(exc))

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        body: dict[str, Any] = {"detail": exc.errors if exc.errors else exc.message}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": _validation_errors(exc)}, status_code=422)

    async def database_error(request: Request, exc: Exception) -> Response:
        failure = database_failure(exc)
        headers: dict[str, str] = {}
        if failure.outage:
            outage.failed(exc, request.url.path)
            headers["Retry-After"] = str(settings.retry_after_s)
        return JSONResponse({"detail": failure.message}, failure.status, headers=headers)

    app.add_exception_handler(HashwatchError, hashwatch_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(sa_exc.DBAPIError, database_error)
    app.add_exception_handler(sa_exc.TimeoutError, database_error)


def _loop(
    stop: threading.Event,
    interval: float,
    job: Callable[[], object],
    name: str,
    outage: Outage,
    max_backoff_s: float = 60.0,
) -> None:
    """Run ``job`` every ``interval`` seconds until ``stop``, backing off while it fails
    (:class:`~hashwatch.web.failures.Retry`: a database outage is logged once, not per tick)."""
    retry = Retry(name, interval, outage, max_backoff_s)
    delay = interval
    while not stop.wait(delay):
        try:
            job()
        except Exception as exc:  # a background job must survive a database outage
            delay = retry.failed(exc)
            continue
        delay = retry.succeeded()


def create_app(hw: Hashwatch, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app over one :class:`Hashwatch` (its database, lists and index)."""
    settings = settings or ServeSettings()
    metrics = Metrics()
    audit_path = settings.audit_log or hw.settings.data_dir / "serve-audit.log"
    audit_path.parent.mkdir(parents=True, exist_ok=True)
    audit = AuditLog(audit_path)
    keys = KeyStore(hw.db)
    threads: list[threading.Thread] = []
    stop = threading.Event()
    outage = Outage()
    spool = Spool(hw.settings.data_dir / "spool")
    if removed := spool.clean():
        log.info(
            "removed %d list upload(s) left in %s by a stopped server", removed, spool.directory
        )
    decoders = DecodeLimiter(
        settings.decode_concurrency,
        settings.decode_queue,
        settings.decode_wait_s,
        settings.retry_after_s,
    )
    # Loads the index before serving starts, mapped: worker processes share its pages.
    hw.map_index = True
    service: MatchService = BoundedMatchService(hw, metrics, audit, settings, decoders=decoders)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.background:
            records = MatchRecordStore(hw.db)
            retention = timedelta(days=settings.retention_days)
            delivery = DeliveryLoop(
                service.webhooks,
                metrics,
                interval_s=settings.webhook_interval_s,
                max_attempts=settings.webhook_max_attempts,
                backoff_s=settings.webhook_backoff_s,
                timeout_s=settings.webhook_timeout_s,
                lease_s=settings.webhook_lease_s,
            )
            jobs: list[tuple[str, Callable[[threading.Event], None]]] = [
                ("warm-up", lambda _s: service.warm_up()),
                (
                    "refresh",
                    lambda s: _loop(
                        s,
                        settings.refresh_interval_s,
                        service.refresh_if_changed,
                        "refresh",
                        outage,
                    ),
                ),
                ("webhooks", lambda s: delivery.run(s, outage)),
                (
                    "purge",
                    lambda s: _loop(
                        s,
                        settings.purge_interval_s,
                        lambda: records.purge(retention),
                        "purge",
                        outage,
                    ),
                ),
            ]
            if settings.sync_interval_s > 0:
                jobs.append(
                    (
                        "peers",
                        lambda s: _loop(
                            s, settings.sync_interval_s, Syncer(hw.db).sync_all, "peers", outage
                        ),
                    )
                )
            for name, target in jobs:
                thread = threading.Thread(
                    target=target, args=(stop,), name=f"hashwatch-{name}", daemon=True
                )
                thread.start()
                threads.append(thread)
        audit.append("serve.started", version=__version__, database=hw.db.safe_url)
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
            # Match records still queued are flushed, then the writer thread ends.
            service.recorder.close()
            audit.append("serve.stopped")

    app = FastAPI(
        title="hashwatch",
        version=__version__,
        description=(
            "Match media against hash lists. Uploaded media is hashed in memory and never "
            "stored: only signals and match records (time, key, list, entry, distance)."
        ),
        lifespan=lifespan,
        openapi_url=None,  # served by install_api_docs: local assets, a key unless public
        docs_url=None,
        redoc_url=None,
    )
    app.state.hw = hw
    app.state.service = service
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.audit = audit
    app.state.keys = keys
    app.state.outage = outage
    app.state.spool = spool
    app.state.decoders = decoders
    app.state.auth = Authenticator(
        keys,
        settings.rate_per_s,
        settings.burst,
        share=1 / max(1, settings.workers),
        users=UserStore(hw.db, settings.user_policy()),
    )
    # Before any body is read; inside the metrics, which count its refusals too.
    app.add_middleware(routes_match.FastMatch)  # inside the gate: the caller is admitted
    app.add_middleware(RequestGate)
    app.add_middleware(metrics.middleware)  # plain ASGI, outermost
    _install_error_handlers(app, settings, outage)
    install_api_docs(app, public=settings.public_docs)
    app.include_router(routes_match.router)
    app.include_router(routes_lists.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_session.router)
    app.include_router(routes_media.router)
    app.include_router(routes_cases.router)
    app.include_router(routes_opinions.router)
    app.include_router(routes_peer_admin.router)
    app.include_router(routes_peers.router)
    app.include_router(routes_peers.pages)
    app.include_router(feeds_router)
    pages.install(app)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness and index freshness (503 when the database does not answer)",
    )
    def healthz(request: Request) -> Any:
        service: MatchService = request.app.state.service
        try:
            hw.db.ping()
        except Exception as exc:
            if not is_database_error(exc):
                raise
            outage.failed(exc, "healthz")
            return JSONResponse(
                {"status": "unavailable", "reason": "database unavailable"},
                503,
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        outage.recovered("healthz")
        return {
            "status": "ok",
            "version": __version__,
            "index_hashes": len(hw.pdq_index),
            "applied_change_seq": service.applied_seq,
        }

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics of this server (an admin key unless metrics_public)",
        dependencies=[] if settings.metrics_public else [require(Role.ADMIN)],
    )
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory (``hashwatch.web.app:app_from_env``) for each worker process:
    the database from ``HASHWATCH_DATABASE_URL``, limits from ``HASHWATCH_SERVE_*``."""
    return create_app(Hashwatch.open(), ServeSettings.from_env())
