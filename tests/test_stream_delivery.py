"""Where alerts go: the direct webhook (signed, retried, given up loudly) and the service's
match records and webhook queue. A real loopback HTTP receiver, a real database."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hashwatch.app import Hashwatch
from hashwatch.store.service import MatchRecordStore
from hashwatch.store.webhooks import WebhookStore
from hashwatch.stream.delivery import ServiceRecorder, WebhookPoster
from hashwatch.web.webhooks import sign, verify_signature

ALERT = {
    "event": "stream.alert",
    "id": "0b7e1f9c-2f0e-4d8e-9a57-1d2b8e0c6a11",
    "stream": "rtmp://***@media.example/live/a",
    "list": "agency",
    "kind": "known",
    "hash_type": "pdq",
    "distance": 7,
    "category": "1",
    "entry_id": 12,
    "stream_time": 14.0,
    "detected_at": "2026-11-24T10:00:00+00:00",
    "segment": {"start": 12.0, "end": 14.0},
}


class Receiver(http.server.BaseHTTPRequestHandler):
    status = 500
    bodies: list[bytes]

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def failing_receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Failing", (Receiver,), {"status": 500, "bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://user:pw@127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


def test_signature_rejects_tampering_other_secrets_and_old_timestamps() -> None:
    body = json.dumps(ALERT).encode()
    header = sign("s3cret", body, 1_800_000_000)
    assert verify_signature("s3cret", body, header, now=1_800_000_010)
    assert not verify_signature("s3cret", body + b" ", header, now=1_800_000_010)
    assert not verify_signature("other", body, header, now=1_800_000_010)
    assert not verify_signature("s3cret", body, header, now=1_800_001_000)


def test_a_webhook_that_keeps_failing_is_retried_then_reported(
    failing_receiver: tuple[str, list[bytes]],
) -> None:
    url, bodies = failing_receiver
    errors: list[dict[str, Any]] = []
    poster = WebhookPoster(url, attempts=3, backoff_s=0.01, on_error=errors.append)
    poster.send(ALERT)
    poster.close(10.0)
    assert [json.loads(b) for b in bodies] == [ALERT] * 3
    (error,) = errors
    assert error["event"] == "webhook.error" and error["alert_id"] == ALERT["id"]
    assert error["attempts"] == 3 and error["error"] == "HTTP 500"
    assert "pw" not in error["url"]  # credentials in a webhook URL are not printed
    assert poster.delivered == 0


def test_an_unreachable_webhook_is_reported_not_raised() -> None:
    errors: list[dict[str, Any]] = []
    poster = WebhookPoster("http://127.0.0.1:9/hook", attempts=2, backoff_s=0.01)
    poster.on_error = errors.append
    poster.send(ALERT)
    poster.close(10.0)
    assert len(errors) == 1 and errors[0]["attempts"] == 2
    assert errors[0]["error"].startswith("ConnectError")


def test_service_recorder_stores_the_alert_and_queues_it_for_registered_webhooks(
    hw: Hashwatch,
) -> None:
    store = WebhookStore(hw.db)
    store.add("https://receiver.example/all")
    store.add("https://receiver.example/agency", list_name="agency")
    store.add("https://receiver.example/other", list_name="other")
    ServiceRecorder(store).send(ALERT)
    pending = store.deliveries("pending")
    assert len(pending) == 2  # the "other" list's webhook is not interested
    for delivery in pending:
        event = delivery["event"]
        assert event["type"] == "stream.alert" and event["time"] == ALERT["detected_at"]
        assert {k: event[k] for k in ALERT} == ALERT
    (record,) = MatchRecordStore(hw.db).recent()
    assert (record["key_name"], record["list_name"], record["entry_id"]) == ("watch", "agency", 12)
    assert (record["hash_type"], record["distance"]) == ("pdq", 7)
