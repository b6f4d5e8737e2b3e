"""The HTTP matching service: ``create_app(hw, settings)`` builds it, ``hashwatch serve`` runs it.

Every process builds its own matcher and index from the shared database and keeps them fresh
in a background thread that polls the change sequence about once a second. Two more threads
send webhook deliveries and purge expired match records. Errors are translated to HTTP status
codes in one place (:func:`_install_error_handlers`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from hashwatch import __version__
from hashwatch.app import Hashwatch
from hashwatch.audit import AuditLog
from hashwatch.errors import (
    ConfigError,
    DecodeError,
    EntryNotFoundError,
    HashwatchError,
    InvalidHashError,
    KeyNotFoundError,
    ListExistsError,
    ListFormatError,
    ListNotFoundError,
    WebhookNotFoundError,
)
from hashwatch.store.service import KeyStore, MatchRecordStore
from hashwatch.web import routes_admin, routes_lists, routes_match
from hashwatch.web.auth import ApiError, Authenticator
from hashwatch.web.metrics import Metrics
from hashwatch.web.service import MatchService
from hashwatch.web.settings import ServeSettings
from hashwatch.web.webhooks import DeliveryLoop

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger(__name__)

# HashwatchError subclasses -> HTTP status; the first match in order wins.
_STATUS: tuple[tuple[type[HashwatchError], int], ...] = (
    (InvalidHashError, 422),
    (ListFormatError, 422),
    (DecodeError, 422),
    (ListNotFoundError, 404),
    (EntryNotFoundError, 404),
    (KeyNotFoundError, 404),
    (WebhookNotFoundError, 404),
    (ListExistsError, 409),
    (ConfigError, 400),
)


def status_of(exc: HashwatchError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _install_error_handlers(app: FastAPI) -> None:
    async def hashwatch_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HashwatchError)
        return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        body: dict[str, Any] = {"detail": exc.errors if exc.errors else exc.message}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(HashwatchError, hashwatch_error)
    app.add_exception_handler(ApiError, api_error)


def _loop(stop: threading.Event, interval: float, job: Callable[[], object], name: str) -> None:
    while not stop.wait(interval):
        try:
            job()
        except Exception:  # a background job must survive a database hiccup
            log.exception("background job %s", name)


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
    service = MatchService(hw, metrics, audit, settings)  # loads the index before serving starts

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
                (
                    "refresh",
                    lambda s: _loop(
                        s, settings.refresh_interval_s, service.refresh_if_changed, "refresh"
                    ),
                ),
                ("webhooks", delivery.run),
                (
                    "purge",
                    lambda s: _loop(
                        s, settings.purge_interval_s, lambda: records.purge(retention), "purge"
                    ),
                ),
            ]
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
            audit.append("serve.stopped")

    app = FastAPI(
        title="hashwatch",
        version=__version__,
        description=(
            "Match media against hash lists. Uploaded media is hashed in memory and never "
            "stored: only signals and match records (time, key, list, entry, distance)."
        ),
        lifespan=lifespan,
    )
    app.state.hw = hw
    app.state.service = service
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.audit = audit
    app.state.keys = keys
    app.state.auth = Authenticator(
        keys, settings.rate_per_s, settings.burst, share=1 / max(1, settings.workers)
    )
    app.middleware("http")(metrics.middleware)
    _install_error_handlers(app)
    app.include_router(routes_match.router)
    app.include_router(routes_lists.router)
    app.include_router(routes_admin.router)

    @app.get("/healthz", tags=["operations"], summary="Liveness and index freshness")
    def healthz(request: Request) -> dict[str, Any]:
        service: MatchService = request.app.state.service
        hw.db.ping()
        return {
            "status": "ok",
            "version": __version__,
            "index_hashes": len(hw.pdq_index),
            "applied_change_seq": service.applied_seq,
        }

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics of this process")
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory (``hashwatch.web.app:app_from_env``) for each worker process:
    the database from ``HASHWATCH_DATABASE_URL``, limits from ``HASHWATCH_SERVE_*``."""
    return create_app(Hashwatch.open(), ServeSettings.from_env())
