"""The database goes away under a running service: every endpoint answers 503 with Retry-After
and no SQL, /healthz says why, the log holds one line for the outage and one for the recovery,
and background jobs back off instead of failing every tick."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.store.service import Role
from hashwatch.store.webhooks import WebhookStore
from hashwatch.web.app import _loop, create_app
from hashwatch.web.failures import Outage
from hashwatch.web.metrics import Metrics
from hashwatch.web.webhooks import DeliveryLoop
from tests.conftest import _admin
from tests.serve_helpers import bearer, make_key, settings

SECRET = "f" * 32  # stands for a list hash: it must never reach a client or the log


def _database_away(name: str, away: str) -> None:
    with _admin() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{away}"')


def test_every_endpoint_answers_503_while_the_database_is_gone(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    hw = Hashwatch(Settings(database_url=pg_url, data_dir=tmp_path / "data"))
    hw.lists.create("agency")
    admin = make_key(hw, Role.ADMIN)
    name = pg_url.rsplit("/", 1)[1]
    app = create_app(hw, settings(background=False, retry_after_s=3))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/lists", headers=admin).status_code == 200
        _database_away(name, f"{name}_away")
        try:
            calls = [
                ("GET", "/v1/lists", None),
                ("POST", "/v1/lists", {"name": "another"}),
                ("POST", "/v1/match", {"signals": [{"type": "md5", "value": SECRET}]}),
                ("GET", "/v1/keys", None),
                ("GET", "/v1/match-records", None),
            ]
            for _ in range(5):
                health = c.get("/healthz")
                assert health.status_code == 503
                assert health.json()["reason"] == "database unavailable"
                assert health.headers["Retry-After"] == "3"
                # A key the server has not seen cannot be checked: 503, not 401.
                unseen = c.get("/v1/lists", headers=bearer("hw_never_seen_before"))
                assert unseen.status_code == 503 and unseen.headers["Retry-After"] == "3"
                for method, path, body in calls:
                    r = c.request(method, path, headers=admin, json=body)
                    assert r.status_code == 503, (path, r.text)
                    assert r.headers["Retry-After"] == "3"
                    assert "SELECT" not in r.text and SECRET not in r.text
        finally:
            _database_away(f"{name}_away", name)
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/lists", headers=admin).status_code == 200
    hw.close()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("hashwatch")]
    assert len([m for m in lines if "database unavailable" in m]) == 1, lines
    assert len([m for m in lines if "database reachable again" in m]) == 1, lines
    assert not any(r.exc_info for r in caplog.records), "no stack traces"
    assert not any(SECRET in r.getMessage() or "SELECT" in r.getMessage() for r in caplog.records)


class _Ticks:
    """A stop event that never waits: it records each interval and stops after ``runs``."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.waits: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return self.is_set()

    def is_set(self) -> bool:
        return len(self.waits) > self.runs


def test_background_jobs_back_off_and_log_an_outage_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    gone = OperationalError("SELECT * FROM entries WHERE value = %(v)s", {"v": SECRET}, OSError())
    outcomes: list[Exception | None] = [gone] * 6 + [None] * 2 + [RuntimeError("bug")] * 3
    outcomes.append(None)
    runs = len(outcomes)

    def job() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    stop = _Ticks(runs)
    _loop(stop, 1.0, job, "refresh", Outage(), max_backoff_s=8.0)  # type: ignore[arg-type]
    assert stop.waits == [1, 2, 4, 8, 8, 8, 8, 1, 1, 2, 4, 8, 1]
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "database unavailable" in m]) == 1
    # The driver's error class, named once, without its message (which may quote parameters).
    assert "database unavailable (OSError, seen by background job refresh)" in messages
    assert len([m for m in messages if "database reachable again" in m]) == 1
    assert len([r for r in caplog.records if r.exc_info]) == 1  # the bug, once per streak
    assert not any(SECRET in m or "SELECT" in m for m in messages)


def test_the_webhook_delivery_loop_backs_off_while_the_database_is_gone(
    sqlite_hw: Hashwatch, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    delivery = DeliveryLoop(
        WebhookStore(sqlite_hw.db),
        Metrics(),
        interval_s=0.5,
        max_attempts=3,
        backoff_s=1.0,
        timeout_s=1.0,
    )
    gone = OperationalError("SELECT 1", {}, OSError())
    outcomes: list[Exception | None] = [gone] * 8 + [None]
    original = delivery.run_once

    def run_once() -> int:
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome
        return original()

    monkeypatch.setattr(delivery, "run_once", run_once)
    stop = _Ticks(9)
    delivery.run(stop, Outage())  # type: ignore[arg-type]
    assert stop.waits == [1, 2, 4, 8, 16, 32, 60, 60, 0.5, 0.5]
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "database unavailable" in m]) == 1
    assert len([m for m in messages if "database reachable again" in m]) == 1
    assert not any(r.exc_info for r in caplog.records)
