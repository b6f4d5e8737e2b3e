"""An examiner's story: a scan's ``case.vics.json`` passes no lead off as a decision, and the
case imported as a list does not make new media known.

Every picture is a generated benign scene. The known list is built from two of them with
``hashwatch lists add-media``; the evidence holds one exact copy, one altered copy (a PDQ
match at a small distance, another MD5) and two new pictures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import ImageDraw

from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process


def _story(run: Run, tmp_path: Path) -> Path:
    """Known list from two originals; evidence scanned into ``case``; returns the evidence."""
    originals = tmp_path / "originals"
    originals.mkdir()
    (originals / "a.jpg").write_bytes(jpeg_bytes(scene(1)))
    (originals / "b.jpg").write_bytes(jpeg_bytes(scene(2)))
    added = run("lists", "add-media", "known", str(originals), "--category", "1")
    assert added.returncode == 0, added.stderr
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "exact.jpg").write_bytes(jpeg_bytes(scene(1)))
    altered = scene(2)
    ImageDraw.Draw(altered).rectangle((0, 0, 40, 30), fill=(250, 250, 250))  # a small mark
    (ev / "altered.jpg").write_bytes(jpeg_bytes(altered, quality=70))
    (ev / "new1.jpg").write_bytes(jpeg_bytes(scene(30)))
    (ev / "new2.jpg").write_bytes(jpeg_bytes(scene(31)))
    scanned = run("scan", str(ev), "-o", "case", "-j", "1")
    assert scanned.returncode == 0, scanned.stderr
    return ev


def _media(case: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((case / "case.vics.json").read_text())
    return {m["MediaFiles"][0]["FileName"]: m for m in data["value"][0]["Media"]}


def _props(media: dict[str, Any]) -> dict[str, str]:
    return {p["PropertyName"]: p["PropertyValue"] for p in media["MediaMetadata"]}


def _statuses(case: Path) -> dict[str, str]:
    lines = (case / "results.jsonl").read_text().splitlines()
    return {Path(r["path"]).name: r["status"] for r in map(json.loads, lines)}


def test_matches_are_pre_categorised_leads_and_new_media_uncategorised(
    run: Run, tmp_path: Path
) -> None:
    _story(run, tmp_path)
    media = _media(tmp_path / "case")
    assert set(media) == {"exact.jpg", "altered.jpg", "new1.jpg", "new2.jpg"}
    for name in ("exact.jpg", "altered.jpg"):
        lead = media[name]
        assert lead["IsPrecategorized"] is True
        assert lead["Category"] == 1  # the list's code, where VICS keeps a pre-category
        assert lead["PrecategorizationSource"] == "hashwatch: known list known"
        assert "a lead for review, not a verdict" in lead["Comments"]
    near = _props(media["altered.jpg"])
    assert near["hashwatch.hash_type"] == "pdq" and 0 < int(near["hashwatch.distance"]) <= 31
    assert _props(media["exact.jpg"])["hashwatch.distance"] == "0"
    for name in ("new1.jpg", "new2.jpg"):
        assert media[name]["Category"] is None and media[name]["IsPrecategorized"] is False
        assert _props(media[name])["hashwatch.status"] == "new"
    # No Media claims a reviewer's category: a scan settles nothing.
    assert not [
        m for m in media.values() if m["Category"] is not None and not m["IsPrecategorized"]
    ]


def test_case_imported_as_a_list_leaves_new_media_new(run: Run, tmp_path: Path) -> None:
    ev = _story(run, tmp_path)
    case_file = str(tmp_path / "case" / "case.vics.json")

    # By default nothing in a scan's case is a decision: nothing enters, and the curator is
    # told how many records were left out and why.
    refused = run("lists", "import", case_file, "--name", "from-case")
    assert refused.returncode != 0
    assert "2 uncategorised (no Category: not known material)" in refused.stderr
    assert "2 pre-categorised" in refused.stderr and "--include-precategorized" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert "from-case" not in run("lists", "list").stdout

    # Asked for, the leads enter with their category and a comment saying what they are;
    # the new media still do not.
    done = run("lists", "import", case_file, "--name", "from-case", "--include-precategorized")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["added"] == 2 and report["records"] == 2
    assert report["skipped_uncategorised"] == 2 and report["skipped_precategorized"] == 0
    assert "skipped 2 uncategorised VICS records" in done.stderr
    exported = tmp_path / "from-case.json"
    assert run("lists", "export", "from-case", "-o", str(exported)).returncode == 0
    value = json.loads(exported.read_text())["value"]
    entries = value[0].get("Media", value)
    assert {e["Category"] for e in entries} == {1}
    assert all(
        e["Comments"].startswith("pre-categorised lead (hashwatch: known list known)")
        for e in entries
    )

    # The same file again, with the same choice: nothing changes.
    again = run("lists", "import", case_file, "--name", "from-case", "--include-precategorized")
    assert json.loads(again.stdout)["changed"] is False

    rescan = run("scan", str(ev), "-o", "case2", "-j", "1", "-l", "from-case")
    assert rescan.returncode == 0, rescan.stderr
    assert _statuses(tmp_path / "case2") == {
        "exact.jpg": "known",
        "altered.jpg": "known",
        "new1.jpg": "new",
        "new2.jpg": "new",
    }


def test_settled_categories_still_import_and_uncategorised_are_counted(
    run: Run, tmp_path: Path
) -> None:
    """A VICS file a reviewer graded (Category set, not pre-categorised) imports as before;
    its uncategorised records are skipped and counted, in the report and the audit log."""
    media = [
        {"MD5": "a" * 32, "Category": 1, "IsPrecategorized": False},
        {"MD5": "b" * 32, "Category": 2},
        {"MD5": "c" * 32, "Category": None},
        {"MD5": "d" * 32, "Category": 1, "IsPrecategorized": "true"},  # as some writers do
    ]
    path = tmp_path / "graded.json"
    context = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"
    path.write_text(json.dumps({"@odata.context": context, "value": media}))
    done = run("lists", "import", str(path), "--name", "graded")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["added"], report["skipped_uncategorised"], report["skipped_precategorized"]) == (
        2,
        1,
        1,
    )
    # An ignorable list takes every record: a category is not what makes media ignorable.
    ignorable = run("lists", "import", str(path), "--name", "quiet", "--kind", "ignorable")
    assert json.loads(ignorable.stdout)["added"] == 4
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"value": [{"MD5": "e" * 32, "IsPrecategorized": "maybe"}]}))
    refused = run("lists", "import", str(bad), "--name", "bad")
    assert refused.returncode != 0 and "IsPrecategorized: expected a boolean" in refused.stderr
