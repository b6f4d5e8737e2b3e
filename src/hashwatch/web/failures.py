"""Failures of the service translated to HTTP answers, and an outage logged once, not per request.

The library's errors become 4xx by class (:func:`status_of`). A database that does not answer
becomes 503 with ``Retry-After`` (:func:`database_failure`): the message never carries the
driver's text, which holds the SQL and its parameters — list hashes among them. A process
notes an outage in :class:`Outage`, which logs one line when it begins and one when it ends,
however many requests and background ticks fail in between.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import exc as sa_exc

from hashwatch.errors import (
    CaseNotFoundError,
    ConfigError,
    DatabaseConflictError,
    DatabaseValueError,
    DecodeError,
    EntryNotFoundError,
    HashwatchError,
    InvalidHashError,
    KeyNotFoundError,
    ListExistsError,
    ListFormatError,
    ListNotFoundError,
    ReviewConflictError,
    WebhookNotFoundError,
)

__all__ = [
    "DatabaseFailure",
    "Outage",
    "Retry",
    "database_failure",
    "is_database_error",
    "status_of",
]

log = logging.getLogger("hashwatch.web")

# HashwatchError subclasses -> HTTP status; the first match in order wins.
_STATUS: tuple[tuple[type[HashwatchError], int], ...] = (
    (InvalidHashError, 422),
    (ListFormatError, 422),
    (DecodeError, 422),
    (ListNotFoundError, 404),
    (CaseNotFoundError, 404),
    (ReviewConflictError, 409),
    (EntryNotFoundError, 404),
    (KeyNotFoundError, 404),
    (WebhookNotFoundError, 404),
    (ListExistsError, 409),
    (DatabaseValueError, 422),
    (DatabaseConflictError, 409),
    (ConfigError, 400),
)


def status_of(exc: HashwatchError) -> int:
    """The HTTP status of a library error (400 for any class not named above)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400


@dataclass(frozen=True)
class DatabaseFailure:
    """What a client is told about a database error: status, a fixed message, and whether the
    database itself is unavailable (an outage) rather than refusing this one request."""

    status: int
    message: str
    outage: bool


def is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, sa_exc.DBAPIError | sa_exc.TimeoutError)


def database_failure(exc: BaseException) -> DatabaseFailure:
    """The answer to a SQLAlchemy error. Values too long or malformed for a column are the
    request's fault (422), a conflicting concurrent write is 409; everything else — no
    connection, a dropped connection, an exhausted pool — is an outage (503)."""
    if isinstance(exc, sa_exc.DataError):
        return DatabaseFailure(422, "a value is too long or malformed for the database", False)
    if isinstance(exc, sa_exc.IntegrityError):
        return DatabaseFailure(409, "the change conflicts with an existing record", False)
    return DatabaseFailure(503, "the database is unavailable; try again shortly", True)


def _describe(exc: BaseException) -> str:
    """A short, parameter-free description: the exception classes only (a driver's message
    can quote the statement's parameters)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    # The driver's class, named with its package: "sqlite3.OperationalError".
    package = type(orig).__module__.split(".")[0]
    name = type(orig).__name__
    return name if package == "builtins" else f"{package}.{name}"


class Outage:
    """The database's state as this process sees it: one warning when an outage begins, one
    info line when it ends, nothing in between."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger
        self._lock = threading.Lock()
        self._down_since: str | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = where
        self._log.warning("database unavailable (%s, seen by %s)", _describe(exc), where)

    def recovered(self, where: str) -> None:
        with self._lock:
            if self._down_since is None:
                return
            self._down_since = None
        self._log.warning("database reachable again (seen by %s)", where)


class Retry:
    """The pace of a background job that fails: each failure doubles the wait (from
    ``interval`` up to ``max_backoff_s``, or the interval if longer) until a run succeeds. A
    database outage goes to ``outage`` (one line per outage); any other failure is logged with
    its stack trace once per streak of failures, and the end of a streak once."""

    def __init__(
        self, name: str, interval: float, outage: Outage, max_backoff_s: float = 60.0
    ) -> None:
        self.name = name
        self.interval = interval
        self.outage = outage
        self.cap = max(max_backoff_s, interval)
        self.delay = interval
        self.failing = False

    def failed(self, exc: Exception) -> float:
        """Note a failure; returns the seconds to wait before the next run."""
        if is_database_error(exc):
            self.outage.failed(exc, f"background job {self.name}")
        elif not self.failing:
            log.error("background job %s failed; retrying with backoff", self.name, exc_info=exc)
        self.failing = True
        self.delay = min(self.delay * 2, self.cap)
        return self.delay

    def succeeded(self) -> float:
        """Note a successful run; returns the seconds to wait before the next run."""
        self.outage.recovered(f"background job {self.name}")
        if self.failing:
            log.info("background job %s runs again", self.name)
        self.failing = False
        self.delay = self.interval
        return self.delay
