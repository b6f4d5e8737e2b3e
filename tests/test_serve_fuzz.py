"""The API fuzzed from its own OpenAPI schema (schemathesis): whatever arrives, no 500.

Bounded: 25 examples per operation, derandomised, with an admin key so every route is reached
past authentication."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.exchange.feed import FeedStore
from hashwatch.exchange.feed_keys import create_publisher_key, default_key_path
from hashwatch.store.service import KeyStore, Role
from hashwatch.web.app import create_app
from tests.serve_helpers import settings as serve_settings


def test_no_server_errors_from_schema_fuzzing(tmp_path: Path) -> None:
    hw = Hashwatch(Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path))
    hw.lists.create("agency")
    # A signing key and a published feed, so the feed routes are fuzzed past their 503/404.
    signing = create_publisher_key(default_key_path(tmp_path), "fuzz.example")
    FeedStore(hw.db).publish("agency", signing)
    headers = {"Authorization": f"Bearer {KeyStore(hw.db).create('fuzz', Role.ADMIN).token}"}
    app = create_app(
        hw, serve_settings(background=False, rate_per_s=1e6, burst=1e6, public_docs=True)
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the app's own schema must describe every operation
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case[Any]) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.text[:300]}")

        run()
    hw.close()
    assert operations >= 18
    assert failures == []
