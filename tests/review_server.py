"""``hashwatch review CASE_DIR --port 0`` as a child process, for tests: yields its first line
(the case, the user and the one-time sign-in link) and stops it at the end."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["review_server"]


@contextmanager
def review_server(
    db_url: str, data_dir: Path, case_dir: Path, *args: str
) -> Iterator[dict[str, Any]]:
    command = [sys.executable, "-m", "hashwatch", "--db", db_url, "--data-dir", str(data_dir)]
    command += ["review", str(case_dir), "--port", "0", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: lines.put(proc.stdout.readline() if proc.stdout else ""), daemon=True
    ).start()
    try:
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            first = ""
        if not first:
            proc.kill()
            raise AssertionError(f"hashwatch review printed no link: {proc.communicate()[1]}")
        yield json.loads(first)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
