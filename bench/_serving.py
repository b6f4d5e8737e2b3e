"""``hashwatch serve`` as a separate process on a free loopback port, for the benchmarks that
measure the service over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(
    url: str, data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A ``hashwatch serve --port P ARGS`` on ``url``'s database, once ``/healthz`` answers
    (at most 300 s): the process and its base URL. ``env``: more environment variables."""
    port = free_port()
    environ = {
        **os.environ,
        "HASHWATCH_DATABASE_URL": url,
        "HASHWATCH_DATA_DIR": str(data_dir),
        **(env or {}),
    }
    cmd = [sys.executable, "-m", "hashwatch", "serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start")
