"""Where an alert goes besides stdout: a webhook of the watcher's own, and the service's.

* :class:`ServiceRecorder` stores each alert as a match record and queues it for every webhook
  registered with the service (``hashwatch webhooks add``), in one transaction, exactly as the
  HTTP service does for its matches; a running ``hashwatch serve`` delivers them with its
  retries and dead letters. The event is the alert's JSON with ``"type": "stream.alert"``.
* :class:`WebhookPoster` POSTs the same JSON to ``--webhook`` URLs directly, from a thread of
  its own so that a slow receiver never delays matching, retrying with exponential backoff. With
  a secret it signs each request as the service does (``Hashwatch-Signature: t=<unix
  seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``), so one receiver verifies both;
  ``Hashwatch-Delivery`` carries the alert's id, the same on every retry.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from hashwatch.store.webhooks import SIGNATURE_HEADER, WebhookStore, sign
from hashwatch.stream.sources import redact_url

__all__ = ["AlertSink", "ServiceRecorder", "WebhookPoster"]
RECORD_KEY_NAME = "watch"  # the match records' "key" column: who matched (the service: API key)


class AlertSink(Protocol):
    """Something that takes alert events (``send`` must not block for long)."""

    def send(self, event: dict[str, Any]) -> None: ...

    def close(self, timeout_s: float) -> None: ...


class ServiceRecorder:
    """Alerts into the database: match records, and deliveries for registered webhooks."""

    def __init__(self, store: WebhookStore) -> None:
        self.store = store

    def send(self, event: dict[str, Any]) -> None:
        record = {
            "key_name": RECORD_KEY_NAME,
            "list_name": event["list"],
            "entry_id": event["entry_id"],
            "hash_type": event["hash_type"],
            "distance": event["distance"],
        }
        self.store.record_matches([record], [service_event(event)])

    def close(self, timeout_s: float) -> None:
        del timeout_s  # nothing is held back


def service_event(event: dict[str, Any]) -> dict[str, Any]:
    """The alert as the service's webhook events look: a ``type`` and a ``time`` added."""
    return {"type": event["event"], "time": event["detected_at"], **event}


class WebhookPoster:
    """POSTs alert events to one URL with retries; ``on_error`` hears of events given up."""

    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        attempts: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        on_error: Callable[[dict[str, Any]], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.on_error = on_error
        self.client = httpx.Client(timeout=timeout_s, transport=transport)
        self.delivered = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hashwatch-webhook", daemon=True)
        self._thread.start()

    def send(self, event: dict[str, Any]) -> None:
        self._queue.put(event)

    def close(self, timeout_s: float) -> None:
        """Send what is queued within ``timeout_s`` (retries cut short), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._closing.set()
        self._thread.join(1.0)
        self.client.close()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        error = ""
        for attempt in range(1, self.attempts + 1):
            headers = {"Content-Type": "application/json", "Hashwatch-Delivery": event["id"]}
            if self.secret:
                headers[SIGNATURE_HEADER] = sign(self.secret, body, int(time.time()))
            try:
                response = self.client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts and self._closing.wait(self.backoff_s * 2 ** (attempt - 1)):
                break
        if self.on_error is not None:
            self.on_error(
                {
                    "event": "webhook.error",
                    "at": datetime.now(UTC).isoformat(),
                    "url": redact_url(self.url),
                    "alert_id": event.get("id"),
                    "error": error.replace(self.url, redact_url(self.url)),
                    "attempts": attempt,
                }
            )
