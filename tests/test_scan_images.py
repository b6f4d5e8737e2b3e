"""Disk images as seized: E01 (split), raw, split raw; partitions, deleted files, carving.

The fixtures in tests/data/images/ are generated (scripts/make_image_fixtures.py) from benign
generated pictures; ``expected.json`` holds the SHA-256 of every file written into them, of
the deleted ones and of the pictures written into free space, with their byte offsets.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from hashwatch.runner import make_units
from hashwatch.scan import image_io
from hashwatch.scan.image_parts import CARVE, FILES, IMAGE
from hashwatch.scan.images import ImagePlanner
from hashwatch.scan.walk import walk_evidence
from hashwatch.scan.worker import WorkerOptions, process_unit
from tests import inprocess_cli
from tests.inprocess_cli import Run

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process

DATA = Path(__file__).parent / "data" / "images"
EXPECTED: dict[str, Any] = json.loads((DATA / "expected.json").read_text())
OLD = 1_000_000_000


def _evidence(tmp_path: Path, *names: str) -> Path:
    ev = tmp_path / "ev"
    ev.mkdir()
    for name in names:
        shutil.copyfile(DATA / name, ev / name)
    return ev


def _freeze(ev: Path) -> dict[Path, tuple[bytes, int, int]]:
    """Set atime before mtime (a read would move it) and note bytes and times."""
    state = {}
    for n, path in enumerate(sorted(ev.iterdir())):
        os.utime(path, (OLD, OLD + 1000 + n))
        st = path.stat()
        state[path] = (path.read_bytes(), st.st_mtime_ns, st.st_atime_ns)
    os.utime(ev, (OLD, OLD))
    for path in state:  # reading the bytes above may have moved atime: set it again
        os.utime(path, (OLD, OLD + 1000 + sorted(state).index(path)))
        state[path] = (state[path][0], path.stat().st_mtime_ns, path.stat().st_atime_ns)
    return state


def _results(case: Path) -> dict[str, dict[str, Any]]:
    rows = {}
    for line in (case / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rows[rec["path"]] = rec
    return rows


def _scan(run: Run, *args: str) -> dict[str, dict[str, Any]]:
    result = run("scan", *args, "-o", "case", "-j", "1")
    assert result.returncode == 0, result.stderr
    return _results(Path("case"))


def test_split_e01_every_file_deleted_and_carved_found_evidence_untouched(
    run: Run, tmp_path: Path
) -> None:
    ev = _evidence(tmp_path, "disk.E01", "disk.E02")
    before = _freeze(ev)
    rows = _scan(run, str(ev), "--carve")
    times = {p: (p.stat().st_mtime_ns, p.stat().st_atime_ns) for p in before}
    assert times == {p: v[1:] for p, v in before.items()}  # mtime and atime unchanged
    assert {p: p.read_bytes() for p in before} == {p: v[0] for p, v in before.items()}
    assert sorted(p.name for p in ev.iterdir()) == ["disk.E01", "disk.E02"]  # nothing beside

    image = f"{ev}/disk.E01"
    want = EXPECTED["disk"]
    for inside, sha in want["files"].items():
        row = rows[f"{image}!/{inside}"]
        assert row["sha256"] == sha, inside
        assert row.get("note") != "deleted"
        if "!/" not in inside:
            assert row["disk"]["allocated"] is True
            assert row["disk"]["inode"] > 0 and row["disk"]["modified"]
    photo = rows[f"{image}!/p2(ext4)/photos/a.jpg"]
    assert photo["status"] == "new" and photo["media_type"] == "image" and photo["pdq"]
    assert photo["disk"]["partition"] == "p2(ext4)" and photo["disk"]["file_system"] == "ext4"
    assert {"created", "modified", "accessed", "changed"} <= set(photo["disk"])
    for inside, sha in want["deleted"].items():
        row = rows[f"{image}!/{inside}"]
        assert row["sha256"] == sha and row["note"] == "deleted", inside
        assert row["disk"]["allocated"] is False and row["error"] is None
    for inside, sha in want["carved"].items():
        row = rows[f"{image}!/{inside}"]
        assert row["sha256"] == sha and row["status"] == "new" and row["pdq"], inside
        assert row["disk"]["offset"] == int(inside.rsplit("offset-", 1)[1].split(".")[0])
    carved = [p for p in rows if "$Unallocated" in p or "$Slack" in p]
    assert len(carved) == len(want["carved"])  # deleted files are not carved a second time

    own = rows[image]
    assert own["image"]["format"] == "E01" and own["image"]["segments"] == ["disk.E01", "disk.E02"]
    assert own["image"]["verified"] is True and own["error"] is None
    assert own["image"]["media_md5"] == own["image"]["stored_md5"] == want["media_md5"]
    assert own["image"]["media_sha256"] == want["media_sha256"]
    assert [v["label"] for v in own["image"]["volumes"]] == ["p1(FAT16)", "p2(ext4)", "p3(NTFS)"]
    assert rows[f"{ev}/disk.E02"]["sha256"]  # the second segment: a file of the tree
    assert not any(p.startswith(f"{ev}/disk.E02!/") for p in rows)

    manifest = json.loads(Path("case/manifest.json").read_text())
    assert manifest["evidence"][0]["files"] == 2  # the segments, with their own digests
    vics = json.loads(Path("case/case.vics.json").read_text())
    files = {f["FilePath"]: f for m in vics["value"][0]["Media"] for f in m["MediaFiles"]}
    shown = files[f"{image}!/p2(ext4)/photos/a.jpg"]
    assert shown["ParentFilePath"] == image and shown["Created"] == photo["disk"]["created"]


def test_carved_picture_matches_a_known_list(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path, "usb.E01")
    ((carved, sha),) = EXPECTED["usb"]["carved"].items()
    Path("list.txt").write_text(f"sha256 {sha}\n")
    assert run("lists", "import", "list.txt", "--name", "stand-ins").returncode == 0
    rows = _scan(run, str(ev), "--carve")
    row = rows[f"{ev}/usb.E01!/{carved}"]
    assert row["status"] == "known" and row["matches"][0]["list"] == "stand-ins"
    for inside, sha in {**EXPECTED["usb"]["files"], **EXPECTED["usb"]["deleted"]}.items():
        assert rows[f"{ev}/usb.E01!/{inside}"]["sha256"] == sha
    without = _results_of_second_scan(run, ev)
    assert not any("$Unallocated" in p for p in without)  # carving only when asked


def _results_of_second_scan(run: Run, ev: Path) -> dict[str, dict[str, Any]]:
    result = run("scan", str(ev), "-o", "case2", "-j", "1")
    assert result.returncode == 0, result.stderr
    return _results(Path("case2"))


def _gpt(tmp_path: Path) -> bytes:
    return gzip.decompress((DATA / "gpt.raw.gz").read_bytes())


def test_raw_and_split_raw_gpt_images(run: Run, tmp_path: Path) -> None:
    media = _gpt(tmp_path)
    ev = tmp_path / "ev"
    (ev / "whole").mkdir(parents=True)
    (ev / "split").mkdir()
    (ev / "whole" / "gpt.dd").write_bytes(media)
    cut = 1536 * 1024  # inside the partition: the second segment starts mid file system
    (ev / "split" / "gpt.001").write_bytes(media[:cut])
    (ev / "split" / "gpt.002").write_bytes(media[cut : 3 * 1024 * 1024])
    (ev / "split" / "gpt.003").write_bytes(media[3 * 1024 * 1024 :])
    rows = _scan(run, str(ev))
    for image in (f"{ev}/whole/gpt.dd", f"{ev}/split/gpt.001"):
        for inside, sha in EXPECTED["gpt"]["files"].items():
            assert rows[f"{image}!/{inside}"]["sha256"] == sha, (image, inside)
    assert rows[f"{ev}/whole/gpt.dd"]["image"]["format"] == "raw"
    split = rows[f"{ev}/split/gpt.001"]["image"]
    assert split["format"] == "split raw" and split["segments"] == ["gpt.001", "gpt.002", "gpt.003"]
    assert split["media_sha256"] == EXPECTED["gpt"]["media_sha256"]
    assert rows[f"{ev}/whole/gpt.dd"]["sha256"] == EXPECTED["gpt"]["media_sha256"]
    assert not any("gpt.002!/" in p or "gpt.003!/" in p for p in rows)


def test_tampered_e01_is_reported_by_scan_and_by_verify(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path, "usb.E01")
    rows = _scan(run, str(ev))
    assert rows[f"{ev}/usb.E01"]["image"]["verified"] is True
    checked = run("verify", "case", "--evidence")
    assert checked.returncode == 0, checked.stderr
    assert "MD5 and SHA-1 match the hashes stored in the image" in checked.stderr

    data = bytearray((ev / "usb.E01").read_bytes())
    data[3000] ^= 1  # inside a compressed chunk of the media
    (ev / "usb.E01").write_bytes(bytes(data))
    checked = run("verify", "case", "--evidence")
    assert checked.returncode == 5
    assert "usb.E01: changed (SHA-256 differs)" in checked.stderr
    assert "E01 media MD5 and SHA-1 differs from the hash stored in the image" in checked.stderr

    rescanned = _results_of_second_scan(run, ev)
    own = rescanned[f"{ev}/usb.E01"]
    assert own["status"] == "error" and own["image"]["verified"] is False and own["sha256"]
    assert "differs from the hash stored in the image" in own["error"]


def test_truncated_and_corrupt_images_give_clear_errors_and_the_rest_is_read(
    run: Run, tmp_path: Path
) -> None:
    media = _gpt(tmp_path)
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "cut.dd").write_bytes(media[: 2 * 1024 * 1024])  # the partition ends at 3 MiB
    e01 = (DATA / "usb.E01").read_bytes()
    (ev / "broken.E01").write_bytes(e01[:11000])  # its last sections are gone
    rows = _scan(run, str(ev), "--carve")
    cut = rows[f"{ev}/cut.dd"]
    assert cut["status"] == "error" and "image truncated" in cut["error"] and cut["sha256"]
    inside = {p: r for p, r in rows.items() if p.startswith(f"{ev}/cut.dd!/")}
    read = [r for r in inside.values() if r["sha256"] in EXPECTED["gpt"]["files"].values()]
    assert read, inside  # what lies before the cut is still found
    broken = rows[f"{ev}/broken.E01"]
    assert broken["status"] == "error" and broken["sha256"]
    assert "E01 image cannot be opened" in broken["error"]


def test_an_image_is_split_into_parts_that_workers_share(tmp_path: Path) -> None:
    ev = _evidence(tmp_path, "disk.E01", "disk.E02")
    planner = ImagePlanner(carve=True, part_files=3)
    planned = list(planner.expand(walk_evidence([ev])))
    kinds = [ef.part.kind for ef in planned if ef.part is not None]
    assert kinds.count(IMAGE) == 1 and kinds.count(FILES) >= 4 and kinds.count(CARVE) == 4
    keys = [ef.key for ef in planned]
    assert len(set(keys)) == len(keys)
    again = list(ImagePlanner(carve=True, part_files=3).expand(walk_evidence([ev])))
    assert [ef.key for ef in again] == keys  # what resume relies on
    # Units of one part each, as two workers would take them: together, the whole image.
    records = []
    for unit in make_units(planned, 1):
        records += process_unit(WorkerOptions(), unit).records
    paths = [r.path for r in records]
    assert len(paths) == len(set(paths))
    want = EXPECTED["disk"]
    for inside in [*want["files"], *want["deleted"], *want["carved"]]:
        assert f"{ev}/disk.E01!/{inside}" in paths


def test_without_the_libraries_an_e01_says_what_to_install(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> tuple[Any, Any]:
        raise ImportError(image_io.INSTALL_HINT)

    monkeypatch.setattr("hashwatch.scan.images.libraries", missing)
    ev = _evidence(tmp_path, "usb.E01")
    rows = _scan(run, str(ev))
    own = rows[f"{ev}/usb.E01"]
    assert (
        own["error"] == "disk images need pytsk3 and libewf-python: "
        "pip install pytsk3 libewf-python"
    )
    assert own["sha256"] and len(rows) == 1
