"""The documentation is checked like code: generated parts are current, promises hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_generated_from_current_help() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"], cwd=ROOT
    )
    assert result.returncode == 0, "docs/cli.md is stale: run scripts/gen_cli_docs.py"


def test_readme_opens_with_the_two_commands() -> None:
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    commands = [line.split("#")[0].strip() for line in lines[:6] if line.startswith("make ")]
    assert commands == ["make demo", "make test"]


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_documented_file_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in (
        "signals.md",
        "lists.md",
        "matching.md",
        "scan.md",
        "serve.md",
        "streams.md",
        "benchmarks.md",
        "cli.md",
    ):
        assert f"docs/{name}" in readme
        assert (ROOT / "docs" / name).exists(), name
