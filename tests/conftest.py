"""Shared fixtures: a database of each kind per test, generated benign media.

Server-mode code runs against the real PostgreSQL on 127.0.0.1:5432: one throwaway database
is migrated per test session and copied (``CREATE DATABASE … TEMPLATE``) for each test, then
dropped. Where no PostgreSQL answers, those tests are skipped — except under CI, where that is
a failure. SQLite likewise: one file migrated per worker and copied for each test (migrating
a new file took ~0.1 s CPU and up to 1 s on a loaded machine, for every test); the commands'
own tests (``tests/inprocess_cli.py``) still start from no database at all.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.store.database import Database
from hashwatch.store.models import Meta

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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database at the schema's head, without the instance id a database draws when
    first opened (so each copy draws its own), in one self-contained file (no WAL beside it)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "hw.sqlite3"
    Database.open(f"sqlite:///{path}").dispose()
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"DELETE FROM {Meta.__tablename__} WHERE key = 'instance_id'")
        conn.commit()
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    assert not path.with_name(path.name + "-wal").exists()
    return path


def sqlite_copy(template: Path, path: Path) -> str:
    """The URL of a copy of ``template`` at ``path``: a migrated database of its own."""
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return sqlite_copy(template, tmp_path / "hashwatch.sqlite3")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def hw(db_url: str, tmp_path: Path) -> Iterator[Hashwatch]:
    app = Hashwatch(Settings(database_url=db_url, data_dir=tmp_path / "data"))
    yield app
    app.close()


@pytest.fixture
def sqlite_hw(tmp_path: Path, sqlite_template: Path) -> Iterator[Hashwatch]:
    url = sqlite_copy(sqlite_template, tmp_path / "hw.sqlite3")
    app = Hashwatch(Settings(database_url=url, data_dir=tmp_path / "data"))
    yield app
    app.close()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """A local Ray cluster of two nodes of one CPU each, started once for the whole run (Ray
    takes seconds to start): the runner contract and tests/test_runner_ray.py share it. A test
    may remove the second node; the head node, where the tests run, stays."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'hashwatch[ray]')")
    from ray.cluster_utils import Cluster

    # Any: add_node takes (wait: bool, **kwargs), and a dict of ints could fill wait.
    node: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 80 * 2**20}
    if ray.is_initialized():
        ray.shutdown()
    made = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    made.add_node(**node)
    ray.init(address=made.address, log_to_driver=False)
    made.wait_for_nodes()
    yield made
    ray.shutdown()
    made.shutdown()  # type: ignore[no-untyped-call]
