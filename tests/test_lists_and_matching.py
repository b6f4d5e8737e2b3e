"""A curator's and an examiner's story: import lists, re-import, revoke, match.

Every "known" file here is a generated benign picture standing in for known material.
Each test runs against SQLite and against the real PostgreSQL server.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
from PIL import ImageOps

from hashwatch.app import Hashwatch
from hashwatch.errors import EntryNotFoundError, ListFormatError
from hashwatch.lists.model import EntryStatus, ListKind
from hashwatch.matching.matcher import Signal
from hashwatch.signals.types import HashType
from tests.media import scene, write_image


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def benign_rows(n: int, *, start: int = 0) -> list[dict[str, str]]:
    return [
        {
            "md5": md5(f"benign-{i}".encode()),
            "category": str(1 + i % 3),
            "series": f"s{i % 4}",
            "comment": f"stand-in {i}",
        }
        for i in range(start, start + n)
    ]


def test_import_reimport_update_and_withdraw(hw: Hashwatch, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "list-v1.csv", benign_rows(50))
    report = hw.lists.import_file("agency", first, source_org="Agency A")
    assert (report.version, report.added, report.records) == (1, 50, 50)
    info = hw.lists.get("agency")
    assert info.kind is ListKind.KNOWN and info.version == 1 and info.counts == {"active": 50}
    assert info.source_org == "Agency A"

    again = hw.lists.import_file("agency", first)
    assert not again.changed and again.version == 1 and again.unchanged == 50
    assert hw.lists.get("agency").version == 1

    rows = benign_rows(50)
    del rows[0]  # the source withdrew one
    rows[1]["category"] = "5"  # and recategorised one
    rows += benign_rows(2, start=100)  # and added two
    second = write_csv(tmp_path / "list-v2.csv", rows)
    report = hw.lists.import_file("agency", second)
    assert (report.version, report.added, report.updated, report.withdrawn) == (2, 2, 1, 1)
    assert hw.lists.get("agency").counts == {"active": 51, "withdrawn": 1}
    gone = hw.matcher().match([Signal(HashType.MD5, md5(b"benign-0"))])
    assert gone.matches == []
    changed = hw.matcher().match([Signal(HashType.MD5, md5(b"benign-2"))])
    assert [(m.list, m.category, m.list_version) for m in changed.matches] == [("agency", "5", 2)]
    history = hw.lists.imports("agency")
    assert [h["version"] for h in history] == [2, 1]
    assert history[0]["file_name"] == "list-v2.csv" and history[0]["withdrawn"] == 1


def test_failed_import_leaves_previous_version_intact(hw: Hashwatch, tmp_path: Path) -> None:
    hw.lists.import_file("agency", write_csv(tmp_path / "good.csv", benign_rows(10)))
    bad = tmp_path / "bad.csv"
    rows = benign_rows(3000)
    rows[2500]["md5"] = "not-a-hash"
    write_csv(bad, rows)
    with pytest.raises(ListFormatError) as caught:
        hw.lists.import_file("agency", bad)
    assert "line 2502" in str(caught.value)  # header is line 1
    info = hw.lists.get("agency")
    assert info.version == 1 and info.counts == {"active": 10}
    assert hw.matcher().match([Signal(HashType.MD5, md5(b"benign-3"))]).matches


def test_revoke_keeps_record_stops_matching_and_survives_reimport(
    hw: Hashwatch, tmp_path: Path
) -> None:
    listing = write_csv(tmp_path / "l.csv", benign_rows(5))
    hw.lists.import_file("agency", listing)
    target = md5(b"benign-1")
    changes = hw.lists.set_status(
        "agency",
        [(HashType.MD5, target.upper())],
        status=EntryStatus.REVOKED,
        actor="examiner-7",
        reason="false positive confirmed",
    )
    assert [c.new_status for c in changes] == ["revoked"]
    assert hw.matcher().match([Signal(HashType.MD5, target)]).matches == []
    assert hw.lists.get("agency").counts == {"active": 4, "revoked": 1}
    events = hw.lists.events("agency", changes[0].entry_id)
    assert (
        events[-1]["actor"] == "examiner-7" and events[-1]["reason"] == "false positive confirmed"
    )
    # The source still lists it: the curator's decision stands.
    edited = benign_rows(5)
    edited[0]["comment"] = "edited upstream"
    hw.lists.import_file("agency", write_csv(tmp_path / "l2.csv", edited))
    assert hw.matcher().match([Signal(HashType.MD5, target)]).matches == []
    with pytest.raises(EntryNotFoundError):
        hw.lists.set_status("agency", [(HashType.MD5, md5(b"never listed"))])
    hw.lists.set_status("agency", [(HashType.MD5, target)], status=EntryStatus.ACTIVE)
    assert hw.matcher().match([Signal(HashType.MD5, target)]).matches


def _known_pictures(tmp_path: Path) -> tuple[list[Path], Path]:
    originals = [write_image(tmp_path / "ref" / f"ref-{i}.jpg", scene(i)) for i in range(3)]
    return originals, tmp_path / "ref"


def _pdq_list(hw: Hashwatch, paths: list[Path], out: Path) -> Path:
    rows = []
    for fs in hw.hash_paths(paths):
        assert fs.pdq is not None and fs.digests is not None
        rows.append({"pdq": fs.pdq.hash, "md5": fs.digests.md5, "category": "1"})
    return write_csv(out, rows)


def test_near_duplicates_match_by_pdq_within_the_list_threshold(
    hw: Hashwatch, tmp_path: Path
) -> None:
    originals, _ = _known_pictures(tmp_path)
    hw.lists.import_file("pictures", _pdq_list(hw, originals, tmp_path / "pdq.csv"))
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    scene(0).resize((320, 240)).save(evidence / "small.jpg", "JPEG", quality=60)
    write_image(evidence / "unrelated.png", scene(99), "PNG")
    ImageOps.mirror(scene(1)).save(evidence / "mirrored.jpg", "JPEG", quality=90)
    (evidence / "copy.dll").write_bytes(originals[2].read_bytes())  # renamed exact copy

    results = {Path(r.signals.path).name: r for r in hw.match_paths([evidence], hw.matcher())}
    small = results["small.jpg"].result.matches
    assert [m.hash_type for m in small] == ["pdq"] and 0 < small[0].distance <= 31
    assert results["unrelated.png"].result.matches == []
    # Dihedral matching is on by default: a mirrored copy is found, and says how it turned.
    (mirrored,) = results["mirrored.jpg"].result.matches
    assert mirrored.variant is not None and mirrored.distance <= 31
    copy = {m.hash_type for m in results["copy.dll"].result.matches}
    assert copy == {"md5", "pdq"}
    assert results["copy.dll"].signals.media_type == "image"  # type from content

    plain = {
        Path(r.signals.path).name: r for r in hw.match_paths([evidence], hw.matcher(dihedral=False))
    }["mirrored.jpg"]
    assert plain.result.matches == []  # switched off (match --no-dihedral)

    # A stricter threshold on the list turns the small copy's match off.
    hw.lists.configure("pictures", pdq_threshold=max(0, small[0].distance - 1))
    again = {Path(r.signals.path).name: r for r in hw.match_paths([evidence], hw.matcher())}
    assert again["small.jpg"].result.matches == []


def test_negative_list_suppresses_and_quality_gate(hw: Hashwatch, tmp_path: Path) -> None:
    originals, _ = _known_pictures(tmp_path)
    hw.lists.import_file("pictures", _pdq_list(hw, originals, tmp_path / "pdq.csv"))
    fp = next(iter(hw.hash_paths([originals[1]])))
    assert fp.pdq is not None
    neg = tmp_path / "negative.txt"
    neg.write_text(f"pdq {fp.pdq.hash}\n")
    hw.lists.import_file("false-positives", neg, kind=ListKind.NEGATIVE)
    result = hw.matcher(["pictures"]).match([Signal(HashType.PDQ, fp.pdq.hash, 100)])
    assert [m.kind for m in result.matches] == ["negative"]
    assert [m.list for m in result.suppressed] == ["pictures"]
    low = hw.matcher().match([Signal(HashType.PDQ, fp.pdq.hash, 30)])
    assert low.matches == [] and "below 50" in low.notes[0]


def test_signal_lines_answer_one_line_per_input(hw: Hashwatch, tmp_path: Path) -> None:
    hw.lists.import_file("agency", write_csv(tmp_path / "l.csv", benign_rows(3)))
    lines = [f"md5 {md5(b'benign-1')}", "sha1 nothex", md5(b"unknown"), ""]
    answers = list(hw.match_signal_lines(lines, hw.matcher()))
    assert [a["line"] for a in answers] == [1, 2, 3, 4]
    assert answers[0]["matches"][0]["list"] == "agency"
    assert "error" in answers[1] and "sha1" in answers[1]["error"]
    assert answers[2]["matches"] == []
    assert "error" in answers[3]


def test_index_persists_and_catches_up_without_rebuild(hw: Hashwatch, tmp_path: Path) -> None:
    originals, _ = _known_pictures(tmp_path)
    hw.lists.import_file("pictures", _pdq_list(hw, originals[:2], tmp_path / "a.csv"))
    first = hw.pdq_index
    assert len(first) == 2 and first.path is not None and first.path.exists()
    # Another process adds an entry; a fresh instance loads the file and applies one row.
    other = Hashwatch(hw.settings)
    other.lists.import_file("more", _pdq_list(other, originals[2:], tmp_path / "b.csv"))
    other.close()
    fresh = Hashwatch(hw.settings)
    idx = fresh.pdq_index
    assert len(idx) == 3
    assert idx.watermark == fresh.db.change_seq()
    fs = next(iter(fresh.hash_paths([originals[2]])))
    assert fs.pdq is not None
    assert fresh.matcher().match([Signal(HashType.PDQ, fs.pdq.hash, 100)]).matches
    fresh.close()


def test_export_import_round_trip(hw: Hashwatch, tmp_path: Path) -> None:
    rows = benign_rows(20)
    hw.lists.import_file("agency", write_csv(tmp_path / "l.csv", rows))
    for fmt in ("vics2", "csv"):
        out = tmp_path / f"export.{fmt}"
        assert hw.lists.export("agency", out, fmt) == 20
        hw.lists.import_file(f"copy-{fmt}", out)
        original = sorted(r.hashes for r in hw.lists.records("agency"))
        copied = list(hw.lists.records(f"copy-{fmt}"))
        assert sorted(r.hashes for r in copied) == original
        by_hash = {r.hashes: r for r in hw.lists.records("agency")}
        for record in copied:
            src = by_hash[record.hashes]
            assert (record.category, record.series, record.comment) == (
                src.category,
                src.series,
                src.comment,
            )
