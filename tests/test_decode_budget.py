"""Decode cost is bounded: a few KB announcing huge frames cannot make hashwatch decode for long.

The stories: a tiny animated WebP whose frames are large, a large PNG, a large animated GIF,
each hashed with a decode budget (pixels decoded per file, over all frames): what is over the
budget is not decoded, the digests (and what fitted) are kept, and ``error`` says why. Frames of
an animation are decoded once, forward, and never past the last frame sampled. All media are
generated benign pictures (solid colours, gradients, shapes).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, WebPImagePlugin
from typer.testing import CliRunner

from hashwatch.config import Settings
from hashwatch.errors import DecodeBudgetError
from hashwatch.signals import animated
from hashwatch.signals.hasher import HashOptions, hash_file
from hashwatch.signals.image import DEFAULT_MAX_DECODE_PIXELS, decode_image
from hashwatch.signals.pdq import FAST, REFERENCE, compute_pdq, pdq_distance
from hashwatch.signals.video import hash_video
from tests.media import jpeg_bytes, scene


def _animation(fmt: str, size: tuple[int, int], count: int, *, shapes: bool = False) -> bytes:
    """``count`` frames of ``size``, 100 ms each: solid colours (tiny files) or scenes."""
    if shapes:
        frames = [scene(100 + i, size) for i in range(count)]
    else:
        frames = [Image.new("RGB", size, (i * 8 % 256, 100, 200)) for i in range(count)]
    buf = io.BytesIO()
    extra = {"lossless": True, "quality": 0, "method": 0} if fmt == "WEBP" else {}
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **extra)
    return buf.getvalue()


@pytest.fixture
def webp_decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the frames libwebp decodes (each call is one full canvas)."""
    calls: list[int] = []
    original = WebPImagePlugin.WebPImageFile._get_next

    def counting(self: WebPImagePlugin.WebPImageFile) -> tuple[bytes, int, int]:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "_get_next", counting)
    yield calls


def test_a_tiny_animated_webp_of_large_frames_stops_at_the_budget(
    tmp_path: Path, webp_decodes: list[int]
) -> None:
    # 30 frames of 1000x1000 in ~1.5 KB: 30 M pixels to decode; the budget allows 5 M.
    data = _animation("WEBP", (1000, 1000), 30)
    assert len(data) < 4000
    path = tmp_path / "sticker.webp"
    path.write_bytes(data)
    signals = hash_file(path, HashOptions(frame_interval=0.5, max_decode_pixels=5_000_000))
    assert signals.digests is not None and len(signals.digests.sha256) == 64  # digests kept
    assert signals.pdq is not None  # the first frame, as a viewer shows it, fitted
    assert signals.error is not None and "decode budget" in signals.error
    assert "max_decode_pixels" in signals.error
    # Frame 0 for the picture, then frames 0..3 of the animation (4 M of the 4 M left): never 30.
    assert len(webp_decodes) <= 5
    assert signals.as_dict()["error"] == signals.error


def test_animated_webp_frames_are_decoded_once_and_not_past_the_last_sample(
    webp_decodes: list[int],
) -> None:
    # 40 frames of 100 ms, one hashed per second: frames 0, 10, 20, 30. Before, every frame was
    # decoded once to learn its duration and again (from frame 0) to hash: 40 + 31 decodes.
    data = _animation("WEBP", (160, 120), 40, shapes=True)
    result = hash_video(data, frame_interval=1.0)
    assert result.error is None
    assert [f["frame"] for f in result.frames] == [0, 10, 20, 30]
    assert (result.duration, result.fps) == (4.0, 10.0)
    assert len(webp_decodes) == 31
    webp_decodes.clear()
    exact = hash_video(data, frame_interval=0.5, sampling="exact")
    assert [f["frame"] for f in exact.frames] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert len(webp_decodes) == 36


def test_animated_webp_frame_hashes_equal_the_hashes_of_the_frames_as_pictures() -> None:
    # Frames go to luma and are reduced at once (no RGB copy): the same hash as the frame saved
    # as a PNG and hashed as a picture, and within Meta's tolerance of the reference pipeline.
    data = _animation("WEBP", (640, 480), 12, shapes=True)
    result = hash_video(data, frame_interval=0.3)
    assert [f["frame"] for f in result.frames] == [0, 3, 6, 9]
    with Image.open(io.BytesIO(data)) as im:
        for frame in result.frames:
            im.seek(frame["frame"])
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "PNG")
            assert compute_pdq(buf.getvalue(), FAST).hash == frame["pdq"]
            assert pdq_distance(compute_pdq(buf.getvalue(), REFERENCE).hash, frame["pdq"]) <= 6


def test_frame_choice_is_linear_in_the_frame_count() -> None:
    # The start of frame n was once summed anew for every n (quadratic: 200,000 frames took
    # minutes); now one running sum. bench/bench_decode_budget.py measures the scaling.
    durations = [40] * 200_000  # 25 fps for 8000 s
    fps, chosen = animated.choose_frames(durations, 1.0, "fast", None)
    assert fps == 25.0 and chosen[:3] == [0, 25, 50] and len(chosen) == 8000


def test_the_webp_header_gives_canvas_and_durations_without_decoding() -> None:
    data = _animation("WEBP", (300, 200), 5, shapes=True)
    header = animated.read_webp_header(data)
    assert header is not None
    assert (header.width, header.height, header.durations_ms) == (300, 200, (100,) * 5)
    assert animated.read_webp_header(b"RIFF\x04\x00\x00\x00WEBP") is None
    assert animated.read_webp_header(data[:40]) is None  # cut before any frame


def test_a_large_png_over_the_budget_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "large.png"
    Image.new("RGB", (3000, 2500), (30, 60, 90)).save(path)
    signals = hash_file(path, HashOptions(max_decode_pixels=7_000_000))
    assert signals.pdq is None and signals.digests is not None
    assert signals.error == (
        "decode budget: image/png of 3000x2500 needs 7,500,000 decoded pixels, over the limit "
        "of 7,000,000 (max_decode_pixels); not decoded"
    )
    with pytest.raises(DecodeBudgetError):
        decode_image(path, FAST, max_decode_pixels=7_000_000)
    assert hash_file(path, HashOptions(max_decode_pixels=8_000_000)).error is None


def test_the_budget_counts_pixels_decoded_so_a_large_jpeg_fits_at_reduced_scale() -> None:
    # fast decodes a 4000x3000 JPEG at 1/8 (500x375 = 187,500 pixels); reference decodes it all.
    data = jpeg_bytes(scene(5, (800, 600)).resize((4000, 3000)))
    assert compute_pdq(data, FAST, max_decode_pixels=1_000_000).width == 4000
    with pytest.raises(DecodeBudgetError, match="12,000,000 decoded pixels"):
        compute_pdq(data, REFERENCE, max_decode_pixels=1_000_000)


@pytest.mark.parametrize("sampling", ["fast", "exact"])
def test_an_animated_gif_stops_at_the_budget(sampling: str) -> None:
    # GIFs are decoded by FFmpeg: frames sent to the decoder are counted against the budget.
    data = _animation("GIF", (160, 120), 12, shapes=True)
    free = hash_video(data, frame_interval=0.2, sampling=sampling)
    assert free.error is None and len(free.frames) == 6
    capped = hash_video(data, frame_interval=0.2, sampling=sampling, max_decode_pixels=96_000)
    assert capped.over_budget and capped.error is not None and "decode budget" in capped.error
    # 96,000 pixels are 5 frames of 160x120: only samples among frames 0..4 are hashed.
    assert capped.frames and max(f["frame"] for f in capped.frames) <= 4
    assert capped.frames == free.frames[: len(capped.frames)]


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().max_decode_pixels == DEFAULT_MAX_DECODE_PIXELS
    monkeypatch.setenv("HASHWATCH_MAX_DECODE_PIXELS", "5000000")
    assert Settings.from_env().max_decode_pixels == 5_000_000


def test_hash_command_reports_a_file_over_the_budget_set_in_the_environment(
    tmp_path: Path,
) -> None:
    from hashwatch.cli.main import app

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    Image.new("RGB", (3000, 2500), (30, 60, 90)).save(evidence / "large.png")
    (evidence / "photo.jpg").write_bytes(jpeg_bytes(scene(9)))
    db = f"sqlite:///{tmp_path / 'hw.sqlite3'}"
    result = CliRunner().invoke(
        app,
        ["--db", db, "--data-dir", str(tmp_path / "data"), "hash", str(evidence)],
        env={"HASHWATCH_MAX_DECODE_PIXELS": "5000000"},
    )
    assert result.exit_code in (0, 1), result.output
    rows = {
        Path(row["path"]).name: row
        for row in map(json.loads, result.stdout.splitlines())
        if isinstance(row, dict)
    }
    assert "decode budget" in rows["large.png"]["error"] and "pdq" not in rows["large.png"]
    assert len(rows["large.png"]["sha256"]) == 64
    assert "error" not in rows["photo.jpg"] and len(rows["photo.jpg"]["pdq"]) == 64


def test_a_still_webp_is_one_frame_and_is_held_to_the_budget_too() -> None:
    # No ANMF chunks: the durations come from decoding (one frame), within the same budget.
    buf = io.BytesIO()
    scene(11, (320, 240)).convert("RGBA").save(buf, "WEBP", lossless=True, exif=b"Exif\x00\x00")
    data = buf.getvalue()
    assert animated.read_webp_header(data) is None
    result = hash_video(data, frame_interval=1.0)
    assert result.error is None and [f["frame"] for f in result.frames] == [0]
    assert result.frames[0]["pdq"] == compute_pdq(data, FAST).hash
    capped = hash_video(data, frame_interval=1.0, max_decode_pixels=320 * 240 - 1)
    assert capped.over_budget and capped.frames == []
    assert capped.error is not None and capped.error.startswith("decode budget")


def test_a_picture_pillow_only_warns_about_is_hashed_without_a_printed_warning(
    tmp_path: Path,
) -> None:
    """Between Pillow's warning size (89 MP) and its error size, hashwatch's own limits decide;
    Pillow's DecompressionBombWarning must not reach the CLI's or the server's output."""
    path = tmp_path / "wide.png"
    Image.new("L", (10000, 9000), 128).save(path)  # 90 MP: above Pillow's warning size
    done = subprocess.run(
        [sys.executable, "-W", "default", "-m", "hashwatch", "hash", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "DecompressionBombWarning" not in done.stderr and "warn" not in done.stderr.lower()
    assert json.loads(done.stdout)["width"] == 10000
