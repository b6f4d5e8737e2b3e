"""A scanned case of generated benign pictures, for the tests of cases and review.

One scan per test module (it takes seconds): a known list made of one generated picture (its
MD5 and PDQ, category 1), then a scan of evidence the module builds, named with case details.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import ListKind
from hashwatch.report.case import CaseDetails
from tests.media import jpeg_bytes, scene

__all__ = ["KNOWN_SCENE", "known_list", "scan_case"]

KNOWN_SCENE = 0  # the scene whose picture the known list holds


def known_list(hw: Hashwatch, tmp: Path, name: str) -> None:
    """A ``known`` list ``name`` holding the picture of :data:`KNOWN_SCENE`, category 1."""
    tmp.mkdir(parents=True, exist_ok=True)
    ref = tmp / "ref.jpg"
    ref.write_bytes(jpeg_bytes(scene(KNOWN_SCENE)))
    fs = next(iter(hw.hash_paths([ref])))
    assert fs.digests and fs.pdq
    (tmp / "known.csv").write_text(f"md5,pdq,category\n{fs.digests.md5},{fs.pdq.hash},1\n")
    hw.lists.import_file(name, tmp / "known.csv", kind=ListKind.KNOWN)


def scan_case(
    tmp: Path, evidence: Callable[[Path], Path], case_number: str, list_name: str
) -> tuple[Path, Path]:
    """(evidence, case directory): ``evidence(root)`` builds the evidence, which is scanned
    against the known list ``list_name`` into ``tmp / "case"``."""
    app = Hashwatch(Settings(database_url=f"sqlite:///{tmp / 'scan.sqlite3'}", data_dir=tmp))
    try:
        known_list(app, tmp / "lists", list_name)
        root = evidence(tmp / "seized")
        details = CaseDetails.given(case_number, "Benign County Police", "A. Examiner")
        app.scan([root], tmp / "case", workers=1, case=details)
    finally:
        app.close()
    return root, tmp / "case"
