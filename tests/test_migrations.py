"""The schema the migrations build is the schema the models describe, on both databases.

Each table's model lives beside the code that writes it, and each change to the schema is an
Alembic revision: a column or index added to one and not the other would surface only in
production (a NOT NULL the writer does not honour, an index a query relies on missing)."""

from __future__ import annotations

import importlib
import pkgutil

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import hashwatch.store
from hashwatch.store.database import Database
from hashwatch.store.models import Base


def _models() -> None:
    for module in pkgutil.iter_modules(hashwatch.store.__path__):
        importlib.import_module(f"hashwatch.store.{module.name}")


def test_migrations_build_exactly_the_models_schema(db_url: str) -> None:
    _models()
    db = Database.open(db_url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        db.dispose()
    assert differences == []
