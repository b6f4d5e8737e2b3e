"""Sending webhook events: signed, retried with exponential backoff, never on the match path.

A match only inserts rows into the deliveries table; :class:`DeliveryLoop` (a thread in every
server process) claims one due row at a time, POSTs it through :class:`PinnedSender` (policy
checked, address pinned, errors reduced to a reason class) and renews the row's lease while the
request is in flight, so a slow receiver never lets another replica send the same event again.
``sign`` and ``verify_signature`` are re-exported here for receivers and tests.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hashwatch.store.webhook_http import Outcome, PinnedSender
from hashwatch.store.webhooks import (
    SIGNATURE_HEADER,
    Delivery,
    TestTarget,
    WebhookStore,
    sign,
    verify_signature,
)
from hashwatch.web.failures import Outage, Retry
from hashwatch.web.metrics import Metrics

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryLoop",
    "send_signed",
    "send_test_event",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)


def send_signed(
    sender: PinnedSender, url: str, secret: str, event: dict[str, Any], delivery_id: str
) -> Outcome:
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        "Hashwatch-Delivery": delivery_id,
    }
    return sender.post(url, body, headers)


def send_test_event(sender: PinnedSender, target: TestTarget) -> Outcome:
    """Send one signed ``type: "test"`` event to a webhook now (no queue, no retry)."""
    event = {
        "id": str(uuid.uuid4()),
        "type": "test",
        "time": datetime.now(UTC).isoformat(),
        "webhook_id": target.id,
        "matches": [],
    }
    return send_signed(sender, target.url, target.secret, event, f"test-{event['id']}")


class DeliveryLoop:
    """Claims due deliveries one at a time and sends them until stopped."""

    def __init__(
        self,
        store: WebhookStore,
        metrics: Metrics,
        *,
        interval_s: float,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        lease_s: float = 30.0,
        batch: int = 20,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.interval_s = interval_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.lease = timedelta(seconds=lease_s)
        self.batch = batch
        self.sender = PinnedSender(store.policy, timeout_s=timeout_s)

    def run_once(self) -> int:
        """Send up to ``batch`` due deliveries, each claimed just before it is sent; returns
        how many were attempted."""
        sent = 0
        while sent < self.batch:
            delivery = self.store.claim(self.lease)
            if delivery is None:
                break
            self._send(delivery)
            sent += 1
        return sent

    def _renew_while(self, delivery: Delivery, done: threading.Event) -> None:
        period = max(self.lease.total_seconds() / 3, 0.01)
        while not done.wait(period):
            try:
                if not self.store.renew(delivery, self.lease):
                    return
            except Exception:  # a missed renewal only shortens the lease
                log.warning("webhook delivery %s: lease renewal failed", delivery.id)

    def _send(self, delivery: Delivery) -> None:
        done = threading.Event()
        renewer = threading.Thread(
            target=self._renew_while, args=(delivery, done), name="hashwatch-lease", daemon=True
        )
        renewer.start()
        try:
            outcome = send_signed(
                self.sender, delivery.url, delivery.secret, delivery.event, str(delivery.id)
            )
        finally:
            done.set()
            renewer.join()
        if outcome.ok:
            self.store.delivered(delivery)
            self.metrics.webhooks.labels("delivered").inc()
            return
        status = self.store.failed(
            delivery, outcome.reason, max_attempts=self.max_attempts, backoff_s=self.backoff_s
        )
        self.metrics.webhooks.labels("dead" if status == "dead" else "retry").inc()
        log.info("webhook delivery %s failed (%s): %s", delivery.id, outcome.reason, status)

    def run(self, stop: threading.Event, outage: Outage | None = None) -> None:
        retry = Retry("webhooks", self.interval_s, outage or Outage())
        while not stop.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:  # the loop must outlive a database outage: back off
                stop.wait(retry.failed(exc))
                continue
            retry.succeeded()
            if not sent:
                stop.wait(self.interval_s)
        self.sender.close()
