"""A scan finds a cropped copy of a listed picture inside a zip by its local features: the
worker describes the member from the decode it hashed, the main process matches. Pictures are
generated (benign stand-ins for known material)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from hashwatch.scan.walk import walk_evidence
from hashwatch.scan.worker import WorkerOptions, process_unit
from tests.inprocess_cli import Run, run
from tests.media import write_image
from tests.test_robust_matching import crop, picture

__all__ = ["run"]  # the fixture


def test_scan_finds_a_cropped_copy_inside_a_zip_by_local_features(run: Run, tmp_path: Path) -> None:
    known = write_image(tmp_path / "known" / "k.png", picture(41), "PNG")
    evidence = tmp_path / "ev"
    member = write_image(tmp_path / "c.jpg", crop(picture(41), 0.10), quality=90)
    other = write_image(tmp_path / "o.jpg", picture(42), quality=90)
    evidence.mkdir()
    with zipfile.ZipFile(evidence / "photos.zip", "w") as zf:
        zf.write(member, "holiday/cropped.jpg")
        zf.write(other, "holiday/other.jpg")
    assert run("lists", "create", "agency").returncode == 0
    assert run("lists", "set", "agency", "--local-features", "on").returncode == 0
    assert run("lists", "add-media", "agency", str(known)).returncode == 0

    scanned = run("scan", str(evidence), "-o", str(tmp_path / "case"), "-j", "1")
    assert scanned.returncode == 0, scanned.stderr
    lines = (tmp_path / "case" / "results.jsonl").read_text().splitlines()
    records = {r["path"].split("!/")[-1]: r for r in map(json.loads, lines)}
    found = records["holiday/cropped.jpg"]
    assert found["status"] == "known"
    (match,) = found["matches"]
    assert match["list"] == "agency" and match["hash_type"] == "local"
    assert match["local"]["crop"][0] == 0.1 or abs(match["local"]["crop"][0] - 0.1) < 0.02
    assert records["holiday/other.jpg"]["matches"] == []


def test_workers_describe_pictures_only_when_asked(tmp_path: Path) -> None:
    write_image(tmp_path / "ev" / "p.jpg", picture(43), quality=90)
    unit = list(walk_evidence([tmp_path / "ev"]))
    plain = process_unit(WorkerOptions(), unit)
    described = process_unit(WorkerOptions(local_features=True), unit)
    assert plain.queries[0].features is None
    features = described.queries[0].features
    assert features is not None and len(features.plain) > 100 and len(features.mirror) > 100
    assert described.records[0].pdq == plain.records[0].pdq  # hashes are unchanged
