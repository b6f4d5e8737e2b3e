"""``hashwatch ...`` run in the test's own process, as the user types it.

A subprocess adds only interpreter start-up (``tests/test_cli_startup.py`` covers that):
these tests call the same Typer app the console entry runs, with the same environment
(database and data directory in the test's temporary directory) and ``sys.argv`` as the
operating system would hand it over (the audit log records the command line).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hashwatch.cli.main import app
from hashwatch.errors import HashwatchError

__all__ = ["CliResult", "Run", "run"]


class CliResult:
    """Exit code (a :class:`HashwatchError` as its exit code), stdout, stderr, exception."""

    def __init__(self, code: int, stdout: str, stderr: str, exc: BaseException | None) -> None:
        self.code, self.stdout, self.stderr, self.exception = code, stdout, stderr, exc


Run = Callable[..., CliResult]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("HASHWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HASHWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'hw.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)

    def call(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["hashwatch", *args])
        result = CliRunner().invoke(app, list(args), prog_name="hashwatch")
        code = result.exit_code
        if isinstance(result.exception, HashwatchError):
            code = result.exception.exit_code
        elif result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(code, result.stdout, result.stderr, result.exception)

    return call
