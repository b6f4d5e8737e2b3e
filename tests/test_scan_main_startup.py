"""A scan's fixed start costs: a database already at the newest schema is opened without
loading Alembic (its modules, Mako, Pygments and every migration module cost ~0.2 s of CPU
a command), and one behind it is still migrated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from hashwatch.store.database import Database, _alembic_config, head_revision


def test_the_head_read_from_the_version_files_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_an_up_to_date_database_opens_without_loading_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hw.sqlite3'}"
    Database.open(url).dispose()  # the first command creates the schema (with Alembic)
    probe = (
        "import sys\n"
        "from hashwatch.store.database import Database\n"
        f"db = Database.open({url!r})\n"
        "print(db.instance_id, sorted({m.split('.')[0] for m in sys.modules} & "
        "{'alembic', 'mako', 'pygments'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(out[0]) != 0
    assert out[1:] == ["[]"]


def test_a_database_behind_the_newest_schema_is_still_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hw.sqlite3'}"
    older = Database(url)
    with older.engine.begin() as conn:  # a database made by the release before the newest
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head-1")
    with older.engine.connect() as conn:
        before = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    older.dispose()
    assert before != head_revision()

    db = Database.open(url)
    try:
        with db.engine.connect() as conn:
            after = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        db.dispose()
    assert after == head_revision()
