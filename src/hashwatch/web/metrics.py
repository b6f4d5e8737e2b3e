"""Prometheus metrics of the server (``GET /metrics``).

Each app has its own registry, so tests can build several apps in one process. With
``--workers N``, ``hashwatch serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start: prometheus_client then keeps every worker's values in files there, and
whichever worker answers a scrape reports the sum over all of them (gauges: the maximum).
Replicas on other hosts are added up by Prometheus as usual.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MULTIPROC_ENV", "Metrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hashwatch_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hashwatch_http_request_duration_seconds",
            "Time to answer a request, by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.matches = Counter(
            "hashwatch_matches", "Matches served, by list.", ["list"], registry=self.registry
        )
        self.lookups = Counter("hashwatch_lookups", "Signals looked up.", registry=self.registry)
        self.index_size = Gauge(
            "hashwatch_index_hashes",
            "PDQ hashes in the index.",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.change_seq = Gauge(
            "hashwatch_index_change_seq",
            "Database change sequence the index has applied.",
            registry=self.registry,
            multiprocess_mode="min",
        )
        self.webhooks = Counter(
            "hashwatch_webhook_deliveries",
            "Webhook delivery attempts by outcome.",
            ["outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        if os.environ.get(MULTIPROC_ENV):
            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return generate_latest(combined)
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """A plain ASGI middleware counting requests and timing them by route (no
        ``BaseHTTPMiddleware``: that one runs every request as a task with a streamed
        response, a large share of a small request's cost)."""

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                path = getattr(scope.get("route"), "path", "unmatched")
                self.requests.labels(path, scope["method"], str(status)).inc()
                self.latency.labels(path).observe(time.perf_counter() - started)

        return counted
