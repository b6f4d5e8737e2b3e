"""Two server processes on one PostgreSQL database: an entry added or revoked through one is
matched (or no longer matched) by the other within 5 seconds, without a rebuild or a pause."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from hashwatch.signals.hasher import hash_stream
from hashwatch.store.database import Database
from hashwatch.store.service import KeyStore, Role
from tests.media import jpeg_bytes, scene
from tests.serve_helpers import wait_until_serving

pytestmark = pytest.mark.postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _server(url: str, data_dir: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "HASHWATCH_DATABASE_URL": url,
        "HASHWATCH_DATA_DIR": str(data_dir),
        "HASHWATCH_SERVE_REFRESH_INTERVAL_S": "0.5",
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "hashwatch.web.app:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_changes_reach_every_replica_within_5_seconds(pg_url: str, tmp_path: Path) -> None:
    db = Database.open(pg_url)
    keys = KeyStore(db)
    curator = {"Authorization": f"Bearer {keys.create('cur', Role.CURATOR).token}"}
    matcher = {"Authorization": f"Bearer {keys.create('platform', Role.MATCHER).token}"}
    db.dispose()
    picture = jpeg_bytes(scene(11))
    pdq = hash_stream(io.BytesIO(picture), "x").as_dict()["pdq"]
    with _server(pg_url, tmp_path / "a") as a, _server(pg_url, tmp_path / "b") as b:
        httpx.post(f"{a}/v1/lists", headers=curator, json={"name": "agency"}).raise_for_status()

        def matches_on_b() -> int:
            r = httpx.post(
                f"{b}/v1/match", headers=matcher, files={"file": ("p.jpg", picture)}, timeout=60
            )
            r.raise_for_status()
            return len(r.json()["matches"])

        assert matches_on_b() == 0
        entry = {"entries": [{"hashes": [{"type": "pdq", "value": pdq}]}]}
        httpx.post(f"{a}/v1/lists/agency/entries", headers=curator, json=entry).raise_for_status()
        started = time.monotonic()
        while matches_on_b() == 0:  # B keeps answering while it catches up
            assert time.monotonic() - started < 5, "B did not see the new entry within 5 s"
            time.sleep(0.1)
        revoke = {"hashes": [{"type": "pdq", "value": pdq}]}
        httpx.post(f"{a}/v1/lists/agency/entries/revoke", headers=curator, json=revoke)
        started = time.monotonic()
        while matches_on_b() != 0:
            assert time.monotonic() - started < 5, "B still matched a revoked entry after 5 s"
            time.sleep(0.1)
        started = time.monotonic()  # and the index drops it incrementally, by change sequence
        while httpx.get(f"{b}/healthz").json()["index_hashes"] != 0:
            assert time.monotonic() - started < 5, "B's index still holds the revoked hash"
            time.sleep(0.1)
