"""A framed copy of a listed picture — padded by 10 % with a uniform border — is found by plain
PDQ lists (no local features): every query also carries the PDQ of the picture inside its
border, and the match says it was found on the trimmed picture.

Pictures are generated here (gradients, shapes, a few words): benign stand-ins for known
material.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from hashwatch.app import Hashwatch
from hashwatch.signals.hasher import HashOptions, hash_file
from tests.inprocess_cli import Run, run
from tests.media import write_image
from tests.test_robust_matching import pad, picture

__all__ = ["run"]  # the fixture


def framed(img: Image.Image, share: float, colour: tuple[int, int, int]) -> Image.Image:
    out = pad(img, share)
    if colour != (0, 0, 0):
        inner = Image.new("RGB", out.size, colour)
        w, h = img.size
        inner.paste(img, ((out.width - w) // 2, (out.height - h) // 2))
        out = inner
    return out


def test_match_finds_a_padded_copy_on_its_trimmed_picture(run: Run, tmp_path: Path) -> None:
    known = write_image(tmp_path / "known" / "k.png", picture(31), "PNG")
    seized = tmp_path / "seized"
    write_image(seized / "black.jpg", framed(picture(31), 0.10, (0, 0, 0)), quality=90)
    write_image(seized / "white.jpg", framed(picture(31), 0.10, (255, 255, 255)), quality=90)
    write_image(seized / "other.jpg", framed(picture(32), 0.10, (0, 0, 0)), quality=90)
    assert run("lists", "create", "plain").returncode == 0
    assert run("lists", "add-media", "plain", str(known)).returncode == 0

    out = run("match", str(seized))
    assert out.returncode == 0, out.stderr
    results = {Path(r["path"]).name: r for r in map(json.loads, out.stdout.splitlines())}
    assert results["other.jpg"]["matches"] == []
    for name in ("black.jpg", "white.jpg"):
        (found,) = results[name]["matches"]
        assert found["list"] == "plain" and found["hash_type"] == "pdq"
        assert found["variant"] == "trimmed" and found["distance"] <= 31
        assert "local" not in found
        assert results[name]["pdq_trimmed"] != results[name]["pdq"]

    # Off: the framed copies are not matched (their own PDQ is far from the listed one).
    off = run("match", "--no-border-trim", str(seized))
    assert [json.loads(line)["matches"] for line in off.stdout.splitlines()] == [[], [], []]


def test_a_mirrored_padded_copy_names_both(sqlite_hw: Hashwatch, tmp_path: Path) -> None:
    img = framed(picture(33), 0.10, (0, 0, 0)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    copy = write_image(tmp_path / "m.jpg", img, quality=90)
    fs = hash_file(copy, HashOptions())
    plain = hash_file(copy, HashOptions(border_trim=False))
    assert fs.trimmed is not None and plain.trimmed is None
    assert fs.pdq == plain.pdq  # the picture's own hash is unchanged
    unframed = write_image(tmp_path / "u.png", picture(33), "PNG")
    assert hash_file(unframed, HashOptions()).trimmed is None  # no border: nothing extra

    sqlite_hw.add_media("plain", [unframed])
    (matched,) = sqlite_hw.match_paths([copy], sqlite_hw.matcher())
    (found,) = [m for m in matched.result.matches if m.hash_type == "pdq"]
    assert found.variant is not None and found.variant.startswith("trimmed+flip")


def test_scan_finds_a_padded_copy_in_a_zip_by_plain_pdq(run: Run, tmp_path: Path) -> None:
    known = write_image(tmp_path / "known" / "k.png", picture(34), "PNG")
    evidence = tmp_path / "ev"
    write_image(evidence / "framed.jpg", framed(picture(34), 0.10, (0, 0, 0)), quality=90)
    member = write_image(tmp_path / "m.jpg", framed(picture(34), 0.10, (255, 255, 255)))
    with zipfile.ZipFile(evidence / "photos.zip", "w") as zf:
        zf.write(member, "inside/framed.jpg")
    write_image(evidence / "unrelated.jpg", picture(35))
    assert run("lists", "create", "plain").returncode == 0
    assert run("lists", "add-media", "plain", str(known)).returncode == 0

    scanned = run("scan", str(evidence), "-o", str(tmp_path / "case"), "-j", "1")
    assert scanned.returncode == 0, scanned.stderr
    lines = (tmp_path / "case" / "results.jsonl").read_text().splitlines()
    records = {Path(r["path"]).relative_to(evidence).as_posix(): r for r in map(json.loads, lines)}
    for name in ("framed.jpg", "photos.zip!/inside/framed.jpg"):
        record = records[name]
        assert record["status"] == "known", record
        assert [m["variant"] for m in record["matches"] if m["hash_type"] == "pdq"] == ["trimmed"]
    assert records["unrelated.jpg"]["status"] != "known"


def test_a_fault_in_the_border_trim_keeps_the_pictures_own_pdq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = write_image(tmp_path / "framed.jpg", framed(picture(33), 0.10, (0, 0, 0)), quality=90)
    expected = hash_file(copy, HashOptions(border_trim=False))

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("trim failed")

    monkeypatch.setattr("hashwatch.signals.hasher.trimmed_decode", broken)
    fs = hash_file(copy, HashOptions())
    assert fs.error is None
    assert fs.pdq is not None and expected.pdq is not None
    assert fs.pdq.hash == expected.pdq.hash
    assert fs.trimmed is None
