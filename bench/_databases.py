"""The databases a benchmark runs against: a fresh SQLite file and a throwaway PostgreSQL
database on the local server (127.0.0.1:5432, trust authentication), dropped afterwards."""

from __future__ import annotations

import uuid
from pathlib import Path

__all__ = ["PG_ADMIN", "drop_database", "fresh_databases"]

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_databases(work: Path, which: str) -> list[tuple[str, str, str | None]]:
    """(label, SQLAlchemy URL, PostgreSQL database name or None) for ``which``: ``sqlite``,
    ``postgresql`` or ``both``. The SQLite file is removed first; the PostgreSQL database is
    created anew under a random name (drop it with :func:`drop_database`)."""
    targets: list[tuple[str, str, str | None]] = []
    if which in ("sqlite", "both"):
        db = work / "bench.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        targets.append(("SQLite", f"sqlite:///{db}", None))
    if which in ("postgresql", "both"):
        import psycopg

        name = f"hw_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        targets.append(("PostgreSQL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name))
    return targets


def drop_database(pg_name: str | None) -> None:
    """Drop a database made by :func:`fresh_databases` (nothing for SQLite)."""
    if pg_name:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
