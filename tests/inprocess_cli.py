"""``hashwatch ...`` run in the test's own process, exactly as the console entry runs it.

A subprocess adds only interpreter start-up (``tests/test_cli_startup.py`` covers that), a
second or more a call on a loaded machine. These tests call the same entry point
(:func:`hashwatch.cli.main.main`: parsing, the command, errors as one line and an exit code),
with the environment pointing the database and data directory into the test's temporary
directory, ``sys.argv`` as the operating system would hand it over (the audit log records the
command line) and stdin, stdout and stderr captured.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hashwatch.cli.main import main

__all__ = ["CliResult", "Run", "run"]


@dataclass(frozen=True)
class CliResult:
    """What the command left: its exit code and what it wrote (as ``subprocess.run`` would)."""

    returncode: int
    stdout: str
    stderr: str


Run = Callable[..., CliResult]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("HASHWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HASHWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'hw.sqlite3'}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)

    def call(*args: str, stdin: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["hashwatch", *args])
        with CliRunner().isolation(input=stdin) as (out, err, _):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
        return CliResult(code, stdout, stderr)

    return call
