"""One dihedral default everywhere: a rotated or mirrored copy of a known picture is found by
``hashwatch match`` and by ``POST /v1/match`` without asking, as ``scan`` always found it;
``--no-dihedral`` (and ``?dihedral=false``) switch it off. Pictures are generated benign ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.store.service import Role
from tests.media import jpeg_bytes, scene


@pytest.fixture
def known(tmp_path: Path) -> Iterator[tuple[Hashwatch, Path]]:
    """A database whose list ``known`` holds one picture, and a copy of it turned 90 degrees."""
    app = Hashwatch(Settings(f"sqlite:///{tmp_path / 'hw.sqlite3'}", tmp_path / "data"))
    original = tmp_path / "original.jpg"
    original.write_bytes(jpeg_bytes(scene(77)))
    app.add_media("known", [original], category="1")
    rotated = tmp_path / "evidence" / "turned.jpg"
    rotated.parent.mkdir()
    picture = scene(77).transpose(Image.Transpose.ROTATE_90)
    rotated.write_bytes(jpeg_bytes(picture))
    yield app, rotated
    app.close()


def _match_cli(app: Hashwatch, *args: str) -> list[dict[str, Any]]:
    from hashwatch.cli.main import app as cli

    data_dir = str(app.settings.data_dir)
    result = CliRunner().invoke(
        cli, ["--db", app.settings.database_url, "--data-dir", data_dir, "match", *args]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_match_finds_a_rotated_copy_without_flags(known: tuple[Hashwatch, Path]) -> None:
    app, rotated = known
    (line,) = _match_cli(app, str(rotated))
    (match,) = line["matches"]
    assert match["list"] == "known" and match["hash_type"] == "pdq"
    assert match["variant"] in ("rot90", "rot270")
    assert "pdq_dihedral" not in line  # the match names its variant; `hash --dihedral` lists all 8
    (plain,) = _match_cli(app, "--no-dihedral", str(rotated))
    assert plain["matches"] == []


def test_the_service_finds_a_rotated_copy_by_default(known: tuple[Hashwatch, Path]) -> None:
    from tests.serve_helpers import client, make_key

    app, rotated = known
    platform = make_key(app, Role.MATCHER, "platform")
    upload = {"file": ("turned.jpg", rotated.read_bytes())}
    with client(app) as c:
        answer = c.post("/v1/match", headers=platform, files=upload)
        assert answer.status_code == 200, answer.text
        (match,) = answer.json()["matches"]
        assert match["list"] == "known" and match["variant"] in ("rot90", "rot270")
        off = c.post("/v1/match?dihedral=false", headers=platform, files=upload)
        assert off.status_code == 200, off.text
        assert off.json()["matches"] == []
