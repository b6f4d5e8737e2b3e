"""Shared fixtures: a database of each kind per test, generated benign media.

Server-mode code runs against the real PostgreSQL on 127.0.0.1:5432: one throwaway database
is migrated per test session and copied (``CREATE DATABASE … TEMPLATE``) for each test, then
dropped. Where no PostgreSQL answers, those tests are skipped — except under CI, where that is
a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.store.database import Database

PG_ADMIN = os.environ.get("HASHWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DATA = Path(__file__).parent / "data"


def _pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def _admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        conn = _admin()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN}: {exc}")
    name = f"hw_tmpl_{uuid.uuid4().hex[:10]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database.open(_pg_url(name))
    db.dispose()
    try:
        yield name
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name = f"hw_test_{uuid.uuid4().hex[:12]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield _pg_url(name)
    finally:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hashwatch.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def hw(db_url: str, tmp_path: Path) -> Iterator[Hashwatch]:
    app = Hashwatch(Settings(database_url=db_url, data_dir=tmp_path / "data"))
    yield app
    app.close()


@pytest.fixture
def sqlite_hw(tmp_path: Path) -> Iterator[Hashwatch]:
    app = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "data")
    )
    yield app
    app.close()
