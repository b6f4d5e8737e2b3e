"""Video frame hashing: conformance with Meta's vPDQ, sampling, containers and bad input.

The reference hashes (``tests/data/video/*.vpdq.txt``, ``frame,quality,hex,timestamp``, every
frame at native size) come from facebook/ThreatExchange's vPDQ (licences beside them). Meta's
rule for matching is a distance of at most 31 bits between frames of quality >= 50.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from pathlib import Path
from typing import Any

import av
import numpy as np
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


def _video_match(
    query: list[tuple[str, int]], compared: list[tuple[str, int]]
) -> tuple[float, float]:
    """vPDQ's video-level match: (query %, compared %) over unique hashes of quality >= 50."""
    q = sorted({h for h, quality in query if quality >= 50})
    c = sorted({h for h, quality in compared if quality >= 50})
    q_in = sum(any(pdq_distance(a, b) <= 31 for b in c) for a in q)
    c_in = sum(any(pdq_distance(b, a) <= 31 for a in q) for b in c)
    return 100.0 * q_in / len(q), 100.0 * c_in / len(c)


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


@pytest.mark.parametrize("mp4", VIDEOS, ids=[p.stem for p in VIDEOS])
def test_fast_sampling_conforms(mp4: Path) -> None:
    """Keyframe-first frames: one per second, true frame numbers, Meta's hashes of those frames."""
    ref = {r[0]: r for r in _reference(mp4)}
    result = hash_video(mp4)
    assert result.error is None
    assert result.sampling == "fast" and result.to_dict()["sampling"] == "fast"
    frames = [f["frame"] for f in result.frames]
    seconds = math.ceil(len(ref) / result.fps)
    # One frame in each 1-second slot, consecutive frames at most ~1 s apart.
    assert [math.floor(n / result.fps + 1e-6) for n in frames] == list(range(seconds))
    assert max(b - a for a, b in itertools.pairwise(frames)) <= 1.1 * result.fps
    # Keyframes every 60 frames are vPDQ's frames; in the slots between, vPDQ's frame (a
    # B-frame) is a few packets after the cheapest frame, so it is the one hashed.
    assert frames == list(range(0, len(ref), 30))
    for f in result.frames:
        assert f["timestamp"] == pytest.approx(ref[f["frame"]][3], abs=0.001)
    good = [f for f in result.frames if ref[f["frame"]][1] >= 50]
    within = sum(pdq_distance(f["pdq"], ref[f["frame"]][2]) <= 31 for f in good)
    assert within / len(good) >= 0.95
    query = [(f["pdq"], f["quality"]) for f in result.frames]
    same_frames = [(ref[n][2], ref[n][1]) for n in frames]
    assert _video_match(query, same_frames) == (100.0, 100.0)
    every_30th = [(ref[n][2], ref[n][1]) for n in range(0, len(ref), 30)]
    assert min(_video_match(query, every_30th)) >= 80.0
    # Bit for bit what a full decode gives the same frames.
    exact = hash_video_frames(mp4, frames)
    assert [f["pdq"] for f in exact.frames] == [f["pdq"] for f in result.frames]


def test_reference_policy_matches_vpdq() -> None:
    mp4 = DATA / "test-padded-dimensions.mp4"
    ref = _reference(mp4)[::10]
    result = hash_video_frames(mp4, [r[0] for r in ref], policy=REFERENCE)
    got = {f["frame"]: f["pdq"] for f in result.frames}
    assert result.policy == "reference-1"
    assert all(pdq_distance(got[n], value) <= 10 for n, _, value, _ in ref)
    fast = hash_video(mp4, policy=REFERENCE)
    assert fast.sampling == "fast" and fast.policy == "reference-1"
    full = {r[0]: r[2] for r in _reference(mp4)}
    assert all(pdq_distance(f["pdq"], full[f["frame"]]) <= 10 for f in fast.frames)


def test_one_frame_per_second() -> None:
    mp4 = DATA / "chair-19-sd-bar.mp4"
    result = hash_video(mp4, sampling="exact")
    assert result.error is None
    assert result.sampling == "exact"
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
    mp4 = DATA / "doorknob-hd-no-bar.mp4"
    result = hash_video(mp4, frame_interval=0.5, sampling="exact")
    assert [f["frame"] for f in result.frames] == list(range(0, 120, 15))
    fast = hash_video(mp4, frame_interval=0.5)
    assert [n // 15 for n in (f["frame"] for f in fast.frames)] == list(range(8))
    with pytest.raises(ValueError):
        hash_video(mp4, frame_interval=0)
    with pytest.raises(ValueError):
        hash_video(mp4, sampling="every")


@pytest.mark.parametrize("sampling", ["fast", "exact"])
def test_truncated_video_gives_frames_and_error(sampling: str) -> None:
    data = (DATA / "chair-19-sd-bar.mp4").read_bytes()
    result = hash_video(data[: len(data) * 6 // 10], sampling=sampling)
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
    for sampling in ("fast", "exact"):
        result = hash_video(buf.getvalue(), frame_interval=0.1, sampling=sampling)
        assert result.error is None
        assert [f["frame"] for f in result.frames] == [0, 1, 2, 3]
        assert (result.width, result.height) == (96, 64)
        assert len({f["pdq"] for f in result.frames}) == 4


# --- generated clips in every container: 45 frames, 15 fps (3 s), a keyframe every 10 frames --

FPS, COUNT, GOP = 15, 45, 10


def _clip(fmt: str, codec: str, pix_fmt: str = "yuv420p", **options: str) -> bytes:
    """A benign moving-disc clip encoded with PyAV (skips the test if the encoder is missing)."""
    try:
        av.codec.Codec(codec, "w")
    except av.FFmpegError:
        pytest.skip(f"the PyAV wheel has no {codec} encoder")
    height, width = 96, 128
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = dict[str, object](options)
        for i in range(COUNT):
            base = 120 + 60 * np.sin(xx / 20 + i / 5) + 40 * np.cos(yy / 15 - i / 7)
            rgb = np.stack([base, base * 0.8 + 30, 255 - base], axis=-1)
            cx, cy = width * (0.5 + 0.4 * np.sin(i / 6)), height * (0.5 + 0.4 * np.cos(i / 9))
            rgb[(xx - cx) ** 2 + (yy - cy) ** 2 < 300] = (250, 240, 40)
            frame = av.VideoFrame.from_ndarray(np.clip(rgb, 0, 255).astype(np.uint8), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


CONTAINERS: list[Any] = [
    pytest.param("gif", "gif", "rgb8", {}, "fast", id="gif"),
    pytest.param("webp", "libwebp_anim", "yuv420p", {}, "fast", id="webp-animated"),
    pytest.param("matroska", "libx264", "yuv420p", {"g": "10"}, "fast", id="mkv-h264"),
    pytest.param("webm", "libvpx-vp9", "yuv420p", {"g": "10"}, "fast", id="webm-vp9"),
    pytest.param("avi", "mpeg4", "yuv420p", {"g": "10"}, "fast", id="avi-mpeg4"),
    # AVI stores decoding times only: with B-frames, fast sampling falls back to exact. (No
    # B-pyramid: its reference B-frames would also give themselves away by their output order.)
    pytest.param(
        "avi",
        "libx264",
        "yuv420p",
        {"g": "10", "x264-params": "b-pyramid=0"},
        "exact",
        id="avi-h264-bframes",
    ),
    pytest.param("flv", "flv", "yuv420p", {"g": "10"}, "fast", id="flv"),
    pytest.param("mpegts", "libx264", "yuv420p", {"g": "10"}, "fast", id="mpegts-h264"),
    pytest.param("3gp", "h263", "yuv420p", {"g": "10"}, "fast", id="3gp-h263"),
    pytest.param("mov", "libx264", "yuv420p", {"g": "10"}, "fast", id="mov-h264"),
    pytest.param(
        "mp4",
        "libx264",
        "yuv420p",
        {"g": "10", "x264-params": "open-gop=1"},
        "fast",
        id="mp4-open-gop",
    ),
]


@pytest.mark.parametrize(("fmt", "codec", "pix_fmt", "options", "sampling"), CONTAINERS)
def test_containers(
    fmt: str, codec: str, pix_fmt: str, options: dict[str, str], sampling: str
) -> None:
    data = _clip(fmt, codec, pix_fmt, **options)
    result = hash_video(data, frame_interval=0.5)
    assert result.error is None
    assert result.fps == pytest.approx(FPS, rel=0.12)  # GIF: centiseconds; WebP: milliseconds
    assert result.sampling == sampling
    frames = [f["frame"] for f in result.frames]
    if sampling == "fast":
        # One frame per half-second slot; the slot's keyframe when it has one.
        assert [math.floor(n / FPS / 0.5 + 1e-6) for n in frames] == list(range(6))
        if options:
            assert set(range(0, COUNT, GOP)) <= set(frames)
    else:
        assert frames == list(range(0, COUNT, 7))
    exact = hash_video_frames(data, frames)
    assert exact.frames == result.frames  # same numbers, timestamps, hashes, bit for bit
    assert hash_video(data, frame_interval=0.5, sampling="exact").sampling == "exact"


def test_file_objects_as_source() -> None:
    data = _clip("mp4", "libx264", g="10")
    by_bytes = hash_video(data, frame_interval=0.5)
    stream = io.BytesIO(b"junk" + data)
    stream.seek(4)
    from_file = hash_video(stream, frame_interval=0.5)
    assert from_file.sampling == "fast"
    assert from_file.frames == by_bytes.frames

    class Forward:  # a pipe: read() only
        def __init__(self, payload: bytes) -> None:
            self._buf = io.BytesIO(payload)

        def read(self, size: int = -1) -> bytes:
            return self._buf.read(size)

        def seekable(self) -> bool:
            return False

    piped = hash_video(Forward(data), frame_interval=0.5)  # type: ignore[arg-type]
    assert piped.error is None
    assert piped.sampling == "exact"
    assert piped.frames == hash_video(data, frame_interval=0.5, sampling="exact").frames

    closed = io.BytesIO(data)
    closed.close()
    assert hash_video(closed).error


def test_stream_cut_mid_gop_falls_back_to_exact() -> None:
    data = _clip("mpegts", "libx264", g="10")
    result = hash_video(data[188 * 20 :], frame_interval=0.5)  # starts inside a GOP
    assert result.sampling == "exact"
    assert result.frames


def test_sniff() -> None:
    assert sniff((DATA / "chair-19-sd-bar.mp4").read_bytes()[:64]) == "video/mp4"
    assert sniff(b"GIF89a") is None
