"""The database: one engine, migrations on open, and the change sequence.

SQLite (the default, one workstation) and PostgreSQL (server mode, several replicas) run the
same code. Every write transaction takes the next value of the change sequence by updating one
row; on PostgreSQL that row lock also serialises writers, so sequence order is commit order and
an index that has applied every change up to N can catch up with ``change_seq > N`` alone.

Writers that read before they write (a list's next version, "does this list exist?") open
their transaction with :meth:`Database.write`: on SQLite ``BEGIN IMMEDIATE`` takes the write
lock before the first read, on PostgreSQL a transaction-level advisory lock on the name they
write serialises them. Database errors leave here as :class:`~hashwatch.errors.HashwatchError`
without the statement's parameters (they may hold hash values): the engine is created with
``hide_parameters=True`` and the messages keep only the driver's first line.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from hashwatch.errors import (
    ConfigError,
    DatabaseConflictError,
    DatabaseValueError,
    HashwatchError,
)
from hashwatch.store.models import Meta

T = TypeVar("T")

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Database", "DurableWriter", "dbapi_call"]

_MIGRATIONS = Path(__file__).with_name("migrations")
# A version file's own lines, as Alembic's template writes them (with or without a type).
_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*["']([^"']+)["']\s*$""", re.M)
_DOWN_REVISION = re.compile(
    r"""^down_revision(?:\s*:[^=]+)?\s*=\s*(?:["']([^"']+)["']|(None))\s*$""", re.M
)


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration's revision, read from the version files' ``revision`` and
    ``down_revision`` lines without loading Alembic (~0.2 s of CPU a command: its modules,
    Mako, Pygments, and every migration module). None when the files are not one plain
    chain that these lines describe (a merge, a branch, a computed value): Alembic decides
    then. ``tests/test_scan_main_startup.py`` checks it against Alembic's own head."""
    revisions: dict[str, str | None] = {}
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.findall(source)
        down = _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1 or revision[0] in revisions:
            return None
        revisions[revision[0]] = down[0][0] or None
    parents = set(revisions.values())
    heads = [r for r in revisions if r not in parents]
    roots = [r for r, down in revisions.items() if down is None]
    if len(heads) != 1 or len(roots) != 1 or not parents - {None} <= revisions.keys():
        return None
    return heads[0]


def _stored_revisions(conn: Connection) -> list[str]:
    """The revisions the database says it is at (Alembic's version table; none if absent)."""
    if not inspect(conn).has_table("alembic_version"):
        return []
    return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


class Database:
    """A hashwatch database at ``url``; ``open`` brings its schema up to date."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Parameters are list data (hash values): never in an exception's text or a log line.
        kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 60}
            path = url.split(":///", 1)[-1].split("?", 1)[0] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        self.instance_id = 0
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @classmethod
    def open(cls, url: str) -> Database:
        db = cls(url)
        db.upgrade()
        return db

    def upgrade(self) -> None:
        """Apply Alembic migrations up to head (a no-op when already there).

        A database already at the head revision (every command but the first) is told from
        the version table and the version files' lines alone; Alembic is loaded only to
        migrate, or when those lines do not name one head."""
        try:
            with self.engine.connect() as conn:
                stored = _stored_revisions(conn)
        except OperationalError as exc:
            raise ConfigError(f"cannot open database {self.safe_url}: {exc.orig}") from exc
        head = head_revision()
        if head is None or stored != [head]:
            self._upgrade_with_alembic()
        self.instance_id = self._ensure_instance_id()

    def _upgrade_with_alembic(self) -> None:
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        try:
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except OperationalError as exc:
            raise ConfigError(f"cannot open database {self.safe_url}: {exc.orig}") from exc
        if current != head:
            with self.engine.begin() as conn:
                cfg = _alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")

    def _ensure_instance_id(self) -> int:
        """A random number naming this database, so an index file built from another
        database (or an earlier one at the same path) is never mistaken for ours."""
        with self.engine.begin() as conn:
            value = conn.execute(select(Meta.value).where(Meta.key == "instance_id")).scalar()
            if value is None:
                value = secrets.randbits(62)
                conn.execute(insert(Meta).values(key="instance_id", value=value))
            return int(value)

    @property
    def safe_url(self) -> str:
        """The URL without a password, for messages and logs."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def begin(self, *, durable: bool = False) -> Iterator[Connection]:
        """A connection in one transaction: committed on success, rolled back on any error.

        SQLite commits in WAL mode with ``synchronous=NORMAL``: a commit survives a crash of
        the process but the last ones may be lost to a power cut or a crash of the system.
        ``durable``: this commit survives those too before ``begin`` returns (SQLite syncs
        its write-ahead log at this commit, ``synchronous=FULL`` for this transaction only;
        PostgreSQL's commits are durable already)."""
        if not (durable and self.is_sqlite):
            with _mapped_errors(), self.engine.begin() as conn:
                yield conn
            return
        with _mapped_errors(), self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            # Outside any transaction (the driver begins one at the first write), so the
            # setting holds for this commit; the pooled connection gets NORMAL back after.
            raw.execute("PRAGMA synchronous=FULL")
            try:
                with conn.begin():
                    yield conn
            finally:
                try:
                    raw.execute("PRAGMA synchronous=NORMAL")
                except Exception:  # never back in the pool with FULL
                    conn.invalidate()

    def durable_writer(self) -> DurableWriter:
        """Durable transactions for one writer at a time (the match recorder's flush) on a
        connection of their own: see :class:`DurableWriter`."""
        return DurableWriter(self)

    @contextmanager
    def write(self, lock: str | None = None) -> Iterator[Connection]:
        """A write transaction that holds the writer's lock *before* its first read.

        SQLite: ``BEGIN IMMEDIATE`` (one writer at a time; others wait up to the busy
        timeout). PostgreSQL: ``pg_advisory_xact_lock`` on ``lock`` (e.g. ``"list:NAME"``),
        so writers of one name run one after the other and each reads what the previous one
        committed; writers of other names are not held up.
        """
        with _mapped_errors(), self.engine.begin() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif lock is not None:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(lock)})
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def next_change_seq(self, conn: Connection) -> int:
        """Take the next change number inside ``conn``'s transaction."""
        conn.execute(update(Meta).where(Meta.key == "change_seq").values(value=Meta.value + 1))
        value = conn.execute(select(Meta.value).where(Meta.key == "change_seq")).scalar_one()
        return int(value)

    def change_seq(self) -> int:
        return self.meta_value("change_seq")

    def meta_value(self, key: str) -> int:
        with self.read() as conn:
            value = conn.execute(select(Meta.value).where(Meta.key == key)).scalar()
        return int(value or 0)

    def bump_index_epoch(self, conn: Connection) -> None:
        """Tell every PDQ index to rebuild: rows were deleted, which no watermark can show."""
        updated = conn.execute(
            update(Meta).where(Meta.key == "index_epoch").values(value=Meta.value + 1)
        ).rowcount
        if not updated:
            conn.execute(insert(Meta).values(key="index_epoch", value=1))

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))


class DurableWriter:
    """``begin(durable=True)`` for a writer that never runs two transactions at once (the
    match recorder: its group commit flushes one batch at a time), on a connection kept for it.

    SQLite (a file): the connection is taken from the pool at the first transaction and kept,
    ``synchronous=FULL`` set on it once, so each commit syncs the write-ahead log as
    :meth:`Database.begin` does with ``durable=True``, without a pool checkout and check-in
    (a rollback) and two PRAGMAs a transaction. After any error in a transaction (rolled
    back) the connection is closed, never returned to the pool at FULL, and the next
    transaction opens a new one; :meth:`close` closes it too. Other databases (PostgreSQL,
    whose commits are durable already and whose pool checks a connection before lending it;
    an in-memory SQLite, one database a thread) use :meth:`Database.begin`.

    Not for concurrent use: the caller runs one transaction at a time (any thread)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        path = db.engine.url.database or ""
        self._own = db.is_sqlite and path not in ("", ":memory:") and "mode=memory" not in path
        self._conn: Connection | None = None
        self._closed = False
        self.opened = 0  # connections opened (for tests)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A durable transaction: committed (and synced) on success, rolled back on error."""
        if not self._own or self._closed:
            with self.db.begin(durable=True) as conn:
                yield conn
            return
        conn = self._conn if self._conn is not None else self._open()
        done = False
        try:
            with _mapped_errors(), conn.begin():
                yield conn
            done = True
        finally:
            if not done:
                self._drop()

    def close(self) -> None:
        """Close the kept connection; later transactions use :meth:`Database.begin`."""
        self._closed = True
        self._drop()

    def _open(self) -> Connection:
        conn = self.db.engine.connect()
        try:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA synchronous=FULL")  # outside a transaction: holds from now on
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        self._conn = conn
        self.opened += 1
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.invalidate()  # its DBAPI connection closed: never back in the pool at FULL
        finally:
            conn.close()


def _lock_key(name: str) -> int:
    """A stable signed 64-bit number for an advisory lock name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """Database errors as hashwatch errors naming the table, column or constraint and no
    values (PostgreSQL's DETAIL line of a unique violation quotes the key: left out)."""
    try:
        yield
    except HashwatchError:
        raise
    except (DataError, IntegrityError) as exc:
        where = _where(exc.orig)
        if isinstance(exc, DataError):
            raise DatabaseValueError(
                f"the database refused the change: a value does not fit its column{where}"
            ) from None
        raise DatabaseConflictError(
            f"the database refused the change: a constraint failed{where}"
        ) from None


def _where(orig: Any) -> str:
    """Which table, column or constraint an error names, never a value: PostgreSQL's
    structured fields (its message text can quote the value), SQLite's message (which names
    only columns)."""
    diag = getattr(orig, "diag", None)
    if diag is not None:
        names = [diag.table_name, diag.column_name, diag.constraint_name]
        found = [str(n) for n in names if n]
        return f" ({', '.join(found)})" if found else ""
    text = str(orig).strip()
    return f" ({text.splitlines()[0]})" if text else ""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def dbapi_call(
    conn: Connection, sql: str, params: Any, call: Callable[[Any], T], *, many: bool = False
) -> T:
    """``call(cursor)`` on ``conn``'s DBAPI connection, inside its transaction, for the few hot
    statements that cannot afford SQLAlchemy's execution context (~0.1-0.2 ms of CPU each):
    the engine's cursor events fire around it as for a statement executed through ``conn``
    (listeners that watch statements still see it), a driver error leaves as SQLAlchemy's
    (``DBAPIError`` and its kinds, parameters hidden), and a dropped connection is
    invalidated. ``sql`` and ``params`` are what ``call`` executes (for the events and the
    error)."""
    dialect = conn.dialect
    dbapi_conn = conn.connection
    cursor = None
    try:
        cursor = dbapi_conn.cursor()
        if conn.dispatch.before_cursor_execute:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
        result = call(cursor)
        if conn.dispatch.after_cursor_execute:
            conn.dispatch.after_cursor_execute(conn, cursor, sql, params, None, many)
        return result
    except dialect.loaded_dbapi.Error as exc:
        gone = dialect.is_disconnect(exc, dbapi_conn, cursor)
        if gone:
            conn.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=gone,
            dialect=dialect,
        ) from exc
    finally:
        if cursor is not None:
            cursor.close()
