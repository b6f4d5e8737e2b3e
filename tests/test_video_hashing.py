"""Video frame hashing: conformance with Meta's vPDQ, sampling, and bad input.

The reference hashes (``tests/data/video/*.vpdq.txt``, ``frame,quality,hex,timestamp``, every
frame at native size) come from facebook/ThreatExchange's vPDQ (licences beside them). Meta's
rule for matching is a distance of at most 31 bits between frames of quality >= 50.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from hashwatch.signals.pdq import REFERENCE, pdq_distance
from hashwatch.signals.video import hash_video, hash_video_frames, sniff

DATA = Path(__file__).parent / "data" / "video"
VIDEOS = sorted(DATA.glob("*.mp4"))


def _reference(mp4: Path) -> list[tuple[int, int, str, float]]:
    rows = []
    for line in mp4.with_suffix(".vpdq.txt").read_text().split():
        frame, quality, value, timestamp = line.split(",")
        rows.append((int(frame), int(quality), value, float(timestamp)))
    return rows


@pytest.mark.parametrize("mp4", VIDEOS, ids=[p.stem for p in VIDEOS])
def test_frames_match_vpdq_reference(mp4: Path) -> None:
    ref = _reference(mp4)
    result = hash_video_frames(mp4.read_bytes(), [r[0] for r in ref])
    assert result.error is None
    got = {f["frame"]: f for f in result.frames}
    assert sorted(got) == [r[0] for r in ref]
    good = [(got[n], value) for n, quality, value, _ in ref if quality >= 50]
    within = sum(pdq_distance(f["pdq"], value) <= 31 for f, value in good)
    assert within / len(good) >= 0.95
    for n, _, _, timestamp in ref:
        assert got[n]["timestamp"] == pytest.approx(timestamp, abs=0.001)


def test_reference_policy_matches_vpdq() -> None:
    mp4 = DATA / "test-padded-dimensions.mp4"
    ref = _reference(mp4)[::10]
    result = hash_video_frames(mp4, [r[0] for r in ref], policy=REFERENCE)
    got = {f["frame"]: f["pdq"] for f in result.frames}
    assert result.policy == "reference-1"
    assert all(pdq_distance(got[n], value) <= 10 for n, _, value, _ in ref)


def test_one_frame_per_second() -> None:
    mp4 = DATA / "chair-19-sd-bar.mp4"
    result = hash_video(mp4)
    assert result.error is None
    assert result.media_type == "video"
    assert result.mime_type == "video/mp4"
    assert (result.width, result.height) == (480, 720)
    assert result.fps == pytest.approx(30.0)
    assert result.duration == pytest.approx(18.8, abs=0.05)
    assert [f["frame"] for f in result.frames] == list(range(0, 564, 30))
    assert [f["timestamp"] for f in result.frames] == [float(s) for s in range(19)]
    ref = {r[0]: r[2] for r in _reference(mp4)}
    assert all(pdq_distance(f["pdq"], ref[f["frame"]]) <= 31 for f in result.frames)
    assert result.to_dict()["frames"][1]["frame"] == 30


def test_frame_interval_sets_the_step() -> None:
    result = hash_video(DATA / "doorknob-hd-no-bar.mp4", frame_interval=0.5)
    assert [f["frame"] for f in result.frames] == list(range(0, 120, 15))
    with pytest.raises(ValueError):
        hash_video(DATA / "doorknob-hd-no-bar.mp4", frame_interval=0)


def test_truncated_video_gives_frames_and_error() -> None:
    data = (DATA / "chair-19-sd-bar.mp4").read_bytes()
    result = hash_video(data[: len(data) * 6 // 10])
    assert result.frames
    assert len(result.frames) < 19
    assert result.error


@pytest.mark.parametrize("data", [os.urandom(4096), b"", b"\x00\x00\x00\x18ftypisom" + b"\0" * 64])
def test_bad_input_gives_error_not_exception(data: bytes) -> None:
    result = hash_video(data)
    assert result.frames == []
    assert result.error


def test_missing_file_gives_error(tmp_path: Path) -> None:
    result = hash_video(tmp_path / "missing.mp4")
    assert result.frames == []
    assert result.error


def test_animated_gif_hashes_as_video() -> None:
    frames = []
    for i in range(4):
        im = Image.new("RGB", (96, 64), (30 * i, 90, 180))
        ImageDraw.Draw(im).ellipse((10 + 15 * i, 10, 40 + 15 * i, 50), fill=(250, 240, 40))
        frames.append(im)
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = hash_video(buf.getvalue(), frame_interval=0.1)
    assert result.error is None
    assert [f["frame"] for f in result.frames] == [0, 1, 2, 3]
    assert (result.width, result.height) == (96, 64)
    assert len({f["pdq"] for f in result.frames}) == 4


def test_sniff() -> None:
    assert sniff((DATA / "chair-19-sd-bar.mp4").read_bytes()[:64]) == "video/mp4"
    assert sniff(b"GIF89a") is None
