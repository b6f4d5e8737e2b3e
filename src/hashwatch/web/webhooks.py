"""Sending webhook events: signed, retried with exponential backoff, never on the match path.

A match only inserts rows into the deliveries table; :class:`DeliveryLoop` (a thread in every
server process) claims due rows and POSTs them, signed (see :mod:`hashwatch.store.webhooks`;
``sign`` and ``verify_signature`` are re-exported here for receivers and tests).
"""

from __future__ import annotations

import json
import logging
import threading
import time

import httpx

from hashwatch.store.webhooks import (
    SIGNATURE_HEADER,
    Delivery,
    WebhookStore,
    sign,
    verify_signature,
)
from hashwatch.web.metrics import Metrics

__all__ = ["SIGNATURE_HEADER", "DeliveryLoop", "sign", "verify_signature"]

log = logging.getLogger(__name__)


class DeliveryLoop:
    """Claims due deliveries and sends them until stopped."""

    def __init__(
        self,
        store: WebhookStore,
        metrics: Metrics,
        *,
        interval_s: float,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.client = httpx.Client(timeout=timeout_s)

    def run_once(self) -> int:
        """Send every due delivery once; returns how many were attempted."""
        batch = self.store.claim_due()
        for delivery in batch:
            self._send(delivery)
        return len(batch)

    def _send(self, delivery: Delivery) -> None:
        body = json.dumps(delivery.event, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(delivery.secret, body, int(time.time())),
            "Hashwatch-Delivery": str(delivery.id),
        }
        try:
            response = self.client.post(delivery.url, content=body, headers=headers)
            if 200 <= response.status_code < 300:
                self.store.delivered(delivery.id)
                self.metrics.webhooks.labels("delivered").inc()
                return
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        status = self.store.failed(
            delivery, error, max_attempts=self.max_attempts, backoff_s=self.backoff_s
        )
        self.metrics.webhooks.labels("dead" if status == "dead" else "retry").inc()
        log.info("webhook delivery %s failed (%s): %s", delivery.id, error, status)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                sent = self.run_once()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("webhook delivery loop")
                sent = 0
            if not sent:
                stop.wait(self.interval_s)
        self.client.close()
