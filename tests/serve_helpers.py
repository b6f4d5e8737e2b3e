"""Helpers of the service tests: an app with fast background jobs, keys, a webhook receiver."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.store.service import KeyStore, Role
from hashwatch.web.app import create_app
from hashwatch.web.settings import ServeSettings

FAST = {
    "refresh_interval_s": 0.2,
    "webhook_interval_s": 0.05,
    "webhook_backoff_s": 0.05,
    "webhook_max_attempts": 3,
    "webhook_timeout_s": 2.0,
}


def settings(**changes: Any) -> ServeSettings:
    return ServeSettings(**{**FAST, **changes})


@contextmanager
def client(hw: Hashwatch, **changes: Any) -> Iterator[TestClient]:
    with TestClient(create_app(hw, settings(**changes))) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_key(hw: Hashwatch, role: Role, name: str | None = None, **kw: Any) -> dict[str, str]:
    return bearer(KeyStore(hw.db).create(name or f"{role.value}-test", role, **kw).token)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that records what it is sent."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    rec = Receiver(status)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            rec.received.append((dict(self.headers.items()), body))
            self.send_response(rec.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def wait_until_serving(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Poll ``/healthz`` until the server answers; fail if it exits or takes too long."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)


@contextmanager
def serving(hw: Hashwatch, **changes: Any) -> Iterator[str]:
    """``hw``'s service on a loopback port, as ``hashwatch serve`` runs it (its app under
    uvicorn, in a thread); yields its base URL once it accepts connections."""
    app = create_app(hw, settings(**changes))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        started = threading.Event()
        for _ in range(600):  # at most 30 s
            if server.started:
                started.set()
                break
            started.wait(0.05)
        assert started.is_set(), "the service did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def known_md5(hw: Hashwatch, tmp_path: Path) -> str:
    """A list "known" holding one benign random MD5 (standing in for known material): its value."""
    value = "00112233445566778899aabbccddeeff"
    (tmp_path / "known.txt").write_text(f"md5 {value}\n")
    hw.lists.import_file("known", tmp_path / "known.txt")
    return value
