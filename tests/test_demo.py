"""``make demo`` runs the investigator's main job end to end on generated benign data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hashwatch.report.manifest import verify_case


def test_demo_scans_generated_evidence_into_a_verifiable_case(tmp_path: Path) -> None:
    root = tmp_path / "demo-case"
    done = subprocess.run(
        [sys.executable, "-m", "hashwatch.demo", str(root)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout
    items = {
        Path(item["path"]).name: item
        for item in map(json.loads, (root / "case" / "results.jsonl").read_text().splitlines())
    }
    assert items["IMG_0001.jpg"]["status"] == "known"
    assert items["setup.dll"]["status"] == "known"  # renamed: type from content
    assert items["library-0.so"]["status"] == "ignorable"
    assert items["broken.jpg"]["status"] == "error"
    # The videos: a re-encoded copy of the known clip is known; partial re-use is a lead.
    assert items["VID_0001.mp4"]["status"] == "known"
    partial = items["VID_0002.mp4"]
    assert partial["status"] == "new"
    assert [m["partial"] for m in partial["matches"]] == [True]
    assert items["VID_0003.mp4"]["status"] == "new" and items["VID_0003.mp4"]["matches"] == []
    assert verify_case(root / "case").ok
    html = (root / "case" / "report.html").read_text()
    assert "<title>hashwatch report: case DEMO-0001</title>" in html and "Demo examiner" in html
