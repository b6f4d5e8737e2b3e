"""An investigator scans an eMule folder whose cancelled.met (eMule 0.48 and later) keeps only
salted hashes of the downloads the user cancelled: the scan salts the known list's ED2K hashes
with the file's seed and finds the cancelled downloads that were known material.

The ED2K values are digests of generated benign bytes standing in for known files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hashwatch.app import Hashwatch
from hashwatch.lists.model import ListKind
from hashwatch.matching.salted import match_salted_ed2k, salt_ed2k
from tests import inprocess_cli
from tests import p2p_emule_builders as emule
from tests.inprocess_cli import Run

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process

SEED = 0x5EED1234


def _ed2k(n: int) -> bytes:
    return hashlib.md5(f"benign-ed2k-{n}".encode()).digest()


def _setup(tmp: Path, run: Run) -> Path:
    listed = tmp / "known.txt"
    listed.write_text("".join(f"ed2k {_ed2k(n).hex()}\n" for n in range(50)))
    out = run("lists", "import", str(listed), "--name", "seized-known")
    assert out.returncode == 0, out.stderr
    # A known false positive: the entry 42 is also in a negative list.
    false_positive = tmp / "negative.txt"
    false_positive.write_text(f"ed2k {_ed2k(42).hex()}\n")
    out = run("lists", "import", str(false_positive), "--name", "cleared", "--kind", "negative")
    assert out.returncode == 0, out.stderr
    evidence = tmp / "seized" / "eMule" / "config"
    evidence.mkdir(parents=True)
    # Two cancelled downloads were listed files (7 and 42), one was not.
    met = emule.cancelled_met([_ed2k(7), _ed2k(1000), _ed2k(42)], seed=SEED)
    (evidence / "cancelled.met").write_bytes(met)
    return evidence / "cancelled.met"


def _scan(run: Run, tmp: Path, case: str, *extra: str) -> dict[str, dict[str, Any]]:
    out = run("scan", str(tmp / "seized"), "--out", str(tmp / case), "--workers", "1", *extra)
    assert out.returncode in (0, 1), out.stderr
    lines = (tmp / case / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["path"]: r for r in map(json.loads, lines)}


def test_cancelled_downloads_of_known_files_are_found_by_their_salted_hash(
    tmp_path: Path, run: Run
) -> None:
    met = _setup(tmp_path, run)
    by_path = _scan(run, tmp_path, "case")
    records = [by_path[f"{met}!/#{n}"] for n in range(3)]
    assert [r["status"] for r in records] == ["known", "other", "ignorable"]
    assert [(m["list"], m["hash_type"]) for m in records[0]["matches"]] == [
        ("seized-known", "ed2k")
    ]
    # The negative list's match suppresses the known one, as for any match.
    assert [m["list"] for m in records[2]["matches"]] == ["cleared"]
    assert [m["list"] for m in records[2]["suppressed"]] == ["seized-known"]
    for record in records:
        assert record["p2p"]["unmatchable"] is None
        assert "ed2k" not in record  # the list's value is not written into the case
    assert records[1]["matches"] == []
    assert "51 stored ED2K hashes salted with seed" in records[1]["p2p"]["details"]["salted_check"]
    assert records[0]["p2p"]["details"]["salted_hash"] == emule.salted(SEED, _ed2k(7)).hex()


def test_stores_above_the_bound_are_said_plainly_not_checked(tmp_path: Path, hw: Hashwatch) -> None:
    listed = tmp_path / "known.txt"
    listed.write_text("".join(f"ed2k {_ed2k(n).hex()}\n" for n in range(50)))
    hw.lists.import_file("seized-known", listed, kind=ListKind.KNOWN)
    matcher = hw.matcher(None)
    wanted = {salt_ed2k(SEED, _ed2k(7)).hex(), salt_ed2k(SEED + 1, _ed2k(8)).hex()}
    found = match_salted_ed2k(matcher, SEED, wanted, max_entries=50)
    assert found.skipped is None and found.checked == 50
    assert list(found.matches) == [salt_ed2k(SEED, _ed2k(7)).hex()]  # the other seed's: no
    over = match_salted_ed2k(matcher, SEED, wanted, max_entries=49)
    assert over.matches == {} and over.skipped is not None
    assert "50 ED2K hashes, more than the 49" in over.skipped and "not checked" in over.skipped
