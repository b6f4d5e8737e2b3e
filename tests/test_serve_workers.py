"""`hashwatch serve --workers 2`: one server to the outside — metrics and rate limits add up."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.store.service import KeyStore, Role
from tests.serve_helpers import wait_until_serving


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _requests_total(text: str, route: str) -> float:
    labels = rf'\{{[^}}]*route="{re.escape(route)}"[^}}]*\}}'
    pattern = rf"hashwatch_http_requests_total{labels} ([0-9.e+]+)"
    return sum(float(v) for v in re.findall(pattern, text))


def test_two_workers_report_and_limit_as_one_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hw.sqlite3'}"
    hw = Hashwatch(Settings(database_url=url, data_dir=tmp_path / "data"))
    token = KeyStore(hw.db).create("platform", Role.MATCHER, rate_per_s=2).token
    scraper = {"Authorization": f"Bearer {KeyStore(hw.db).create('ops', Role.ADMIN).token}"}
    hw.close()
    port = _port()
    env = {
        **os.environ,
        "HASHWATCH_DATABASE_URL": url,
        "HASHWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hashwatch", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, proc)
        for _ in range(40):  # new connections: uvicorn spreads them over both workers
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        scrapes = [httpx.get(f"{base}/metrics", headers=scraper, timeout=5).text for _ in range(6)]
        assert all(_requests_total(text, "/healthz") >= 40 for text in scrapes)
        headers = {"Authorization": f"Bearer {token}"}
        body = {"signals": [{"type": "md5", "value": "0" * 32}]}
        started = time.monotonic()
        codes = [
            httpx.post(f"{base}/v1/match", json=body, headers=headers, timeout=5).status_code
            for _ in range(60)
        ]
        elapsed = time.monotonic() - started
        allowed = codes.count(200)
        # The whole server: a burst of 4 (2x the key's 2/s) plus what refills meanwhile.
        # Two workers that did not share the key's budget would allow 8 plus twice the refill.
        assert allowed <= 4 + 2 * elapsed + 1, (allowed, elapsed, codes)
        assert allowed >= 2
        assert codes.count(429) == 60 - allowed
    finally:
        proc.terminate()
        proc.wait(timeout=20)
