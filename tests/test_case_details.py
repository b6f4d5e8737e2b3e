"""An examiner's story: a scan that says which case it belongs to, who ran it and how long it
took; a warning when no list can match; a signed manifest; evidence checked again later.

Every picture is a generated benign scene; the signing key is made by the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashwatch.app import Hashwatch
from hashwatch.errors import ConfigError
from hashwatch.report.case import CaseDetails
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene
from tests.scan_helpers import InterruptAtFile

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process


def _evidence(root: Path) -> Path:
    (root / "DCIM").mkdir(parents=True)
    for n in range(3):
        (root / "DCIM" / f"IMG_{n}.jpg").write_bytes(jpeg_bytes(scene(n)))
    (root / "notes.txt").write_text("a benign note\n")
    return root


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private = tmp_path / "examiner.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = tmp_path / "examiner.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _audit(case: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (case / "audit.log").read_text().splitlines()]


def test_case_details_reach_report_vics_manifest_and_audit(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    details = ["--case-number", "2026-0042", "--agency", "Benign County Police"]
    details += ["--examiner", "A. Examiner"]
    result = run("scan", str(ev), "-o", "case", "-j", "1", *details)
    assert result.returncode == 0, result.stderr
    case = tmp_path / "case"
    html = (case / "report.html").read_text()
    assert "<title>hashwatch report: case 2026-0042</title>" in html
    assert "unnamed" not in html
    assert "Benign County Police" in html and "A. Examiner" in html

    vics = json.loads((case / "case.vics.json").read_text())["value"][0]
    assert vics["CaseNumber"] == "2026-0042"
    assert vics["ContactName"] == "A. Examiner"
    assert vics["ContactOrganization"] == "Benign County Police"

    manifest = json.loads((case / "manifest.json").read_text())["case"]
    assert manifest["case_number"] == "2026-0042" and manifest["agency"] == "Benign County Police"
    assert manifest["operator"] and manifest["host"]

    events = _audit(case)
    started = next(e for e in events if e["event"] == "scan.started")["details"]
    assert isinstance(started, dict)
    recorded = started["case"]
    assert recorded["examiner"] == "A. Examiner" and recorded["operator"] and recorded["host"]
    assert recorded["command"][:2] == ["hashwatch", "scan"]
    assert "--case-number" in recorded["command"]
    phases = [e["details"] for e in events if e["event"] == "scan.phase"]
    assert [p["phase"] for p in phases] == ["hash and match", "cluster", "write outputs"]  # type: ignore[index]
    assert all(p["elapsed_s"] >= 0 and p["started"] <= p["finished"] for p in phases)  # type: ignore[index]
    finished = next(e for e in events if e["event"] == "scan.finished")["details"]
    assert isinstance(finished, dict)
    assert finished["elapsed_s"] >= sum(finished["phases"].values()) > 0
    assert finished["started"] <= finished["finished"]


def test_a_scan_with_no_list_warns_and_the_report_says_so(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    result = run("scan", str(ev), "-o", "case", "-j", "1")
    assert result.returncode == 0, result.stderr
    assert "warning: no hash list in the database" in result.stderr
    assert "every file will be reported as new" in result.stderr
    html = (tmp_path / "case" / "report.html").read_text()
    assert "No hash list was used: every file is new." in html


def test_a_scan_against_a_list_of_only_ignorable_files_warns(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    assert run("lists", "create", "nsrl-like", "--kind", "ignorable").returncode == 0
    result = run("scan", str(ev), "-o", "case", "-j", "1")
    assert result.returncode == 0, result.stderr
    assert "no list of known material with entries among the lists used (nsrl-like)" in (
        result.stderr
    )
    html = (tmp_path / "case" / "report.html").read_text()
    assert "No list of known material was used" in html


def test_verify_evidence_names_what_changed_went_missing_or_was_added(
    run: Run, tmp_path: Path
) -> None:
    ev = _evidence(tmp_path / "ev")
    assert run("scan", str(ev), "-o", "case", "-j", "1").returncode == 0
    ok = run("verify", "case", "--evidence")
    assert ok.returncode == 0, ok.stderr
    assert "evidence unchanged: 4 files under 1 root(s) re-hashed" in ok.stderr

    (ev / "DCIM" / "IMG_0.jpg").write_bytes(jpeg_bytes(scene(9)))
    (ev / "DCIM" / "IMG_1.jpg").unlink()
    (ev / "DCIM" / "IMG_7.jpg").write_bytes(jpeg_bytes(scene(7)))
    bad = run("verify", "case", "--evidence")
    assert bad.returncode == 5
    assert f"evidence {ev / 'DCIM' / 'IMG_0.jpg'}: changed (SHA-256 differs)" in bad.stderr
    assert f"evidence {ev / 'DCIM' / 'IMG_1.jpg'}: missing" in bad.stderr
    assert f"evidence {ev / 'DCIM' / 'IMG_7.jpg'}: added since the scan" in bad.stderr
    assert "IMG_2.jpg" not in bad.stderr and "notes.txt" not in bad.stderr
    # The outputs themselves are untouched: without --evidence the case still verifies.
    assert run("verify", "case").returncode == 0


def test_verify_evidence_at_its_new_place(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    assert run("scan", str(ev), "-o", "case", "-j", "1").returncode == 0
    moved = tmp_path / "copy-of-ev"
    ev.rename(moved)
    assert run("verify", "case", "--evidence").returncode == 5
    ok = run("verify", "case", "--evidence-path", str(moved))
    assert ok.returncode == 0, ok.stderr


def test_a_signed_manifest_verifies_and_a_tampered_one_fails(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    private, public = _keys(tmp_path)
    result = run("scan", str(ev), "-o", "case", "-j", "1", "--sign-key", str(private))
    assert result.returncode == 0, result.stderr
    case = tmp_path / "case"
    assert len((case / "manifest.json.sig").read_bytes()) == 64
    ok = run("verify", "case", "--public-key", str(public))
    assert ok.returncode == 0, ok.stderr
    assert "manifest signature valid (the given public key" in ok.stderr
    assert any(e["event"] == "manifest.signed" for e in _audit(case))

    (tmp_path / "other").mkdir()
    _, other = _keys(tmp_path / "other")
    wrong = run("verify", "case", "--public-key", str(other))
    assert wrong.returncode == 5 and "signature does not match" in wrong.stderr

    manifest = case / "manifest.json"
    manifest.write_text(manifest.read_text().replace("2026", "2025", 1))
    tampered = run("verify", "case")  # with the key the case carries
    assert tampered.returncode == 5 and "signature does not match" in tampered.stderr


def test_verify_with_a_public_key_requires_a_signature(run: Run, tmp_path: Path) -> None:
    ev = _evidence(tmp_path / "ev")
    _, public = _keys(tmp_path)
    assert run("scan", str(ev), "-o", "case", "-j", "1").returncode == 0
    result = run("verify", "case", "--public-key", str(public))
    assert result.returncode == 5 and "manifest.json.sig missing" in result.stderr


def test_a_signing_key_that_is_not_ed25519_is_refused_before_scanning(
    run: Run, tmp_path: Path
) -> None:
    ev = _evidence(tmp_path / "ev")
    (tmp_path / "not-a-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    result = run("scan", str(ev), "-o", "case", "--sign-key", "not-a-key.pem")
    assert result.returncode == ConfigError.exit_code
    assert "error: signing key not-a-key.pem: not a PEM private key" in result.stderr
    assert not (tmp_path / "case").exists()


def test_case_details_are_bounded_and_kept_when_a_scan_is_resumed() -> None:
    with pytest.raises(ConfigError, match="--case-number holds a control character"):
        CaseDetails.given("12\n34")
    with pytest.raises(ConfigError, match="--agency is longer than"):
        CaseDetails.given(agency="x" * 500)
    recorded = CaseDetails.given("7", "Agency", "Ex").given_json()
    resumed = CaseDetails.given(command=["hashwatch", "scan", "--resume"]).resumed_from(recorded)
    assert resumed.given_json() == recorded and resumed.command[-1] == "--resume"
    with pytest.raises(ConfigError, match="--examiner differs from the scan being resumed"):
        CaseDetails.given(examiner="Someone else").resumed_from(recorded)


def test_an_operator_is_named_even_without_a_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert CaseDetails().operator == f"uid {os.getuid()}"


def test_a_resumed_scan_keeps_its_case_and_records_who_resumed_it(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    ev = _evidence(tmp_path / "ev")
    case = tmp_path / "case"
    first = CaseDetails.given("2026-7", "Agency", "First Examiner", command=["hashwatch", "scan"])
    with pytest.raises(KeyboardInterrupt):
        sqlite_hw.scan([ev], case, workers=1, unit_files=1, progress=InterruptAtFile(), case=first)
    other = CaseDetails.given(examiner="Someone Else", command=["hashwatch", "scan", "--resume"])
    with pytest.raises(ConfigError, match="--examiner differs"):
        sqlite_hw.scan([ev], case, workers=1, resume=True, case=other)
    again = CaseDetails.given(command=["hashwatch", "scan", "--resume"])
    sqlite_hw.scan([ev], case, workers=1, resume=True, case=again)
    manifest = json.loads((case / "manifest.json").read_text())["case"]
    assert (manifest["case_number"], manifest["examiner"]) == ("2026-7", "First Examiner")
    assert manifest["command"] == ["hashwatch", "scan", "--resume"]
    resumed = [e["details"] for e in _audit(case) if e["event"] == "scan.resumed"]
    assert resumed and resumed[-1]["case"]["command"][-1] == "--resume"  # type: ignore[index]


def test_verify_evidence_of_a_single_file_root(run: Run, tmp_path: Path) -> None:
    picture = tmp_path / "seized.jpg"
    picture.write_bytes(jpeg_bytes(scene(3)))
    assert run("scan", str(picture), "-o", "case", "-j", "1").returncode == 0
    assert run("verify", "case", "--evidence").returncode == 0
    picture.write_bytes(jpeg_bytes(scene(4)))
    changed = run("verify", "case", "--evidence")
    assert changed.returncode == 5 and f"{picture}: changed (SHA-256 differs)" in changed.stderr
    picture.unlink()
    gone = run("verify", "case", "--evidence")
    assert gone.returncode == 5 and f"{picture}: missing" in gone.stderr
