"""A curator puts known videos in lists; an examiner matches videos against them.

Every "known" video here is a generated benign clip (or Meta's BSD-licensed sample videos in
tests/data/video) standing in for known material. Each story runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from hashwatch.app import Hashwatch
from hashwatch.lists.formats import open_list
from hashwatch.lists.model import ListKind, VideoFrameHash
from hashwatch.matching.match import VideoFacts, VideoSegment
from hashwatch.matching.matcher import Match, MatchResult, Signal
from hashwatch.matching.video import frames_from_dicts
from hashwatch.signals.types import HashType
from hashwatch.signals.video import hash_video
from tests.clips import write_clip
from tests.media import jpeg_bytes, scene

DATA = Path(__file__).parent / "data" / "video"
KNOWN_SEEDS = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
OTHER_SEEDS = [41, 42, 43, 44, 45, 46]


def frames_of(path: Path) -> list[VideoFrameHash]:
    result = hash_video(path)
    assert result.frames, result.error
    return frames_from_dicts(result.frames)


def video_matches(result: MatchResult) -> list[Match]:
    return [m for m in result.matches if m.video is not None]


@pytest.fixture
def known_clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "known.mp4", KNOWN_SEEDS)


def test_reference_vpdq_file_matches_its_video_100_100(hw: Hashwatch) -> None:
    report = hw.lists.import_file("meta", DATA / "chair-19-sd-bar.vpdq.txt")
    assert (report.format, report.added) == ("vpdq", 1)
    result = hw.matcher().match_video(frames_of(DATA / "chair-19-sd-bar.mp4"))
    (match,) = video_matches(result)
    assert match.video is not None
    assert not match.partial and result.kinds == {"known"}
    assert (match.video.query_pct, match.video.compared_pct) == (100.0, 100.0)
    (segment,) = match.video.segments
    assert segment.query_start == 0.0 and segment.query_end == 18.0
    assert segment.ref_start == pytest.approx(0.0, abs=0.1)
    assert segment.ref_end == pytest.approx(18.0, abs=0.5)
    # Another video of other content matches nothing.
    assert hw.matcher().match_video(frames_of(DATA / "doorknob-hd-no-bar.mp4")).matches == []


def test_add_media_then_a_reencoded_copy_is_known(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    report, problems = hw.add_media("videos", [known_clip], category="1")
    assert problems == [] and report.added == 1
    (record,) = hw.lists.records("videos")
    assert record.hashes[0][0] is HashType.MD5
    assert len(record.frames) >= 40  # one frame every 0.1 s of 10 s, less duplicates
    assert record.extra["video"]["frames_kept"] == len(record.frames)
    copy = write_clip(tmp_path / "copy.mp4", KNOWN_SEEDS, size=(256, 192), crf=30, fps=15)
    result = hw.matcher().match_video(frames_of(copy))
    (match,) = video_matches(result)
    assert match.video is not None
    assert not match.partial and match.category == "1"
    assert match.video.compared_pct >= 80 and match.video.query_pct >= 80
    assert match.video.rule.startswith("compared >= 80%")
    unrelated = write_clip(tmp_path / "other.mp4", OTHER_SEEDS)
    assert hw.matcher().match_video(frames_of(unrelated)).matches == []


def test_partial_reuse_is_shown_with_segments_but_not_known(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    hw.add_media("videos", [known_clip])
    # 4 s of the known clip, then 6 s of other content.
    mixed = write_clip(tmp_path / "mixed.mp4", KNOWN_SEEDS[:4] + OTHER_SEEDS)
    result = hw.matcher().match_video(frames_of(mixed))
    (match,) = video_matches(result)
    assert match.video is not None
    assert match.partial and result.kinds == set()
    assert 30 <= match.video.query_pct <= 50
    assert 30 <= match.video.compared_pct <= 50
    (segment,) = match.video.segments
    assert (segment.query_start, segment.query_end) == (0.0, 3.0)
    assert segment.ref_start == pytest.approx(0.0, abs=0.2)
    assert segment.ref_end == pytest.approx(3.0, abs=1.0)
    assert match.as_dict()["partial"] is True
    # The curator lowers the list's video threshold: the same re-use now alerts.
    hw.lists.configure("videos", video_min_compared_pct=30)
    again = hw.matcher().match_video(frames_of(mixed))
    assert again.kinds == {"known"}
    # ... and a query threshold above what the clip reaches turns it partial again.
    hw.lists.configure("videos", video_min_query_pct=90)
    assert hw.matcher().match_video(frames_of(mixed)).kinds == set()


def test_matches_read_back_from_their_json_as_they_were(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    """What results.jsonl holds of a match is all of it: read back, it is the same match."""
    hw.add_media("videos", [known_clip], category="1")
    picture = tmp_path / "picture.jpg"
    picture.write_bytes(jpeg_bytes(scene(5)))
    hw.add_media("pictures", [picture], category="2")
    turned = tmp_path / "turned.jpg"
    turned.write_bytes(jpeg_bytes(scene(5).transpose(Image.Transpose.ROTATE_90)))
    mixed = write_clip(tmp_path / "mixed.mp4", KNOWN_SEEDS[:4] + OTHER_SEEDS)
    matcher = hw.matcher()
    frame = frames_of(known_clip)[5]
    matches = [
        *matcher.match_video(frames_of(mixed)).matches,  # partial, with segments
        *(m for f in hw.match_paths([known_clip, turned], matcher) for m in f.result.matches),
        *matcher.match_many([[Signal(HashType.PDQ, frame.pdq, frame.quality)]])[0].matches,
    ]
    assert any(m.partial and m.video and m.video.segments[0].ref_start is not None for m in matches)
    assert any(m.video is not None and not m.partial for m in matches)  # the known clip
    assert any(m.hash_type == "md5" and m.video is None for m in matches)  # same file
    assert any(m.variant == "rot270" for m in matches)  # the turned picture, turned back
    assert any(m.ref_time is not None for m in matches)  # a frame of the known video
    many = VideoSegment(1.0, 2.0, 2, categories=("2", "3"))
    long = VideoFacts(1.0, 2.0, 300, 3, 300, 3, "compared >= 80%", (many,), segments_left_out=40)
    matches.append(Match("l", "known", "pdq", 4, None, "US", None, 1, partial=True, video=long))
    for match in matches:
        written = json.dumps(match.as_dict())
        back = Match.from_dict(json.loads(written))
        assert back == match
        assert json.dumps(back.as_dict()) == written


def test_any_frame_matching_a_known_image_makes_the_video_known(
    hw: Hashwatch, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", OTHER_SEEDS)
    frames = frames_of(clip)
    still = tmp_path / "image.txt"
    still.write_text(f"pdq {frames[3].pdq}\n")
    hw.lists.import_file("images", still)
    result = hw.matcher().match_video(frames)
    (match,) = video_matches(result)
    assert match.video is not None
    assert not match.partial and match.video.rule == "a frame matches a known image"
    assert match.video.segments[0].query_start == pytest.approx(3.0, abs=0.01)
    assert match.ref_time is None


def test_negative_frames_are_not_counted_and_a_negative_video_suppresses(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    hw.add_media("videos", [known_clip])
    frames = frames_of(known_clip)
    blank = tmp_path / "blank.txt"
    blank.write_text("".join(f"pdq {f.pdq}\n" for f in frames[:2]))
    hw.lists.import_file("false-positives", blank, kind=ListKind.NEGATIVE)
    result = hw.matcher().match_video(frames)
    known = [m for m in video_matches(result) if m.kind == "known"]
    assert len(known) == 1 and known[0].video is not None
    assert known[0].video.matched_query_frames == len(frames) - 2
    assert [m.partial for m in result.matches if m.kind == "negative"] == [True, True]
    assert result.kinds == {"known"}
    # The whole clip listed as a known false positive suppresses the video's matches.
    hw.add_media("false-positives", [known_clip])
    suppressed = hw.matcher().match_video(frames)
    assert suppressed.kinds == {"negative"}
    assert [m.list for m in suppressed.matches] == ["false-positives"]
    assert any("entry" in n and "negative" in n for n in suppressed.notes)


def test_vics_segments_frames_and_vpdq_round_trip(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    hw.add_media("videos", [known_clip], category="1")
    out = tmp_path / "videos.json"
    hw.lists.export("videos", out, "vics2")
    media = json.loads(out.read_text())["value"][0]["Media"][0]
    frame_hashes = [a for a in media["AlternativeHashes"] if a["HashName"] == "vPDQ"]
    assert len(frame_hashes) >= 40 and frame_hashes[0]["HashValue"].count(",") == 3
    # A curator categorises seconds 2-4 of the video (VICS Segments) and re-imports.
    media["Segments"] = [{"Start": "00:00:02.0", "End": 4, "Category": 2}]
    out.write_text(json.dumps(json.loads(out.read_text()) | {"value": [{"Media": [media]}]}))
    hw.lists.import_file("categorised", out)
    result = hw.matcher(["categorised"]).match_video(frames_of(known_clip))
    (match,) = video_matches(result)
    assert match.video is not None
    assert match.video.segments[0].categories == ("2",)
    # vPDQ export keeps the key and the frames; re-importing it changes nothing.
    frames_file = tmp_path / "videos.vpdq.txt"
    assert hw.lists.export("videos", frames_file, "vpdq") == 1
    (back,) = open_list(frames_file).records
    (stored,) = hw.lists.records("videos")
    assert back.hashes == stored.hashes[:1] and back.frames == stored.frames
    hw.lists.import_file("from-vpdq", frames_file)
    assert hw.lists.import_file("from-vpdq", frames_file).changed is False
    (reread,) = hw.lists.records("from-vpdq")
    assert reread.frames == stored.frames


def test_video_frames_share_the_index_with_images(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    hw.add_media("videos", [known_clip])
    frame = frames_of(known_clip)[5]
    (result,) = hw.matcher().match_many([[Signal(HashType.PDQ, frame.pdq, frame.quality)]])
    (match,) = result.matches
    assert match.ref_time is not None and 4.5 <= match.ref_time <= 5.5
    assert match.as_dict()["ref_time"] == match.ref_time


def test_cli_add_media_and_match_a_video(tmp_path: Path, known_clip: Path) -> None:
    env = {
        "HASHWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'hw.sqlite3'}",
        "HASHWATCH_DATA_DIR": str(tmp_path / "data"),
        "PATH": str(Path(sys.executable).parent),
    }
    hashwatch = str(Path(sys.executable).parent / "hashwatch")
    added = subprocess.run(
        [hashwatch, "lists", "add-media", "known-videos", str(known_clip), str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(added.stdout)["added"] == 1
    assert "skipped" in added.stderr and "x" in added.stderr  # the missing path is reported
    mixed = write_clip(tmp_path / "mixed.mp4", KNOWN_SEEDS[:4] + OTHER_SEEDS)
    os.utime(mixed, (1_000_000_000, 1_000_000_100))  # atime before mtime: a read would move it
    matched = subprocess.run(
        [hashwatch, "match", str(known_clip), str(mixed)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    lines = [json.loads(line) for line in matched.stdout.splitlines()]
    assert [line["media_type"] for line in lines] == ["video", "video"]
    by_path = {Path(line["path"]).name: line for line in lines}
    known = [m for m in by_path["known.mp4"]["matches"] if m["hash_type"] == "pdq"]
    assert known[0]["partial"] is False and known[0]["video"]["compared_pct"] == 100.0
    assert {m["hash_type"] for m in by_path["known.mp4"]["matches"]} >= {"md5", "sha256"}
    (partial,) = by_path["mixed.mp4"]["matches"]
    assert partial["partial"] is True and partial["video"]["segments"]
    assert mixed.stat().st_atime_ns == 1_000_000_000 * 10**9  # evidence read without a trace


def test_service_matches_an_uploaded_video_and_alerts_only_on_known(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    from hashwatch.store.service import Role
    from tests.serve_helpers import client, make_key, receiver

    hw.add_media("videos", [known_clip], category="1")
    platform = make_key(hw, Role.MATCHER, "platform")
    admin = make_key(hw, Role.ADMIN, "ops")
    copy = write_clip(tmp_path / "copy.mp4", KNOWN_SEEDS, size=(256, 192), crf=30)
    mixed = write_clip(tmp_path / "mixed.mp4", KNOWN_SEEDS[:4] + OTHER_SEEDS)
    with client(hw, webhook_allow_hosts="127.0.0.1") as c, receiver() as rec:
        c.post("/v1/webhooks", headers=admin, json={"url": rec.url})
        partial = c.post(
            "/v1/match", headers=platform, files={"file": ("m.mp4", mixed.read_bytes())}
        )
        assert partial.status_code == 200, partial.text
        (p,) = partial.json()["matches"]
        assert p["partial"] is True and p["video"]["segments"]
        r = c.post("/v1/match", headers=platform, files={"file": ("c.mp4", copy.read_bytes())})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["signals"]["media_type"] == "video" and body["signals"]["frames"]
        (m,) = body["matches"]
        assert (m["list"], m["category"], m["partial"]) == ("videos", "1", False)
        assert m["video"]["compared_pct"] >= 80
        # One webhook event: the known copy, with its video facts; the partial one alerts nobody.
        deadline = time.monotonic() + 5
        while not rec.received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        events = [json.loads(body) for _, body in rec.received]
        # One event for the upload, listing its one decisive match.
        assert [[sent["entry_id"] for sent in e["matches"]] for e in events] == [[m["entry_id"]]]
        assert events[0]["matches"][0]["video"]["compared_pct"] == m["video"]["compared_pct"]


def test_curator_adds_a_video_entry_over_http(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    from hashwatch.store.service import Role
    from tests.serve_helpers import client, make_key

    curator = make_key(hw, Role.CURATOR, "cur")
    frames = [
        {"frame": f.frame, "timestamp": f.timestamp, "pdq": f.pdq, "quality": f.quality}
        for f in frames_of(known_clip)
    ]
    digest = "ab" * 16
    with client(hw) as c:
        assert c.post("/v1/lists", headers=curator, json={"name": "v"}).status_code == 201
        changed = c.patch("/v1/lists/v", headers=curator, json={"video_min_compared_pct": 60})
        assert changed.status_code == 200, changed.text
        entry = {"hashes": [{"type": "md5", "value": digest}], "frames": frames}
        added = c.post("/v1/lists/v/entries", headers=curator, json={"entries": [entry]})
        assert added.status_code == 201, added.text
        bad = {"hashes": [{"type": "md5", "value": digest}], "frames": [{"frame": 0}]}
        assert (
            c.post("/v1/lists/v/entries", headers=curator, json={"entries": [bad]}).status_code
            == 422
        )
    (record,) = hw.lists.records("v")
    assert len(record.frames) == len({f["pdq"] for f in frames})
    assert hw.lists.get("v").video_min_compared_pct == 60
    assert hw.matcher().match_video(frames_of(known_clip)).kinds == {"known"}


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_are_hashed_and_matched_as_clips(tmp_path: Path, fmt: str) -> None:
    import io

    from hashwatch.app import Hashwatch as App
    from hashwatch.config import Settings
    from hashwatch.signals.hasher import hash_stream
    from tests.media import scene

    pictures = [scene(60 + i, (200, 150)) for i in range(6)]
    buf = io.BytesIO()
    pictures[0].save(buf, fmt, save_all=True, append_images=pictures[1:], duration=500, loop=0)
    signals = hash_stream(io.BytesIO(buf.getvalue()), f"a.{fmt.lower()}")
    fields = signals.as_dict()
    assert fields["media_type"] == "image" and fields["pdq"]
    assert [f["timestamp"] for f in fields["frames"]] == [0.0, 1.0, 2.0]
    assert [f["frame"] for f in fields["frames"]] == [0, 2, 4]
    assert fields["pdq"] == fields["frames"][0]["pdq"]
    # The fifth picture is a known image: the animation is known through its frame.
    app = App(Settings(f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "d"))
    try:
        still = tmp_path / "known.txt"
        still.write_text(f"pdq {fields['frames'][2]['pdq']}\n")
        app.lists.import_file("images", still)
        (result,) = app.matcher().match_fields([fields])
        assert result.kinds == {"known"}
        assert result.matches[0].video is not None
    finally:
        app.close()


def test_keyframes_sampling_hashes_keyframes_only_and_still_finds_a_dense_known_video(
    hw: Hashwatch, tmp_path: Path, known_clip: Path
) -> None:
    hw.add_media("videos", [known_clip])  # 10 frames a second
    # A copy encoded with a keyframe every 2 s, 15 fps: 5 keyframes in 10 s.
    copy = write_clip(tmp_path / "copy.mp4", KNOWN_SEEDS, size=(256, 192), fps=15, gop=30)
    sparse = hash_video(copy, sampling="keyframes")
    assert sparse.sampling == "keyframes" and sparse.error is None
    assert [f["frame"] for f in sparse.frames] == [0, 30, 60, 90, 120]
    exact = {f["frame"]: f["pdq"] for f in hash_video(copy, sampling="exact").frames}
    assert all(exact[f["frame"]] == f["pdq"] for f in sparse.frames)  # bit for bit
    result = hw.matcher().match_video(frames_from_dicts(sparse.frames))
    assert result.kinds == {"known"}
    (match,) = video_matches(result)
    assert match.video is not None and match.video.query_pct == 100.0
