"""``hashwatch scan --no-thumbnails``: a faster first pass that finds the same things.

The same generated benign evidence (pictures, a near-copy, a zip of pictures, one picture on
a known list) is scanned with and without thumbnails through the CLI: every record (status,
digests, PDQ hashes and their dihedral variants, matches, clusters) is the same, only the
thumbnails are missing, and report.html says they were not made rather than left out. A
scan begun without thumbnails and resumed goes on without them.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.scan.state import ScanState
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene
from tests.scan_helpers import InterruptAtFile

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process

NOT_MADE = "Thumbnails were not made in this scan"


def _evidence(root: Path) -> Path:
    root.mkdir()
    for seed in range(4):
        (root / f"photo-{seed}.jpg").write_bytes(jpeg_bytes(scene(90 + seed)))
    (root / "photo-1-copy.jpg").write_bytes(jpeg_bytes(scene(91), quality=60))  # a near-copy
    with zipfile.ZipFile(root / "album.zip", "w") as archive:
        archive.writestr("trip/lake.jpg", jpeg_bytes(scene(95)))
        archive.writestr("trip/road.jpg", jpeg_bytes(scene(96)))
    (root / "note.txt").write_text("a benign note\n")
    return root


def _known_list(run: Run, picture: Path) -> None:
    """A known list holding one of the pictures by MD5, category 1."""
    md5 = hashlib.md5(picture.read_bytes()).hexdigest()
    Path("known.csv").write_text(f"md5,category\n{md5},1\n")
    imported = run("lists", "import", "known.csv", "--name", "reference", "--kind", "known")
    assert imported.returncode == 0, imported.stderr


def _records(case: Path) -> dict[str, dict[str, Any]]:
    lines = (case / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["path"]: row for row in map(json.loads, lines)}


def _settings(case: Path) -> dict[str, Any]:
    settings: dict[str, Any] = json.loads((case / "manifest.json").read_text())["settings"]
    return settings


def test_a_scan_without_thumbnails_finds_the_same_and_says_none_were_made(
    run: Run, tmp_path: Path
) -> None:
    evidence = _evidence(tmp_path / "seized")
    _known_list(run, evidence / "photo-0.jpg")
    for case, flags in (("with", ()), ("without", ("--no-thumbnails",))):
        scanned = run("scan", str(evidence), "-o", case, "-j", "1", *flags)
        assert scanned.returncode == 0, scanned.stderr

    with_thumbs, without = _records(Path("with")), _records(Path("without"))
    assert with_thumbs == without
    statuses = {Path(p).name: r["status"] for p, r in without.items()}
    assert statuses["photo-0.jpg"] == "known" and statuses["lake.jpg"] == "new"
    copy, original = without[f"{evidence}/photo-1-copy.jpg"], without[f"{evidence}/photo-1.jpg"]
    assert copy["cluster"] is not None and copy["cluster"] == original["cluster"]
    assert len(without[f"{evidence}/album.zip!/trip/road.jpg"]["pdq_dihedral"]) == 8
    assert (Path("with") / "clusters.jsonl").read_bytes() == (
        Path("without") / "clusters.jsonl"
    ).read_bytes()

    made = (Path("with") / "thumbnails.jsonl").read_text().splitlines()
    assert len(made) == 7  # every picture, the zip's members included
    assert (Path("without") / "thumbnails.jsonl").read_bytes() == b""
    assert _settings(Path("with"))["thumbnails"] is True
    assert _settings(Path("without"))["thumbnails"] is False

    page = (Path("without") / "report.html").read_text(encoding="utf-8")
    assert NOT_MADE in page and "hashwatch cases import" in page
    assert "data:image/jpeg;base64," not in page
    assert "the page holds at most" not in page  # not worded as a cap
    assert NOT_MADE not in (Path("with") / "report.html").read_text(encoding="utf-8")

    checked = run("verify", "without")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _stopped_scan(tmp_path: Path, *, thumbnails: bool) -> Path:
    """The evidence, its scan into ``tmp_path / "case"`` stopped after the first file (as
    a kill would stop it), ready for ``--resume``."""
    evidence = _evidence(tmp_path / "seized")
    app = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "data")
    )
    try:
        with pytest.raises(KeyboardInterrupt):
            app.scan(
                [evidence],
                tmp_path / "case",
                workers=1,
                unit_files=1,
                thumbnails=thumbnails,
                progress=InterruptAtFile(),
            )
    finally:
        app.close()
    return evidence


def test_a_resumed_scan_without_thumbnails_stays_without(run: Run, tmp_path: Path) -> None:
    evidence = _stopped_scan(tmp_path, thumbnails=False)
    assert (tmp_path / "case" / "scan-state.sqlite3").exists()

    resumed = run("scan", str(evidence), "-o", "case", "-j", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert len(_records(Path("case"))) == 9  # 5 pictures, the zip and its 2 members, the note
    assert (Path("case") / "thumbnails.jsonl").read_bytes() == b""
    assert _settings(Path("case"))["thumbnails"] is False
    assert NOT_MADE in (Path("case") / "report.html").read_text(encoding="utf-8")


def test_a_scan_begun_before_the_setting_was_recorded_resumes_with_thumbnails(
    run: Run, tmp_path: Path
) -> None:
    """A scan begun by a version that always made thumbnails (its state's settings have no
    ``thumbnails``) goes on making them, whatever the resuming command says."""
    evidence = _stopped_scan(tmp_path, thumbnails=True)
    state = ScanState(tmp_path / "case")
    try:
        older = dict(state.get_meta("settings"))
        del older["thumbnails"]
        state.set_meta("settings", older)
    finally:
        state.close()

    resumed = run("scan", str(evidence), "-o", "case", "-j", "1", "--resume", "--no-thumbnails")
    assert resumed.returncode == 0, resumed.stderr
    thumbnails = (Path("case") / "thumbnails.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(thumbnails) == 7  # the 5 pictures and the zip's 2 members
    assert NOT_MADE not in (Path("case") / "report.html").read_text(encoding="utf-8")
