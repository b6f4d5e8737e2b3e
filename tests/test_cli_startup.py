"""``hashwatch --help`` and ``hashwatch version`` answer at once: they load none of the heavy
libraries (numba, numpy, SQLAlchemy, Alembic, FastAPI, PyAV, Pillow). Checked by the modules
a fresh interpreter has imported, not by a clock; ``bench/bench_cli_startup.py`` times it."""

from __future__ import annotations

import json
import subprocess
import sys
import typing

import pytest

HEAVY = (
    "numba",
    "numpy",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "av",
    "PIL",
    "uvicorn",
    "psycopg",
    "ray",
)

PROBE = """
import json, runpy, sys
sys.argv = ["hashwatch", *json.loads(sys.argv[1])]
try:
    runpy.run_module("hashwatch", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted({name.split(".")[0] for name in sys.modules})
sys.stdout.write("\\nPROBE " + json.dumps({"code": code, "loaded": loaded}) + "\\n")
"""


def _loaded_after(*args: str) -> tuple[str, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out, _, probe = done.stdout.rpartition("\nPROBE ")
    result = json.loads(probe)
    assert result["code"] in (0, None), done.stderr
    return out, set(result["loaded"])


@pytest.mark.parametrize(
    "args",
    [("--help",), ("version",), ("scan", "--help"), ("lists", "--help"), ("keys", "--help")],
    ids=" ".join,
)
def test_help_and_version_load_no_heavy_library(args: tuple[str, ...]) -> None:
    out, loaded = _loaded_after(*args)
    assert out.strip(), "the command printed nothing"
    assert not loaded & set(HEAVY), f"hashwatch {' '.join(args)} imported {loaded & set(HEAVY)}"


def test_version_prints_the_package_version() -> None:
    import hashwatch

    out, _ = _loaded_after("version")
    assert out.strip() == hashwatch.__version__


def test_light_copies_of_choices_match_the_library() -> None:
    """The CLI spells some choices out to avoid importing their modules; they must agree."""
    from hashwatch.cli._common import SAMPLINGS
    from hashwatch.cli.service import RoleName
    from hashwatch.signals.video import SAMPLINGS as LIBRARY_SAMPLINGS
    from hashwatch.store.service import Role

    assert set(SAMPLINGS) == set(LIBRARY_SAMPLINGS)
    assert set(typing.get_args(RoleName)) == {role.value for role in Role}
