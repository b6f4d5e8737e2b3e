"""A recorded match survives the server process being killed the instant it answered: the
match record and its audit line are on disk, readable by the next process, and the audit
chain is intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import select

from hashwatch.app import Hashwatch
from hashwatch.audit import verify_audit_log
from hashwatch.store.service import MATCH_RECORDS

BOUND_S = 60  # generous: the machine is shared

# The server side: the service of a real app, one matching request, then "answered" on
# stdout, and it waits to be killed (SIGKILL: no clean-up, no close, no atexit).
SERVER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from hashwatch.app import Hashwatch
    from hashwatch.config import Settings
    from hashwatch.matching.matcher import Signal
    from hashwatch.signals.types import HashType
    from hashwatch.store.service import Role
    from hashwatch.store.users import Actor
    from hashwatch.web.app import create_app
    from hashwatch.web.settings import ServeSettings

    url, data_dir, value = sys.argv[1:4]
    hw = Hashwatch(Settings(database_url=url, data_dir=Path(data_dir)))
    service = create_app(hw, ServeSettings(background=False)).state.service
    caller = Actor(key_id=0, name="platform-a", role=Role.MATCHER)
    results = service.match_items(
        [[Signal(HashType.MD5, value)]], caller, content_ids=["upload-7"]
    )
    assert results[0].matches
    print("answered", flush=True)
    threading.Event().wait()
    """
)


def test_a_match_answered_just_before_the_process_is_killed_is_recorded_and_audited(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    value = "0123456789abcdef0123456789abcdef"  # a benign random MD5 standing in for known material
    (tmp_path / "known.txt").write_text(f"md5 {value}\n")
    sqlite_hw.lists.import_file("known", tmp_path / "known.txt")
    data_dir = sqlite_hw.settings.data_dir
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, sqlite_hw.settings.database_url, str(data_dir), value],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        server.send_signal(signal.SIGKILL)  # right after the answer
    finally:
        server.kill()
        server.wait(BOUND_S)
    assert line.strip() == b"answered"
    assert server.returncode == -signal.SIGKILL

    restarted = Hashwatch.open(sqlite_hw.settings.database_url, data_dir)
    try:
        with restarted.db.read() as conn:
            rows = conn.execute(select(MATCH_RECORDS.c.key_name, MATCH_RECORDS.c.content_id)).all()
    finally:
        restarted.close()
    assert [tuple(r) for r in rows] == [("platform-a", "upload-7")]
    audit = data_dir / "serve-audit.log"
    assert verify_audit_log(audit).ok
    matched = [json.loads(s) for s in audit.read_text().splitlines() if '"event":"match"' in s]
    assert [m["details"]["content_id"] for m in matched] == ["upload-7"]
    assert matched[0]["details"]["key"] == "platform-a"
