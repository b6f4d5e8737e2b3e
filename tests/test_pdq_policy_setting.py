"""HASHWATCH_PDQ_POLICY chooses the PDQ policy of ``hash`` and ``match`` when ``--pdq-policy`` is
not given; the option, when given, wins. Pictures are generated benign ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.inprocess_cli import Run, run
from tests.media import jpeg_bytes, scene

__all__ = ["run"]  # the in-process CLI fixture


def _rows(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(scene(21)))
    return path


def test_hash_uses_the_policy_from_the_environment(
    run: Run, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (row,) = _rows(run("hash", str(photo)).stdout)
    assert row["pdq_policy"] == "fast-3"
    monkeypatch.setenv("HASHWATCH_PDQ_POLICY", "reference")
    (row,) = _rows(run("hash", str(photo)).stdout)
    assert row["pdq_policy"] == "reference-1"
    (row,) = _rows(run("hash", "--pdq-policy", "fast", str(photo)).stdout)
    assert row["pdq_policy"] == "fast-3"  # the option wins over the environment


def test_match_uses_the_policy_from_the_environment(
    run: Run, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHWATCH_PDQ_POLICY", "reference")
    result = run("match", str(photo))
    assert result.returncode == 0, result.stderr
    (row,) = _rows(result.stdout)
    assert row["pdq_policy"] == "reference-1"


def test_an_unknown_policy_in_the_environment_is_a_clear_error(
    run: Run, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHWATCH_PDQ_POLICY", "fastest")
    result = run("hash", str(photo))
    assert result.returncode != 0
    assert "unknown PDQ policy 'fastest'" in result.stderr
