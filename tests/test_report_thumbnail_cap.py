"""report.html holds at most the configured number of thumbnails and says where the rest are."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from hashwatch.app import Hashwatch


def _pictures(folder: Path, n: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(15)
    for i in range(n):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((96, 72), Image.Resampling.BILINEAR)
        img.save(folder / f"p{i:02d}.jpg", "JPEG", quality=90)


def test_the_page_holds_at_most_n_thumbnails_and_names_the_rest(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence"
    _pictures(evidence, 12)
    outcome = sqlite_hw.scan([evidence], tmp_path / "case", workers=0, report_thumbnails=4)
    page = outcome.report.read_text(encoding="utf-8")
    shown = len(re.findall(r'<img [^>]*src="data:image/jpeg;base64,', page))
    assert 0 < shown <= 4
    assert f"the {12 - shown} more new files are in results.jsonl" in page
    lines = (tmp_path / "case" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert sum(json.loads(line)["status"] == "new" for line in lines) == 12
    thumbs = (tmp_path / "case" / "thumbnails.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(thumbs) == 12  # the review workspace gets every thumbnail


def test_no_thumbnails_at_all_when_the_cap_is_zero(sqlite_hw: Hashwatch, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    _pictures(evidence, 3)
    outcome = sqlite_hw.scan([evidence], tmp_path / "case", workers=0, report_thumbnails=0)
    page = outcome.report.read_text(encoding="utf-8")
    assert "data:image/jpeg;base64," not in page
    assert outcome.summary.by_status.get("new") == 3
