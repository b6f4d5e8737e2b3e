"""The real command, as a user runs it: JSON Lines out, clear errors, meaningful exit codes.

Run in this process through the console entry's own function (``tests/inprocess_cli.py``): a
subprocess would add only interpreter start-up, which ``tests/test_cli_startup.py`` covers."""

from __future__ import annotations

import json
from pathlib import Path

from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene

ROOT = Path(__file__).resolve().parents[1]


run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process, as the entry runs it


def test_hash_prints_one_json_object_per_file(run: Run, tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "photo.jpg").write_bytes(jpeg_bytes(scene(3)))
    (tmp_path / "ev" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "ev" / "doc.txt").write_text("benign")
    result = run("hash", "ev", "--dihedral")
    assert result.returncode == 0, result.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"photo.jpg", "broken.png", "doc.txt"}
    photo = rows["photo.jpg"]
    assert photo["media_type"] == "image" and len(photo["pdq"]) == 64
    assert len(photo["pdq_dihedral"]) == 8 and photo["pdq_dihedral"][0] == photo["pdq"]
    assert photo["pdq_policy"] == "fast-3" and "ed2k_red" not in photo
    assert len(photo["sha1_base32"]) == 32
    assert rows["broken.png"]["error"] and rows["broken.png"]["md5"]
    assert "pdq" not in rows["doc.txt"] and "error" not in rows["doc.txt"]
    reference = run("hash", "ev/photo.jpg", "--pdq-policy", "reference")
    assert json.loads(reference.stdout)["pdq_policy"] == "reference-1"


def test_curator_imports_and_platform_matches_hashes_from_stdin(run: Run, tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(scene(4)))
    signals = json.loads(run("hash", "photo.jpg").stdout)
    (tmp_path / "list.txt").write_text(f"pdq {signals['pdq']}\nmd5 {'0' * 32}\n")
    imported = run("lists", "import", "list.txt", "--name", "stand-ins", "--source-org", "Test")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["added"] == 2
    again = run("lists", "import", "list.txt", "--name", "stand-ins")
    assert json.loads(again.stdout)["changed"] is False and "unchanged" in again.stderr
    answers = run(
        "match", "--signals", "-", stdin=f"pdq {signals['pdq']}\nmd5 nonsense\nmd5 {'1' * 32}\n"
    )
    assert answers.returncode == 0, answers.stderr
    lines = [json.loads(line) for line in answers.stdout.splitlines()]
    assert [a["line"] for a in lines] == [1, 2, 3]
    assert lines[0]["matches"][0]["list"] == "stand-ins" and lines[0]["matches"][0]["distance"] == 0
    assert "error" in lines[1] and lines[2]["matches"] == []
    revoked = run("lists", "revoke", "stand-ins", f"pdq:{signals['pdq']}", "--reason", "test")
    assert revoked.returncode == 0, revoked.stderr
    after = run("match", "photo.jpg")
    assert json.loads(after.stdout)["matches"] == []
    shown = run("lists", "show", "stand-ins", "--json")
    info = json.loads(shown.stdout)
    assert info["counts"] == {"active": 1, "revoked": 1} and info["imports"][0]["version"] == 1
    exported = run("lists", "export", "stand-ins", "--out", "out.csv", "--format", "csv")
    assert exported.returncode == 0 and (tmp_path / "out.csv").read_text().count("\n") == 2


def test_errors_are_one_line_with_exit_codes(run: Run, tmp_path: Path) -> None:
    missing = run("lists", "show", "no-such-list")
    assert missing.returncode == 4 and "no hash list named" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "bad.csv").write_text("md5,category\nnot-a-hash,1\n")
    bad = run("lists", "import", "bad.csv", "--name", "x")
    assert bad.returncode == 3 and "line 2" in bad.stderr
    nothing = run("match")
    assert nothing.returncode == 2


def test_verify_names_a_tampered_case(run: Run, tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "a.jpg").write_bytes(jpeg_bytes(scene(5)))
    scanned = run("scan", "ev", "--out", "case", "--workers", "1")
    assert scanned.returncode == 0, scanned.stderr
    assert "report:" in scanned.stderr
    assert run("verify", "case").returncode == 0
    results = tmp_path / "case" / "results.jsonl"
    results.write_text(results.read_text().replace('"new"', '"other"'))
    tampered = run("verify", "case")
    assert tampered.returncode != 0 and "results.jsonl" in tampered.stderr
    again = run("scan", "ev", "--out", "case")
    assert again.returncode == 2 and "not empty" in again.stderr


def test_hash_a_video_prints_one_frame_hash_per_second(run: Run, tmp_path: Path) -> None:
    video = ROOT / "tests" / "data" / "video" / "chair-19-sd-bar.mp4"
    (tmp_path / "clip.bin").write_bytes(video.read_bytes())  # type from content, not name
    (tmp_path / "cut.mp4").write_bytes(video.read_bytes()[: len(video.read_bytes()) * 6 // 10])
    result = run("hash", "clip.bin", "cut.mp4")
    assert result.returncode == 0, result.stderr
    rows = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    clip = rows["clip.bin"]
    assert clip["media_type"] == "video" and clip["fps"] == 30.0
    assert [f["frame"] for f in clip["frames"]] == list(range(0, 570, 30))
    assert [f["timestamp"] for f in clip["frames"]][:3] == [0.0, 1.0, 2.0]
    assert all(len(f["pdq"]) == 64 for f in clip["frames"])
    reference = {}
    for line in video.with_suffix(".vpdq.txt").read_text().splitlines():
        frame, _quality, value, _ts = line.split(",")
        reference[int(frame)] = value
    for f in clip["frames"]:
        distance = bin(int(f["pdq"], 16) ^ int(reference[f["frame"]], 16)).count("1")
        assert distance <= 31, (f["frame"], distance)
    cut = rows["cut.mp4"]
    assert cut["frames"] and "error" in cut and cut["md5"]
    half = json.loads(
        run("hash", "clip.bin", "--frame-interval", "0.5", "--sampling", "exact").stdout
    )
    assert half["sampling"] == "exact"
    assert [f["frame"] for f in half["frames"]] == list(range(0, 564, 15))  # 564 frames
    assert run("hash", "clip.bin", "--sampling", "every").returncode == 2
