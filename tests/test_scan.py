"""An investigator's story: scan seized media, get known / ignorable / NEW first, check the case.

All media are generated benign pictures; the "known" list is built from some of them.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

from PIL import Image, ImageOps

from hashwatch.app import Hashwatch
from hashwatch.lists.formats import open_list
from hashwatch.lists.model import ListKind
from hashwatch.report.manifest import verify_case
from tests.media import jpeg_bytes, scene

ROOT = Path(__file__).resolve().parents[1]


def _exif_jpeg(img: Image.Image, serial: str) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "BenignCam"
    exif[0x0110] = "Model 7"
    exif.get_ifd(0x8769)[0xA431] = serial
    exif.get_ifd(0x8769)[0x9003] = "2026:01:02 03:04:05"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, exif=exif)
    return buf.getvalue()


def build_evidence(root: Path) -> dict[str, str]:
    """A small seized-device stand-in. Returns {name: expected status}."""
    (root / "DCIM").mkdir(parents=True)
    (root / "Downloads").mkdir()
    (root / "system").mkdir()
    expected: dict[str, str] = {}
    known0 = jpeg_bytes(scene(0))
    (root / "DCIM" / "copy-of-known.jpg").write_bytes(known0)
    expected["DCIM/copy-of-known.jpg"] = "known"
    ImageOps.mirror(scene(1)).save(root / "Downloads" / "flipped.jpg", "JPEG", quality=90)
    expected["Downloads/flipped.jpg"] = "known"
    (root / "Downloads" / "renamed.dll").write_bytes(jpeg_bytes(scene(2).resize((300, 225))))
    expected["Downloads/renamed.dll"] = "known"
    # Nested archives: zip > tar.gz > known picture, and a new picture.
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for name, data in (("deep/known.jpg", known0), ("deep/new.png", _png(scene(50)))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(root / "Downloads" / "bundle.zip", "w") as zf:
        zf.writestr("inner/pack.tar.gz", inner.getvalue())
        zf.writestr("../../escape.txt", b"a member name that points outside")
    expected["Downloads/bundle.zip!/inner/pack.tar.gz!/deep/known.jpg"] = "known"
    expected["Downloads/bundle.zip!/inner/pack.tar.gz!/deep/new.png"] = "new"
    # New material: two near-duplicates (one cluster) and a camera original with EXIF.
    (root / "DCIM" / "new-a.jpg").write_bytes(jpeg_bytes(scene(60)))
    (root / "DCIM" / "new-a-small.jpg").write_bytes(jpeg_bytes(scene(60).resize((320, 240)), 70))
    (root / "DCIM" / "camera.jpg").write_bytes(_exif_jpeg(scene(61), "SN-0042"))
    for name in ("DCIM/new-a.jpg", "DCIM/new-a-small.jpg", "DCIM/camera.jpg"):
        expected[name] = "new"
    (root / "system" / "libbenign.so").write_bytes(b"\x7fELF" + bytes(range(256)) * 20)
    expected["system/libbenign.so"] = "ignorable"
    (root / "notes.txt").write_text("shopping list\n")
    expected["notes.txt"] = "other"
    (root / "DCIM" / "truncated.jpg").write_bytes(jpeg_bytes(scene(70))[:700])
    expected["DCIM/truncated.jpg"] = "error"
    (root / "empty.bin").write_bytes(b"")
    expected["empty.bin"] = "other"
    return expected


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def make_lists(hw: Hashwatch, tmp: Path) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    rows = ["md5,pdq,category,series"]
    for seed in (0, 1, 2):
        ref = tmp / f"ref-{seed}.jpg"
        ref.write_bytes(jpeg_bytes(scene(seed)))
        fs = next(iter(hw.hash_paths([ref])))
        assert fs.digests and fs.pdq
        rows.append(f"{fs.digests.md5},{fs.pdq.hash},1,series-{seed}")
    (tmp / "known.csv").write_text("\n".join(rows) + "\n")
    hw.lists.import_file("known-pictures", tmp / "known.csv", kind=ListKind.KNOWN)
    lib = b"\x7fELF" + bytes(range(256)) * 20
    import hashlib

    (tmp / "software.txt").write_text(f"sha1 {hashlib.sha1(lib).hexdigest()}\n")
    hw.lists.import_file("software", tmp / "software.txt", kind=ListKind.IGNORABLE)


def read_results(case: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    out = {}
    for line in (case / "results.jsonl").read_text().splitlines():
        item = json.loads(line)
        out[item["path"]] = item
    return out


def test_scan_triages_known_ignorable_new_and_errors(sqlite_hw: Hashwatch, tmp_path: Path) -> None:
    hw = sqlite_hw
    make_lists(hw, tmp_path / "lists")
    evidence = tmp_path / "seized"
    expected = build_evidence(evidence)
    outcome = hw.scan([evidence], tmp_path / "case", workers=2)
    results = read_results(tmp_path / "case")
    by_rel = {p.removeprefix(str(evidence) + "/"): r for p, r in results.items()}
    for name, status in expected.items():
        assert by_rel[name]["status"] == status, (name, by_rel[name])
    flipped = by_rel["Downloads/flipped.jpg"]["matches"][0]
    assert flipped["list"] == "known-pictures" and flipped["variant"]
    assert by_rel["DCIM/truncated.jpg"]["error"]
    assert by_rel["DCIM/truncated.jpg"]["md5"]  # digests survive a decode error
    assert by_rel["Downloads/bundle.zip"]["is_archive"] is True
    escape = [r for p, r in by_rel.items() if p.endswith("escape.txt")]
    assert escape and escape[0]["note"] == "unsafe member name"
    assert not (tmp_path / "escape.txt").exists() and not (evidence.parent / "escape.txt").exists()
    # Near-duplicates share a cluster; the camera original (EXIF leads) is reviewed first.
    a, small = by_rel["DCIM/new-a.jpg"], by_rel["DCIM/new-a-small.jpg"]
    assert a["cluster"] == small["cluster"] is not None
    camera = by_rel["DCIM/camera.jpg"]
    assert camera["cluster"] == 1
    assert camera["exif"]["serial"] == "SN-0042" and camera["exif"]["make"] == "BenignCam"
    assert outcome.summary.new_clusters == 3
    assert outcome.summary.camera_serials == {"BenignCam Model 7 #SN-0042": 1}
    assert outcome.summary.by_status["known"] == 4
    # The case re-imports, the report stands alone, the manifest verifies.
    case = open_list(tmp_path / "case" / "case.vics.json")
    md5s = {r.hash_of(r.hashes[0][0]) for r in case.records}
    assert by_rel["DCIM/copy-of-known.jpg"]["md5"] in md5s
    html = (tmp_path / "case" / "report.html").read_text()
    assert 'src="http' not in html and 'href="http' not in html  # opens offline
    assert html.index('id="new"') < html.index('id="known"') < html.index('id="errors"')
    assert verify_case(tmp_path / "case").ok


def test_scan_leaves_evidence_untouched(sqlite_hw: Hashwatch, tmp_path: Path) -> None:
    make_lists(sqlite_hw, tmp_path / "lists")
    evidence = tmp_path / "seized"
    build_evidence(evidence)
    files = sorted(p for p in evidence.rglob("*") if p.is_file())
    content = {p: p.read_bytes() for p in files}
    old = 1_000_000_000
    for n, path in enumerate(files):
        os.utime(path, (old, old + 1000 + n))  # atime before mtime: a read would move it
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_atime_ns) for p in files}
    sqlite_hw.scan([evidence], tmp_path / "case", workers=1)
    after = {p: (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_atime_ns) for p in files}
    assert after == before
    assert {p: p.read_bytes() for p in files} == content


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hashwatch", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_killed_scan_resumes_without_gaps_or_duplicates(tmp_path: Path) -> None:
    evidence = tmp_path / "seized"
    evidence.mkdir()
    for n in range(240):
        (evidence / f"img-{n:04d}.jpg").write_bytes(jpeg_bytes(scene(1000 + n, (160, 120)), 80))
    env = {
        **os.environ,
        "HASHWATCH_DATA_DIR": str(tmp_path / "data"),
        "HASHWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'hw.sqlite3'}",
    }
    case = tmp_path / "case"
    proc = _cli(
        "scan", str(evidence), "--out", str(case), "--workers", "1", "--unit-files", "8", env=env
    )
    state = case / "scan-state.sqlite3"
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists():
            try:
                with sqlite3.connect(state) as conn:
                    done = conn.execute("SELECT count(*) FROM done").fetchone()[0]
            except sqlite3.Error:
                done = 0
            if done >= 40:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the scan finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < done < 240
    again = _cli("scan", str(evidence), "--out", str(case), "--resume", "--workers", "2", env=env)
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    lines = (case / "results.jsonl").read_text().splitlines()
    paths = [json.loads(line)["path"] for line in lines]
    assert len(paths) == len(set(paths)) == 240
    assert sorted(paths) == sorted(str(p) for p in evidence.iterdir())
    assert verify_case(case).ok
    events = [json.loads(line)["event"] for line in (case / "audit.log").read_text().splitlines()]
    assert events[0] == "scan.started" and "scan.resumed" in events


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge canvas (a decompression bomb): no pixel data needed."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def test_hostile_evidence_becomes_errors_and_the_scan_finishes(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    evidence = tmp_path / "seized"
    (evidence / "loop").mkdir(parents=True)
    (evidence / "loop" / "again").symlink_to(evidence / "loop")  # a symlink loop
    os.mkfifo(evidence / "pipe")  # opening it would block a naive reader
    (evidence / "bomb.png").write_bytes(_png_header_claiming(100_000, 100_000))
    with (
        zipfile.ZipFile(evidence / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("zeros.bin", "w") as member,
    ):
        block = bytes(1 << 20)
        for _ in range(300):
            member.write(block)
    (evidence / "zero.jpg").write_bytes(b"")
    (evidence / "fine.jpg").write_bytes(jpeg_bytes(scene(80)))
    outcome = sqlite_hw.scan([evidence], tmp_path / "case", workers=1)
    results = {
        Path(p).relative_to(evidence).as_posix(): r
        for p, r in read_results(tmp_path / "case").items()
    }
    assert results["loop/again"]["status"] == "error" and "link" in results["loop/again"]["error"]
    assert results["pipe"]["status"] == "error" and "md5" not in results["pipe"]
    assert results["bomb.png"]["status"] == "error" and results["bomb.png"]["md5"]
    assert "zip bomb" in results["bomb.zip!/zeros.bin"]["error"]
    assert results["zero.jpg"]["status"] == "other" and results["zero.jpg"]["size"] == 0
    assert results["fine.jpg"]["status"] == "new"
    assert outcome.summary.errors >= 3
    assert verify_case(tmp_path / "case").ok


class _RecordingProgress:
    """What a person watching the bar would see: each advance, and how many files the scan
    had stored (finished units) at that moment."""

    def __init__(self, case: Path) -> None:
        self.state = case / "scan-state.sqlite3"
        self.total = 0
        self.advances: list[tuple[int, int, int]] = []

    def start(self, files: int, total_bytes: int) -> None:
        self.total = files

    def advance(self, files: int, nbytes: int) -> None:
        with sqlite3.connect(self.state) as conn:
            stored = conn.execute("SELECT count(*) FROM done").fetchone()[0]
        self.advances.append((files, nbytes, stored))

    def phase(self, text: str) -> None:
        pass


def test_scan_progress_moves_file_by_file_not_unit_by_unit(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    evidence = tmp_path / "seized"
    evidence.mkdir()
    sizes = []
    for n in range(12):
        data = jpeg_bytes(scene(4000 + n, (120, 90)), 80)
        (evidence / f"img-{n:02d}.jpg").write_bytes(data)
        sizes.append(len(data))
    # In process, one unit of 12 files: every file moves the bar before the unit is stored.
    one_unit = _RecordingProgress(tmp_path / "case-1")
    sqlite_hw.scan([evidence], tmp_path / "case-1", workers=1, progress=one_unit)
    assert one_unit.total == 12
    assert [files for files, _, _ in one_unit.advances] == [1] * 12
    assert sorted(nbytes for _, nbytes, _ in one_unit.advances) == sorted(sizes)
    assert {stored for _, _, stored in one_unit.advances} == {0}  # the unit was not done yet
    # Two workers, units of 5: still one file at a time, from the worker processes.
    pooled = _RecordingProgress(tmp_path / "case-2")
    sqlite_hw.scan([evidence], tmp_path / "case-2", workers=2, unit_files=5, progress=pooled)
    assert [files for files, _, _ in pooled.advances] == [1] * 12
    assert sum(nbytes for _, nbytes, _ in pooled.advances) == sum(sizes)
