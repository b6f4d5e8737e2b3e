"""Webhooks under attack and under load: two senders sharing one queue send each event once
even when a receiver stalls past the lease; a disabled webhook is sent nothing more; an admin
cannot aim the service at its own network or read connection errors back; URL credentials are
never shown; one upload's matches make one event under the caller's content_id."""

from __future__ import annotations

import http.server
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import ConfigError
from hashwatch.signals.hasher import hash_stream
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import MatchRecordStore, Role
from hashwatch.store.webhook_http import PinnedSender, TargetPolicy
from hashwatch.store.webhooks import WebhookStore
from hashwatch.web.metrics import Metrics
from hashwatch.web.webhooks import SIGNATURE_HEADER, DeliveryLoop, verify_signature
from tests.media import jpeg_bytes, scene
from tests.serve_helpers import client, make_key, receiver

LOOPBACK = TargetPolicy.parse("127.0.0.1")


def _wait(predicate: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@dataclass
class StallingReceiver:
    """Answers 200 at once, except the first request, held until ``release`` is set."""

    port: int = 0
    events: list[str] = field(default_factory=list)  # event ids, in order of arrival
    release: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextmanager
def stalling_receiver() -> Iterator[StallingReceiver]:
    rec = StallingReceiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with rec.lock:
                rec.events.append(json.loads(body)["id"])
                first = len(rec.events) == 1
            if first:
                rec.stalled.set()
                rec.release.wait(60)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()


def _queue_events(store: WebhookStore, count: int) -> list[str]:
    events: list[dict[str, Any]] = [
        {"id": f"event-{n}", "type": "match", "matches": [{"list": "agency", "entry_id": n}]}
        for n in range(count)
    ]
    store.record_matches([], events)
    return [e["id"] for e in events]


def _loop(store: WebhookStore, lease_s: float) -> DeliveryLoop:
    return DeliveryLoop(
        store,
        Metrics(),
        interval_s=0.02,
        max_attempts=3,
        backoff_s=0.05,
        timeout_s=60,
        lease_s=lease_s,
    )


def test_two_senders_deliver_each_event_once_when_a_receiver_stalls_past_the_lease(
    hw: Hashwatch,
) -> None:
    lease_s = 0.5
    with stalling_receiver() as rec:
        store = WebhookStore(hw.db, policy=LOOPBACK)
        store.add(rec.url)
        ids = _queue_events(store, 10)
        a, b = _loop(store, lease_s), _loop(store, lease_s)
        first = threading.Thread(target=a.run_once)  # A claims a delivery; the receiver stalls
        first.start()
        assert rec.stalled.wait(20)
        stop = threading.Event()
        second = threading.Thread(target=b.run, args=(stop,))
        second.start()  # B sends the rest meanwhile
        assert _wait(lambda: len(set(rec.events)) == 10)
        # The stalled request outlives its lease several times over; B keeps polling.
        stalled_since = time.monotonic()
        assert _wait(lambda: time.monotonic() - stalled_since > 4 * lease_s)
        rec.release.set()
        first.join(20)
        assert _wait(lambda: len(store.deliveries("delivered")) == 10)
        stop.set()
        second.join(20)
    assert sorted(rec.events) == sorted(ids)  # every event exactly once


def test_a_disabled_webhook_is_sent_nothing_queued_or_resent(hw: Hashwatch) -> None:
    with receiver() as rec:
        store = WebhookStore(hw.db, policy=LOOPBACK)
        hook, _secret = store.add(rec.url)
        _queue_events(store, 3)
        store.disable(hook["id"], actor="ops")
        _queue_events(store, 2)  # nothing new is queued for it either
        assert _loop(store, 5).run_once() == 0
        assert rec.received == []
        cancelled = store.deliveries("cancelled")
        assert len(cancelled) == 3 and not store.deliveries("pending")
        admin = make_key(hw, Role.ADMIN, "ops")
        with client(hw, webhook_allow_hosts="127.0.0.1") as c:
            r = c.post(f"/v1/webhooks/deliveries/{cancelled[0]['id']}/resend", headers=admin)
            assert r.status_code == 400 and "disabled" in r.json()["detail"]
        assert store.resend_dead() == 0
        assert _loop(store, 5).run_once() == 0 and rec.received == []


INTERNAL = [
    "http://127.0.0.1:6379/",
    "http://127.9.9.9/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1:8080/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://0.0.0.0:22/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://localhost:8000/",
    "http://api.localhost/",
    "ftp://files.example.com/",
    # The numeric IPv4 forms the C resolver accepts name the same addresses.
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0xa.0.0.5/",
]


def test_an_admin_cannot_aim_webhooks_at_internal_addresses(sqlite_hw: Hashwatch) -> None:
    admin = make_key(sqlite_hw, Role.ADMIN, "ops")
    with client(sqlite_hw) as c:
        for url in INTERNAL:
            r = c.post("/v1/webhooks", headers=admin, json={"url": url})
            assert r.status_code in (400, 422), (url, r.text)
        assert c.get("/v1/webhooks", headers=admin).json() == []
        public = c.post("/v1/webhooks", headers=admin, json={"url": "https://hooks.example.com/"})
        assert public.status_code == 201
        # A name made of hex letters is a name, not a number.
        named = c.post("/v1/webhooks", headers=admin, json={"url": "https://cafe.beef.example/"})
        assert named.status_code == 201


def test_names_are_resolved_once_checked_and_pinned() -> None:
    """A name that resolves to a private address is refused at send time (DNS rebinding);
    an allowed one is connected to at the resolved address, with the name in Host."""
    calls: list[str] = []

    def private(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["93.184.216.34", "10.1.2.3"]  # one public, one private: refused

    sender = PinnedSender(TargetPolicy(), timeout_s=5, resolver=private)
    outcome = sender.post("https://hooks.example.com/in", b"{}", {})
    assert (outcome.ok, outcome.reason) == (False, "refused by policy") and calls == [
        "hooks.example.com"
    ]
    with receiver() as rec:
        pinned = PinnedSender(
            TargetPolicy.parse("127.0.0.0/8"),
            timeout_s=5,
            resolver=lambda host, port: ["127.0.0.1"],
        )
        outcome = pinned.post(f"http://hooks.example.com:{rec.port}/in", b"{}", {})
        assert outcome.ok, outcome
        [(headers, _body)] = rec.received
        assert headers["Host"] == f"hooks.example.com:{rec.port}"


def test_connection_errors_are_reason_classes_and_credentials_are_never_shown(
    hw: Hashwatch,
) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    admin = make_key(hw, Role.ADMIN, "ops")
    curator = make_key(hw, Role.CURATOR, "cur")
    hw.lists.create("agency")
    url = f"http://hook-user:pa55word@127.0.0.1:{closed}/in"
    with client(hw, webhook_allow_hosts="127.0.0.1") as c:
        made = c.post("/v1/webhooks", headers=admin, json={"url": url})
        assert made.status_code == 201
        assert made.json()["url"] == f"http://***@127.0.0.1:{closed}/in"
        entry = {"entries": [{"hashes": [{"type": "md5", "value": "e" * 32}]}]}
        c.post("/v1/lists/agency/entries", headers=curator, json=entry)
        c.post("/v1/match", headers=curator, json={"signals": [{"type": "md5", "value": "e" * 32}]})
        assert _wait(lambda: c.get("/v1/webhooks/deliveries?status=dead", headers=admin).json())
        [dead] = c.get("/v1/webhooks/deliveries?status=dead", headers=admin).json()
        assert dead["last_error"] == "connection failed"  # not errno, address or port
        tested = c.post(f"/v1/webhooks/{made.json()['id']}/test", headers=admin).json()
        assert tested == {
            "webhook_id": made.json()["id"],
            "delivered": False,
            "outcome": "connection failed",
        }
        shown = [
            c.get("/v1/webhooks", headers=admin).text,
            c.get("/v1/webhooks/deliveries", headers=admin).text,
            str([e.details for e in AuditTrail(hw.db).events()]),
        ]
        assert all("pa55word" not in text and "hook-user" not in text for text in shown)


def test_one_upload_with_its_content_id_makes_one_event_with_all_its_matches(
    hw: Hashwatch,
) -> None:
    picture = jpeg_bytes(scene(21))
    fs = hash_stream(io.BytesIO(picture), "p.jpg").as_dict()
    for name in ("agency", "partner"):
        hw.lists.create(name)
    curator = make_key(hw, Role.CURATOR, "cur")
    admin = make_key(hw, Role.ADMIN, "ops")
    matcher = make_key(hw, Role.MATCHER, "platform")
    entry = {"entries": [{"hashes": [{"type": "pdq", "value": fs["pdq"]}]}]}
    md5_entry = {"entries": [{"hashes": [{"type": "md5", "value": fs["md5"]}]}]}
    with receiver() as rec, client(hw, webhook_allow_hosts="127.0.0.1") as c:
        c.post("/v1/webhooks", headers=admin, json={"url": rec.url})
        c.post("/v1/lists/agency/entries", headers=curator, json=entry)
        c.post("/v1/lists/partner/entries", headers=curator, json=md5_entry)
        r = c.post(
            "/v1/match?content_id=post-4711",
            headers=matcher,
            files={"file": ("p.jpg", picture, "image/jpeg")},
        )
        assert r.status_code == 200 and r.json()["content_id"] == "post-4711"
        assert len(r.json()["matches"]) == 2
        # Signals of one content given as JSON: one event too.
        signals = [{"type": "md5", "value": fs["md5"]}, {"type": "pdq", "value": fs["pdq"]}]
        c.post("/v1/match", headers=matcher, json={"signals": signals, "content_id": "post-4712"})
        assert _wait(lambda: len(rec.received) >= 2)
        assert _wait(lambda: len(c.get("/v1/webhooks/deliveries", headers=admin).json()) == 2)
    events = sorted((json.loads(body) for _h, body in rec.received), key=lambda e: e["content_id"])
    assert [e["content_id"] for e in events] == ["post-4711", "post-4712"]
    for event in events:
        assert sorted(m["list"] for m in event["matches"]) == ["agency", "partner"]
    records = MatchRecordStore(hw.db).recent()
    assert sorted(r["content_id"] for r in records) == ["post-4711"] * 2 + ["post-4712"] * 2


def test_cli_tests_and_removes_a_webhook_and_sets_a_keys_disclosure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from hashwatch.cli.main import app

    db = f"sqlite:///{tmp_path / 'hw.sqlite3'}"
    cli = CliRunner()

    def hashwatch(*args: str) -> Result:
        return cli.invoke(app, ["--db", db, "--data-dir", str(tmp_path / "data"), *args])

    # A loopback target is refused unless the operator allows it, as in the server.
    refused = hashwatch("webhooks", "add", "http://127.0.0.1:9/in")
    assert refused.exit_code != 0 and isinstance(refused.exception, ConfigError)
    monkeypatch.setenv("HASHWATCH_SERVE_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
    with receiver() as rec:
        added = hashwatch("webhooks", "add", rec.url)
        assert added.exit_code == 0, added.output
        hook = json.loads(added.stdout)
        tested = hashwatch("webhooks", "test", str(hook["id"]))
        assert tested.exit_code == 0, tested.output
        assert json.loads(tested.stdout) == {
            "webhook_id": hook["id"],
            "delivered": True,
            "outcome": "HTTP 200",
        }
        [(headers, body)] = rec.received
        assert json.loads(body)["type"] == "test"
        assert verify_signature(hook["secret"], body, headers[SIGNATURE_HEADER])
        rec.status = 503
        failing = hashwatch("webhooks", "test", str(hook["id"]))
        assert failing.exit_code == 1 and json.loads(failing.stdout)["outcome"] == "HTTP 503"
    removed = hashwatch("webhooks", "remove", str(hook["id"]))
    assert removed.exit_code == 0, removed.output
    assert hashwatch("webhooks", "list").stdout == ""
    made = hashwatch("keys", "create", "--role", "matcher", "--name", "p", "--disclosure", "hidden")
    assert made.exit_code == 0, made.output
    updated = hashwatch("keys", "update", "p", "--signals-per-window", "500")
    info = json.loads(updated.stdout)
    assert (info["disclosure"], info["signals_per_window"]) == ("hidden", 500)
    # The CLI audits as the operating-system user, in the database's audit trail.
    hw = Hashwatch(Settings(database_url=db, data_dir=tmp_path / "data"))
    try:
        actions = {e.action for e in AuditTrail(hw.db).events()}
    finally:
        hw.close()
    assert {"webhook.added", "webhook.removed", "key.created", "key.updated"} <= actions
