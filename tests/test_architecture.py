"""Imports flow one way, and every module's public names exist."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import hashwatch

SRC = Path(hashwatch.__file__).parent

# What each stage may import from hashwatch (besides itself). Lower stages never import higher.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "config": {"errors"},
    "signals": {"errors", "config", "__init__"},
    "index": {"errors"},
    "lists": {"errors", "signals"},
    "runner": {"errors"},
    "store": {"errors", "config", "signals", "lists", "index", "runner", "__init__"},
    "matching": {"errors", "config", "signals", "lists", "index", "store"},
    "audit": {"errors"},
    # scan and report hold typed matches (hashwatch.matching.match: no database; SQLAlchemy
    # stays forbidden to them below).
    "scan": {"errors", "config", "signals", "lists", "index", "matching"},
    "report": {"errors", "config", "signals", "lists", "scan", "audit", "matching", "__init__"},
    # Live-stream watching: readers, k-of-n alerts and their delivery, under the CLI.
    "stream": {
        "errors",
        "config",
        "signals",
        "lists",
        "index",
        "store",
        "matching",
        "audit",
    },
    # Review (cases, votes, consensus) beside stream: the scan's outputs in the database.
    "review": {
        "errors",
        "config",
        "signals",
        "lists",
        "index",
        "store",
        "matching",
        "scan",
        "report",
        "audit",
        "runner",
    },
    # Sharing with other organisations: feeds, peers, adapters (beside review and stream).
    "exchange": {
        "errors",
        "config",
        "signals",
        "lists",
        "index",
        "store",
        "matching",
        "audit",
        "runner",
    },
    # Payment screening: a stage of its own beside scan and review; its decisions log is an
    # audit chain; alerts.csv neutralises formula cells as list files do (lists). Nothing from
    # scan, review, web or the CLI.
    "payments": {"errors", "audit", "lists", "__init__"},
    # The HTTP service sits on top of the library, below nothing but the CLI.
    "web": {
        "errors",
        "config",
        "signals",
        "lists",
        "index",
        "store",
        "matching",
        "audit",
        "app",
        "runner",
        "triage",
        "review",
        "exchange",
        "__init__",
    },
}
FORBIDDEN_THIRD_PARTY = {
    "signals": {"sqlalchemy", "fastapi", "typer", "alembic"},
    "index": {"sqlalchemy", "fastapi", "typer", "alembic"},
    "lists": {"sqlalchemy", "fastapi", "typer", "alembic"},
    "scan": {"sqlalchemy", "fastapi", "typer", "alembic"},
    "report": {"sqlalchemy", "fastapi", "typer", "alembic"},
    "audit": {"sqlalchemy", "fastapi", "typer", "alembic"},
    "stream": {"fastapi", "typer"},
    "exchange": {"fastapi", "typer"},
    "payments": {"sqlalchemy", "fastapi", "typer", "alembic"},
}


def _stage(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_flow_one_way(path: Path) -> None:
    stage = _stage(path)
    if stage not in ALLOWED:
        return  # app, triage, cli, demo sit on top and may import everything below
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "hashwatch":
            parts = name.split(".")
            target = parts[1] if len(parts) > 1 else "__init__"
            assert target == stage or target in ALLOWED[stage], f"{path.name} imports {name}"
            if stage in ("scan", "report") and target == "matching":  # not the matcher
                assert name == "hashwatch.matching.match", f"{path.name} imports {name}"
        assert top not in FORBIDDEN_THIRD_PARTY.get(stage, set()), f"{path.name} imports {name}"


def test_cli_is_the_top_layer() -> None:
    """Nothing imports the CLI but its entry; command modules share only ``cli._common``."""
    for path in MODULES:
        stage = _stage(path)
        for name in _imports(path):
            if not name.startswith("hashwatch.cli"):
                continue
            assert stage in {"cli", "_entry"}, f"{path.relative_to(SRC)} imports {name}"
            if stage == "cli" and path.name not in {"main.py", "__init__.py"}:
                assert name == "hashwatch.cli._common", f"{path.relative_to(SRC)} imports {name}"


def test_cli_modules_use_no_private_names_of_others() -> None:
    for path in sorted((SRC / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hashwatch."):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"cli/{path.name}: {node.module} {private}"


def test_no_formatter_escapes_in_src() -> None:
    """Modules stay small by being split by what belongs together, never by hand-packed lines
    the formatter is told to leave alone."""
    marker = "fmt: " + "skip"
    for path in sorted(SRC.rglob("*.py")):
        assert marker not in path.read_text(), f"{path.relative_to(SRC)} uses {marker}"


def test_modules_stay_small() -> None:
    for path in MODULES:
        lines = len(path.read_text().splitlines())
        assert lines <= 650, f"{path.relative_to(SRC)} has {lines} lines: split it"


def test_public_names_exist() -> None:
    for info in pkgutil.walk_packages([str(SRC)], prefix="hashwatch."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{info.name}.__all__ names missing {name}"
