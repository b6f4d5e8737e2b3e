"""An investigator's story with videos: scan seized media holding videos, find the known ones
(a copy, re-encodes, one inside a zip), see partial re-use of a known video, and review new
videos by their contact sheets.

Every video is generated here: benign coloured shapes moving over a generated picture. The
"known" list is built from one of them with ``hashwatch lists add-media``.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.formats import open_list
from hashwatch.matching.match import VideoFacts, VideoSegment
from hashwatch.matching.matcher import Match, MatchResult
from hashwatch.report.manifest import verify_case
from hashwatch.scan.cluster import cluster_new_media
from hashwatch.scan.model import ItemRecord, ItemStatus
from hashwatch.scan.state import ScanState
from hashwatch.signals.contact_sheet import contact_sheet_jpeg
from hashwatch.signals.exif import THUMBNAIL_SIZE
from hashwatch.signals.types import HashType
from hashwatch.triage import decide_status
from tests.media import jpeg_bytes, scene
from tests.test_report_outputs import _Collector

ROOT = Path(__file__).resolve().parents[1]
W, H = 160, 120
FPS = 10

# -- benign generated videos ----------------------------------------------------------------

_BACKGROUNDS: dict[int, np.ndarray[Any, Any]] = {}


def _frame(t: float, seed: int) -> np.ndarray[Any, Any]:
    """A view panning over a generated picture twice the frame's size, with two moving discs.

    Slow, as real footage is: frames a tenth of a second apart are within PDQ's threshold (31
    bits), frames a second apart are not."""
    t *= 0.2
    if seed not in _BACKGROUNDS:
        _BACKGROUNDS[seed] = np.asarray(scene(seed, (2 * W, 2 * H)), dtype=np.uint8)
    x0 = int(W * 0.45 * (1 + np.sin(0.5 * t)))
    y0 = int(H * 0.45 * (1 + np.cos(0.35 * t)))
    rgb = _BACKGROUNDS[seed][y0 : y0 + H, x0 : x0 + W].copy()
    yy, xx = np.mgrid[0:H, 0:W]
    for k in range(2):
        cx = W * (0.5 + 0.35 * np.sin(1.1 * t + k * 2.1 + seed))
        cy = H * (0.5 + 0.35 * np.cos(0.8 * t + k * 1.3))
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (H * (0.12 + 0.05 * k)) ** 2
        rgb[disc] = (255 - 90 * k, 40 + 120 * k, (60 * seed) % 256)
    return rgb


def make_video(
    parts: list[tuple[int, float]], size: tuple[int, int] = (W, H), crf: int = 23
) -> bytes:
    """An H.264 MP4 (index first, so a truncated copy stays readable) of ``parts``: (seed,
    seconds) each, every part starting at its own time 0; scaled to ``size``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        _encode(path, parts, size, crf)
        return path.read_bytes()


def _encode(path: Path, parts: list[tuple[int, float]], size: tuple[int, int], crf: int) -> None:
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": str(crf), "g": str(2 * FPS)}
        for seed, seconds in parts:
            for i in range(round(seconds * FPS)):
                frame = av.VideoFrame.from_ndarray(_frame(i / FPS, seed), "rgb24")
                frame = frame.reformat(width=size[0], height=size[1])
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# -- the story's evidence ---------------------------------------------------------------------

KNOWN = "known-copy.mp4"
EXPECTED = {
    "DCIM/known-copy.mp4": "known",  # the known video itself
    "DCIM/reencoded.mp4": "known",  # larger, lower quality: known by its frames
    "Downloads/clips.zip!/clips/small.mp4": "known",  # another encode, inside a zip
    "Downloads/excerpt.mp4": "new",  # its first 4 s are the known video's: a partial match
    "Downloads/holiday.mp4": "new",
    "Downloads/holiday-small.mp4": "new",  # a smaller copy of holiday.mp4: same cluster
    "Downloads/cut.mp4": "new",  # truncated: its readable frames are hashed, with an error
    "Downloads/broken.mp4": "error",  # not a readable video at all
    "DCIM/photo.jpg": "new",
}


def build_evidence(root: Path, known: bytes) -> None:
    (root / "DCIM").mkdir(parents=True)
    (root / "Downloads").mkdir()
    (root / "DCIM" / KNOWN).write_bytes(known)
    (root / "DCIM" / "reencoded.mp4").write_bytes(make_video([(1, 10)], (240, 180), crf=30))
    with zipfile.ZipFile(root / "Downloads" / "clips.zip", "w") as zf:
        zf.writestr("clips/small.mp4", make_video([(1, 10)], (200, 150), crf=28))
    (root / "Downloads" / "excerpt.mp4").write_bytes(make_video([(1, 4), (2, 6)]))
    (root / "Downloads" / "holiday.mp4").write_bytes(make_video([(3, 8)]))
    (root / "Downloads" / "holiday-small.mp4").write_bytes(make_video([(3, 8)], (128, 96), 28))
    cut = make_video([(5, 10)])
    (root / "Downloads" / "cut.mp4").write_bytes(cut[: len(cut) // 2])
    (root / "Downloads" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(4000))
    (root / "DCIM" / "photo.jpg").write_bytes(jpeg_bytes(scene(40)))


def _cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hashwatch", *args], env=env, cwd=ROOT, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _state(files: list[Path]) -> dict[Path, tuple[bytes, int, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_atime_ns) for p in files}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The known list, the evidence, and one real ``hashwatch scan`` of it (CLI)."""
    tmp = tmp_path_factory.mktemp("video-story")
    env = {
        **os.environ,
        "HASHWATCH_DATA_DIR": str(tmp / "data"),
        "HASHWATCH_DATABASE_URL": f"sqlite:///{tmp / 'hw.sqlite3'}",
    }
    known = make_video([(1, 10)])
    (tmp / "reference").mkdir()
    (tmp / "reference" / "benign-known.mp4").write_bytes(known)
    _cli("lists", "add-media", "known-videos", str(tmp / "reference"), "--category", "1", env=env)
    evidence = tmp / "seized"
    build_evidence(evidence, known)
    files = sorted(p for p in evidence.rglob("*") if p.is_file())
    old = 1_000_000_000
    for n, path in enumerate(files):
        os.utime(path, (old, old + 1000 + n))  # atime before mtime: a read would move it
    before = _state(files)
    case = tmp / "case"
    out = _cli("scan", str(evidence), "--out", str(case), "--workers", "2", env=env)
    results = {}
    for line in (case / "results.jsonl").read_text().splitlines():
        item = json.loads(line)
        results[item["path"].removeprefix(str(evidence) + "/")] = item
    return {
        "tmp": tmp,
        "env": env,
        "evidence": evidence,
        "case": case,
        "results": results,
        "summary": json.loads(out)["summary"],
        "before": before,
        "after": _state(files),
    }


def _video_match(item: dict[str, Any]) -> dict[str, Any]:
    return next(m for m in item["matches"] if "video" in m)


def test_known_videos_reencodes_and_zip_members_are_found(story: dict[str, Any]) -> None:
    results = story["results"]
    got = {path: item["status"] for path, item in results.items() if path in EXPECTED}
    assert got == EXPECTED
    exact = results["DCIM/known-copy.mp4"]
    assert {m["hash_type"] for m in exact["matches"]} >= {"md5", "pdq"}
    for path in (
        "DCIM/known-copy.mp4",
        "DCIM/reencoded.mp4",
        "Downloads/clips.zip!/clips/small.mp4",
    ):
        match = _video_match(results[path])
        assert match["list"] == "known-videos" and match["kind"] == "known"
        assert match["partial"] is False
        assert match["video"]["compared_pct"] >= 80 and match["video"]["query_pct"] >= 80
        assert match["category"] == "1"
    summary = story["summary"]
    assert summary["videos_by_status"] == {"known": 3, "new": 4, "error": 1}
    assert summary["videos_partial"] == 1
    assert summary["known_by_list"] == {"known-videos": 3}


def test_partial_reuse_is_shown_with_shares_and_segments_but_stays_new(
    story: dict[str, Any],
) -> None:
    item = story["results"]["Downloads/excerpt.mp4"]
    assert item["status"] == "new"
    match = _video_match(item)
    assert match["partial"] is True and match["kind"] == "known"
    video = match["video"]
    assert 30 <= video["query_pct"] <= 50  # 4 of its 10 seconds
    assert 30 <= video["compared_pct"] <= 50  # 4 of the known video's 10 seconds
    assert video["query_frames"] == 10
    [segment] = video["segments"]
    assert segment["query_start"] == 0.0 and 2.9 <= segment["query_end"] <= 4.0
    assert segment["ref_start"] <= 0.5 and 2.5 <= segment["ref_end"] <= 4.5
    assert "videos_partial" in story["summary"]


def test_results_carry_frames_and_errors_but_no_pictures(story: dict[str, Any]) -> None:
    results = story["results"]
    item = results["Downloads/holiday.mp4"]
    assert item["media_type"] == "video" and item["mime"] == "video/mp4"
    assert item["duration"] == pytest.approx(8.0, abs=0.2) and item["fps"] == pytest.approx(10)
    assert (item["width"], item["height"]) == (W, H)
    times = [f["timestamp"] for f in item["frames"]]
    assert len(times) == 8 and times[0] == 0.0  # one frame a second
    assert all(0.5 <= b - a <= 1.5 for a, b in itertools.pairwise(times))
    assert all(f["frame"] == round(f["timestamp"] * FPS) for f in item["frames"])
    assert item["sampling"] in ("fast", "exact")
    assert all(re.fullmatch("[0-9a-f]{64}", f["pdq"]) for f in item["frames"])
    assert item["pdq_policy"] and "pdq" not in item
    cut = results["Downloads/cut.mp4"]
    assert cut["error"] and 0 < len(cut["frames"]) < 10
    broken = results["Downloads/broken.mp4"]
    assert broken["error"] and not broken.get("frames")
    image = results["DCIM/photo.jpg"]
    assert "frames" not in image and "duration" not in image  # images read as before
    text = (story["case"] / "results.jsonl").read_text()
    assert "thumbnail" not in text and "base64" not in text and "/9j/" not in text


def test_new_videos_are_clustered_and_partial_reuse_is_reviewed_first(
    story: dict[str, Any],
) -> None:
    results = story["results"]
    assert results["Downloads/excerpt.mp4"]["cluster"] == 1
    assert (
        results["Downloads/holiday.mp4"]["cluster"]
        == results["Downloads/holiday-small.mp4"]["cluster"]
    )
    clusters = {r["cluster"] for r in results.values() if r["status"] == "new"}
    assert len(clusters) == 4  # excerpt, the holiday pair, cut, photo
    assert verify_case(story["case"]).ok


def _sheets(html: str) -> list[bytes]:
    """The contact sheets in the report: blurred images whose alt names a video."""
    found = re.findall(
        r'<img class="blur" src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)" alt="contact sheet',
        html,
    )
    return [base64.b64decode(x) for x in found]


def test_report_shows_blurred_contact_sheets_and_video_matches(story: dict[str, Any]) -> None:
    html = (story["case"] / "report.html").read_text()
    parser = _Collector()  # well-formed: every element closed where it opened
    parser.feed(html)
    parser.close()
    assert parser.stack == []
    sheets = _sheets(html)
    # 3 known + 4 new videos have a sheet (the broken one has none), each in a reveal frame.
    assert len(sheets) == 7
    for data in sheets:
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "JPEG" and max(im.size) <= THUMBNAIL_SIZE
    assert html.count('<input type="checkbox" class="reveal"') >= 8  # sheets + the photo
    assert "<script" not in html.lower()
    assert 'id="videos"' in html and "Videos by status" in html
    assert "partial (no alert)" in html
    assert "shares 40 % of its frames with a known video" in html
    assert re.search(r"0:00–0:0[34] \(known video 0:00–0:0[345]\)", html)
    assert "Read in part" in html and "cut.mp4" in html


def test_evidence_is_unchanged(story: dict[str, Any]) -> None:
    assert story["after"] == story["before"]


def test_case_carries_frames_and_reimports_as_a_list_that_knows_the_video(
    story: dict[str, Any],
) -> None:
    case, env, tmp = story["case"], story["env"], story["tmp"]
    parsed = open_list(case / "case.vics.json")
    by_md5 = {e.hash_of(HashType.MD5): e for e in parsed.records}
    holiday = story["results"]["Downloads/holiday.mp4"]
    entry = by_md5[holiday["md5"]]
    assert [f.pdq for f in entry.frames] == [f["pdq"] for f in holiday["frames"]]
    assert [f.timestamp for f in entry.frames] == [f["timestamp"] for f in holiday["frames"]]
    props = {p["PropertyName"]: p["PropertyValue"] for p in entry.extra["MediaMetadata"]}
    assert props["hashwatch.status"] == "new" and props["hashwatch.frames"] == "8"
    excerpt = by_md5[story["results"]["Downloads/excerpt.mp4"]["md5"]]
    props = {p["PropertyName"]: p["PropertyValue"] for p in excerpt.extra["MediaMetadata"]}
    assert "known-videos" in props["hashwatch.partial_match"]
    known = by_md5[story["results"]["DCIM/known-copy.mp4"]["md5"]]
    assert known.extra["IsPrecategorized"] is True and known.frames
    # The known videos are pre-categorised leads: imported when the curator asks for them;
    # the new videos (holiday.mp4 among them) are uncategorised and never become known.
    leads = ("--name", "from-case", "--include-precategorized")
    out = _cli("lists", "import", str(case / "case.vics.json"), *leads, env=env)
    assert json.loads(out)["skipped_uncategorised"] > 0
    # A copy of the known video that was never scanned (other size and quality): known now by
    # the frames the case carried; a copy of holiday.mp4 stays new.
    fresh = tmp / "fresh" / "known-again.mp4"
    fresh.parent.mkdir()
    fresh.write_bytes(make_video([(1, 10)], (176, 132), crf=26))
    holiday_again = tmp / "fresh" / "holiday-again.mp4"
    holiday_again.write_bytes(make_video([(3, 8)], (176, 132), crf=26))
    hw = Hashwatch(
        Settings(
            database_url=env["HASHWATCH_DATABASE_URL"], data_dir=Path(env["HASHWATCH_DATA_DIR"])
        )
    )
    try:
        matcher = hw.matcher(["from-case"])
        done = {
            Path(m.signals.path).name: m for m in hw.match_paths([fresh, holiday_again], matcher)
        }
        found, again = done["known-again.mp4"], done["holiday-again.mp4"]
    finally:
        hw.close()
    assert "known" in found.result.kinds
    match = next(m for m in found.result.matches if m.video is not None)
    assert match.list == "from-case" and not match.partial
    assert not again.result.matches


# -- the parts, one by one ------------------------------------------------------------------


def test_contact_sheet_is_small_and_never_raises(tmp_path: Path) -> None:
    data = make_video([(7, 6)])
    sheet = contact_sheet_jpeg(data)
    assert sheet is not None
    with Image.open(io.BytesIO(sheet)) as im:
        assert im.format == "JPEG" and max(im.size) <= THUMBNAIL_SIZE
        tiles = np.asarray(im.convert("L"), dtype=np.float32)
    assert tiles.std() > 10  # frames, not a blank sheet
    path = tmp_path / "v.mp4"
    path.write_bytes(data)
    assert contact_sheet_jpeg(path) is not None
    with path.open("rb") as fh:
        assert contact_sheet_jpeg(fh) is not None
    assert contact_sheet_jpeg(data[: len(data) // 2]) is not None  # the readable part
    for bad in (b"", os.urandom(3000), b"\x00\x00\x00\x18ftypisom" + bytes(500)):
        assert contact_sheet_jpeg(bad) is None
    assert contact_sheet_jpeg(tmp_path / "missing.mp4") is None


def test_partial_matches_never_make_a_file_known() -> None:
    record = ItemRecord(path="v.mp4", root="/e", media_type="video", frames=[])

    def match(partial: bool, share: float) -> Match:
        facts = VideoFacts(share, share, 10, 4, 10, 4, "compared >= 80%")
        return Match("l", "known", "pdq", 3, None, "US", None, 1, partial=partial, video=facts)

    partial, decisive = match(True, 40.0), match(False, 90.0)
    assert decide_status(record, MatchResult([partial])) is ItemStatus.NEW
    assert decide_status(record, MatchResult([partial, decisive])) is ItemStatus.KNOWN
    damaged = ItemRecord(path="c.mp4", root="/e", media_type="video", error="truncated")
    assert decide_status(damaged, MatchResult()) is ItemStatus.ERROR
    damaged.frames = [{"frame": 0, "timestamp": 0.0, "pdq": "0" * 64, "quality": 90}]
    assert decide_status(damaged, MatchResult()) is ItemStatus.NEW


def _frames(hashes: list[str]) -> list[dict[str, Any]]:
    return [
        {"frame": n, "timestamp": float(n), "pdq": h, "quality": 90} for n, h in enumerate(hashes)
    ]


def test_videos_cluster_by_shared_frames_and_images_still_cluster() -> None:
    rng = np.random.default_rng(3)
    pool = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(40)]

    def video(name: str, hashes: list[str]) -> ItemRecord:
        return ItemRecord(
            path=name, root="/e", media_type="video", md5=name, frames=_frames(hashes)
        )

    items = [
        video("a.mp4", pool[0:10]),
        video("a-excerpt.mp4", pool[2:6]),  # all its frames are a's: joins a
        video("b.mp4", pool[10:20]),
        video("b-intro.mp4", [pool[10], *pool[20:29]]),  # one shared frame: stays apart
        ItemRecord(path="p.jpg", root="/e", media_type="image", md5="p", pdq=pool[30]),
        ItemRecord(path="p2.jpg", root="/e", media_type="image", md5="p2", pdq=pool[30]),
    ]
    clusters = cluster_new_media(items)
    groups = sorted(sorted(c.members) for c in clusters)
    assert groups == [["a-excerpt.mp4", "a.mp4"], ["b-intro.mp4"], ["b.mp4"], ["p.jpg", "p2.jpg"]]
    joined = next(c for c in clusters if "a.mp4" in c.members)
    assert "2 videos sharing most of their frames" in joined.reasons


def _partial_match() -> Match:
    segment = VideoSegment(0.0, 3.0, 4, 0.0, 3.1, ("2",))
    rule = "compared >= 80% of the known video's frames"
    segments = (segment, VideoSegment(7.0, 7.0, 1))
    facts = VideoFacts(40.0, 38.5, 10, 4, 10, 4, rule, segments, segments_left_out=2)
    return Match(
        "l", "known", "pdq", 3, "1", "custom", None, 9, list_version=2, partial=True, video=facts
    )


def test_video_records_survive_the_scan_state(tmp_path: Path) -> None:
    record = ItemRecord(
        path="/e/v.mp4", root="/e", media_type="video", duration=8.0, fps=10.0,
        frames=_frames(["ab" * 32, "cd" * 32]), pdq_policy="fast-1", error="truncated",
        matches=[_partial_match()],
        thumbnail=b"\xff\xd8\xffsheet",
    )  # fmt: skip
    state = ScanState(tmp_path)
    try:
        state.save_unit(["k"], [record])
        [back] = list(state.records(thumbnails=True))
    finally:
        state.close()
    assert back == record and back.thumbnail == record.thumbnail
    assert "thumbnail" not in json.dumps(back.as_json())


def test_frame_interval_zero_hashes_videos_as_files_only(story: dict[str, Any]) -> None:
    """--frame-interval 0: digests only (exact matches still find the known file)."""
    case = story["tmp"] / "case-no-frames"
    _cli(
        "scan", str(story["evidence"] / "DCIM"), "--out", str(case), "--frame-interval", "0",
        "--list", "known-videos", env=story["env"],
    )  # fmt: skip
    items = {
        Path(item["path"]).name: item
        for item in map(json.loads, (case / "results.jsonl").read_text().splitlines())
    }
    assert not any("frames" in item for item in items.values())
    assert items[KNOWN]["status"] == "known"  # by its MD5
    assert {m["hash_type"] for m in items[KNOWN]["matches"]} >= {"md5"}
    assert items["reencoded.mp4"]["status"] == "new"
