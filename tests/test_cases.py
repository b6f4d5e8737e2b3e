"""An examiner's story: a scan's case recorded in the database so that a team can review it.

A generated tree (a known picture, near-duplicate new pictures, a camera original, a new
picture inside a zip, a note) is scanned once; the case is imported into SQLite and
PostgreSQL, counted, imported again without change, refused when tampered with, and its
full-size media read back from the evidence without touching it. Every picture is a
generated benign scene.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashwatch.app import Hashwatch
from hashwatch.errors import CaseNotFoundError, CaseRefusedError
from hashwatch.store.audit import AuditTrail
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene
from tests.scanned_case import scan_case

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process

MEMBER = "inner/beach.png"
CASE_NUMBER = "2026-0107"


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed).save(buf, "PNG")
    return buf.getvalue()


def _evidence(root: Path) -> Path:
    (root / "DCIM").mkdir(parents=True)
    (root / "Downloads").mkdir()
    (root / "Downloads" / "known.jpg").write_bytes(jpeg_bytes(scene(0)))
    (root / "DCIM" / "new-a.jpg").write_bytes(jpeg_bytes(scene(60)))
    (root / "DCIM" / "new-a-small.jpg").write_bytes(jpeg_bytes(scene(60).resize((320, 240)), 70))
    (root / "DCIM" / "other.jpg").write_bytes(jpeg_bytes(scene(61)))
    with zipfile.ZipFile(root / "Downloads" / "bundle.zip", "w") as zf:
        zf.writestr(MEMBER, _png(62))
    (root / "notes.txt").write_text("a benign note\n")
    return root


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(evidence, case directory) of one scan, shared by the tests of this file."""
    yield scan_case(tmp_path_factory.mktemp("scanned"), _evidence, CASE_NUMBER, "known-pictures")


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_import_records_items_clusters_leads_and_thumbnails(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    evidence, case_dir = scanned
    results = _lines(case_dir / "results.jsonl")
    clusters = _lines(case_dir / "clusters.jsonl")
    assert len(clusters) == 3  # the two near-duplicates, the other picture, the zip member

    done = hw.cases.import_case(case_dir, actor="examiner-1")
    assert done.created and done.items == len(results) == 7  # 5 files, zip, its member
    assert done.clusters == 3 and done.thumbnails >= 5
    (listed,) = hw.cases.all()
    assert listed.case_number == CASE_NUMBER and listed.agency == "Benign County Police"
    assert listed.examiner == "A. Examiner" and listed.imported_by == "examiner-1"
    assert listed.consensus_k == 3 and listed.evidence[0]["path"] == str(evidence)

    status = hw.cases.status(CASE_NUMBER)  # by case number, or by the scan's case id
    assert status == hw.cases.status(listed.case_uid)
    assert status.items_by_review == {"pending": 7}
    assert status.clusters_by_review == {"pending": 3}
    assert status.items_by_scan_status == {"known": 1, "new": 4, "other": 2}

    items = hw.cases.items(CASE_NUMBER)
    assert [i.rank for i in items] == list(range(1, 8))
    first = items[0]
    assert first.cluster_number == 1 and first.reasons  # the first cluster's reasons, in words
    assert [i.scan_status for i in items[:5]] == ["new", "new", "new", "new", "known"]
    known = items[4]
    assert known.path.endswith("Downloads/known.jpg")
    assert known.matches[0]["list"] == "known-pictures"
    assert known.reasons == ["matches list known-pictures (category 1) by md5, pdq"]
    assert first.reasons == ["2 near-duplicates (similar pictures, not identical files)"]
    near = {i.path.rsplit("/", 1)[-1]: i.cluster_number for i in items}
    assert near["new-a.jpg"] == near["new-a-small.jpg"] != near["other.jpg"]
    thumb = hw.cases.thumbnail(first.id)
    assert thumb is not None and thumb[:3] == b"\xff\xd8\xff"  # a small JPEG
    assert hw.cases.thumbnail(items[-1].id) is None  # the note has none

    (event,) = AuditTrail(hw.db).events(action_prefix="case.")
    assert event.action == "case.import" and event.actor == "examiner-1"
    assert event.target == f"case:{listed.case_uid}"
    assert event.details["items"] == 7 and event.details["clusters"] == 3


def test_importing_the_same_case_again_changes_nothing(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    _, case_dir = scanned
    first = hw.cases.import_case(case_dir)
    again = hw.cases.import_case(case_dir)
    assert not again.created
    assert (again.case, again.items, again.clusters, again.thumbnails) == (
        first.case,
        first.items,
        first.clusters,
        first.thumbnails,
    )
    assert len(hw.cases.all()) == 1
    assert len(hw.cases.items(CASE_NUMBER)) == first.items
    assert len(AuditTrail(hw.db).events(action_prefix="case.")) == 1


def test_a_tampered_case_is_refused(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    _, case_dir = scanned
    copy = tmp_path / "copy"
    shutil.copytree(case_dir, copy)
    results = copy / "results.jsonl"
    results.write_text(results.read_text().replace('"new"', '"ignorable"', 1))
    with pytest.raises(CaseRefusedError, match=r"results.jsonl: modified"):
        sqlite_hw.cases.import_case(copy)
    (copy / "results.jsonl").unlink()
    with pytest.raises(CaseRefusedError, match=r"results.jsonl: missing"):
        sqlite_hw.cases.import_case(copy)
    assert sqlite_hw.cases.all() == []
    assert AuditTrail(sqlite_hw.db).events(action_prefix="case.") == []
    with pytest.raises(CaseNotFoundError):
        sqlite_hw.cases.status(CASE_NUMBER)


def _times(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_atime_ns, st.st_mtime_ns


def test_full_size_media_is_read_from_the_evidence_untouched(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    evidence, case_dir = scanned
    hw.cases.import_case(case_dir)
    by_name = {i.path.rsplit("/", 1)[-1]: i for i in hw.cases.items(CASE_NUMBER)}
    picture = evidence / "DCIM" / "new-a.jpg"
    archive = evidence / "Downloads" / "bundle.zip"
    expected = picture.read_bytes()  # before the times are set: this read moves atime
    old = 1_000_000_000
    for n, path in enumerate((picture, archive)):
        os.utime(path, ns=(old * 10**9, (old + 1000 + n) * 10**9))  # atime before mtime
    before = {p: _times(p) for p in (picture, archive)}

    plain = hw.cases.media(by_name["new-a.jpg"].id)
    assert plain.available and plain.data == expected
    member = by_name["beach.png"]
    assert member.path == f"{archive}!/{MEMBER}"
    read = hw.cases.media(member.id)
    assert read.available and read.data == _png(62)

    assert {p: _times(p) for p in (picture, archive)} == before


def test_evidence_that_is_gone_or_changed_is_not_available(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    evidence, case_dir = scanned
    sqlite_hw.cases.import_case(case_dir)
    by_name = {i.path.rsplit("/", 1)[-1]: i for i in sqlite_hw.cases.items(CASE_NUMBER)}
    picture = evidence / "DCIM" / "other.jpg"
    archive = evidence / "Downloads" / "bundle.zip"
    aside = evidence.parent / "aside"
    aside.mkdir(exist_ok=True)
    shutil.move(picture, aside / picture.name)
    shutil.move(archive, aside / archive.name)
    try:
        gone = sqlite_hw.cases.media(by_name["other.jpg"].id)
        assert not gone.available and gone.data is None
        assert (
            gone.reason == "not available: the evidence file is not reachable at its recorded path"
        )
        member = sqlite_hw.cases.media(by_name["beach.png"].id)
        assert not member.available and member.reason and "not available" in member.reason
        picture.write_bytes(jpeg_bytes(scene(99)))  # another picture at the same path
        changed = sqlite_hw.cases.media(by_name["other.jpg"].id)
        assert not changed.available
        assert (
            changed.reason == "not available: the evidence changed since the scan (SHA-256 differs)"
        )
        assert sqlite_hw.cases.thumbnail(by_name["other.jpg"].id)  # what a page shows instead
    finally:
        shutil.move(aside / picture.name, picture)
        shutil.move(aside / archive.name, archive)


def test_cli_scan_into_db_then_list_show_status(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    result = run("scan", str(ev), "-o", "case", "-j", "1", "--case-number", "C-9", "--into-db")
    assert result.returncode == 0, result.stderr
    case_uid = json.loads(result.stdout)["case"]
    assert "in the database: 7 items, 4 clusters" in result.stderr

    listed = run("cases", "list")
    assert [json.loads(line)["case_uid"] for line in listed.stdout.splitlines()] == [case_uid]
    status = run("cases", "status", "C-9")
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)
    assert counts["items_by_review"] == {"pending": 7}
    assert counts["clusters_by_review"] == {"pending": 4}
    assert counts["items_by_scan_status"] == {"new": 5, "other": 2}  # no list: nothing known
    assert "case C-9: 7 items (7 pending), 4 clusters (4 pending)" in status.stderr
    shown = json.loads(run("cases", "show", case_uid).stdout)
    assert shown["case"]["case_number"] == "C-9" and shown["thumbnails"] >= 5

    again = run("cases", "import", "case")
    assert again.returncode == 0 and "already in the database, unchanged" in again.stderr

    (tmp_path / "case" / "clusters.jsonl").write_text("")
    refused = run("cases", "import", "case")
    assert refused.returncode == 3
    assert "clusters.jsonl: modified" in refused.stderr and "hashwatch verify" in refused.stderr
    missing = run("cases", "status", "no-such-case")
    assert missing.returncode == 4 and "no case 'no-such-case'" in missing.stderr
