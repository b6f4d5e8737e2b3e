"""A reviewer reads the report: copies are called what they are, the known table says what an
extra count counts, and sizes carry one kind of unit (binary, labelled).

Every picture is a generated benign scene.
"""

from __future__ import annotations

import re
from pathlib import Path

from hashwatch.report.html import write_html_report
from hashwatch.scan.model import ItemRecord, ItemStatus, ScanSummary
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process


def test_exact_copies_and_near_duplicates_are_told_apart(run: Run, tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    same = jpeg_bytes(scene(11))
    (ev / "copy-1.jpg").write_bytes(same)
    (ev / "copy-2.jpg").write_bytes(same)
    (ev / "look-alike-1.jpg").write_bytes(jpeg_bytes(scene(12), quality=95))
    (ev / "look-alike-2.jpg").write_bytes(jpeg_bytes(scene(12).resize((480, 360)), quality=70))
    result = run("scan", str(ev), "-o", "case", "-j", "1")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "case" / "report.html").read_text()
    assert "2 exact copies (identical files)" in html
    assert "2 near-duplicates (similar pictures, not identical files)" in html
    assert "near-duplicate copies" not in html


def test_extra_matches_in_the_known_table_say_they_are_list_entries(
    run: Run, tmp_path: Path
) -> None:
    media = tmp_path / "known-pictures"
    media.mkdir()
    (media / "k.jpg").write_bytes(jpeg_bytes(scene(21)))
    for name in ("list-a", "list-b", "list-c"):
        assert run("lists", "add-media", name, str(media)).returncode == 0
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "found.jpg").write_bytes(jpeg_bytes(scene(21)))
    result = run("scan", str(ev), "-o", "case", "-j", "1")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "case" / "report.html").read_text()
    extra = re.search(r"and (\d+) more matching list entr(?:y|ies) \(([^)]*)\)", html)
    assert extra is not None, "the known row does not say what its extra count counts"
    # One entry in each of three lists, each matched by four hashes: two more *entries*.
    assert int(extra.group(1)) == 2
    assert set(extra.group(2).split(", ")) <= {"list-a", "list-b", "list-c"}
    assert not re.search(r"\+\d+ more", html)


def test_one_entry_matched_by_several_hashes_is_one_entry(run: Run, tmp_path: Path) -> None:
    media = tmp_path / "known-pictures"
    media.mkdir()
    (media / "k.jpg").write_bytes(jpeg_bytes(scene(22)))
    assert run("lists", "add-media", "only-list", str(media)).returncode == 0
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "found.jpg").write_bytes(jpeg_bytes(scene(22)))
    result = run("scan", str(ev), "-o", "case", "-j", "1")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "case" / "report.html").read_text()
    # MD5, SHA-1, SHA-256, ED2K (kept for P2P records) and PDQ of one entry
    assert "more matching list" not in html
    also = re.search(r"also by ([A-Z0-9, -]+)<", html)
    assert also is not None, "the known row does not say which other hashes matched"
    assert set(also.group(1).split(", ")) == {"ED2K", "PDQ", "SHA1", "SHA256"}


def test_sizes_are_in_binary_units_everywhere(run: Run, tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "big.bin").write_bytes(b"\0" * (3 * 1024 * 1024))
    (ev / "p.jpg").write_bytes(jpeg_bytes(scene(5)))
    result = run("scan", str(ev), "-o", "case", "-j", "1")
    assert result.returncode == 0, result.stderr
    assert re.search(r"files \(3\.\d MiB\)", result.stderr), result.stderr
    html = (tmp_path / "case" / "report.html").read_text()
    assert re.search(r"2 files \(3\.\d MiB\) examined", html)
    assert not re.search(r"\d MB\b", html + result.stderr)


def test_the_report_of_a_scan_without_lists_field_keeps_its_old_header(tmp_path: Path) -> None:
    """A case_info from before lists were recorded (no "lists" key) shows no warning."""
    record = ItemRecord(path="/ev/a.txt", root="/ev", status=ItemStatus.OTHER, size=1)
    write_html_report(tmp_path / "r.html", [record], [], ScanSummary(files=1), {})
    html = (tmp_path / "r.html").read_text()
    assert "No hash list was used" not in html and "<h1>Scan report</h1>" in html
