"""A live stream showing a cropped copy of a listed picture alerts by local features, which
PDQ alone misses; frames are described at the lower feature rate. The stream is a generated
video read as a file (no network), the picture a generated scene (benign stand-ins)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import av
import numpy as np

from hashwatch.app import Hashwatch
from hashwatch.stream.sampler import FrameSample, ReaderSettings, StreamReader
from hashwatch.stream.sources import StreamSource
from hashwatch.stream.watcher import StreamWatcher, WatchConfig
from tests.media import write_image
from tests.test_robust_matching import crop, picture

FPS = 5


def still_video(path: Path, seconds: int) -> Path:
    """``seconds`` of the listed picture cropped by 10 % (off-centre), as H.264."""
    img = crop(picture(61), 0.10).resize((720, 540))
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 720, 540, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for _ in range(seconds * FPS):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(img), "rgb24")))
        out.mux(stream.encode(None))
    return path


def reader_settings(feature_interval: float | None) -> ReaderSettings:
    return ReaderSettings(
        frame_interval=1.0, feature_interval=feature_interval, realtime=False, reconnect=False
    )


def watch(hw: Hashwatch, video: Path, feature_interval: float | None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    config = WatchConfig(reader=reader_settings(feature_interval), k=2, n=3)
    watcher = StreamWatcher([StreamSource.parse(str(video))], hw.matcher(), config, events.append)
    watcher.start()
    try:
        assert watcher.wait(60)
    finally:
        watcher.close()
    return [e for e in events if e["event"] == "stream.alert"]


def test_a_cropped_copy_on_a_stream_alerts_by_local_features(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    known = write_image(tmp_path / "k.png", picture(61), "PNG")
    video = still_video(tmp_path / "live.mp4", 5)
    sqlite_hw.lists.create("agency")
    sqlite_hw.add_media("agency", [known])
    assert watch(sqlite_hw, video, 1.0) == []  # PDQ alone: the crop is not found

    sqlite_hw.lists.configure("agency", local_features=True)
    sqlite_hw.add_media("agency", [known])  # the entry gains its features
    (alert,) = watch(sqlite_hw, video, 1.0)
    assert alert["list"] == "agency" and alert["hash_type"] == "local"
    assert alert["local"]["inliers"] >= 15


def test_frames_are_described_at_the_feature_rate_only(tmp_path: Path) -> None:
    video = still_video(tmp_path / "v.mp4", 5)
    samples: list[FrameSample] = []

    def emit(event: object) -> None:
        if isinstance(event, FrameSample):
            samples.append(event)

    StreamReader(
        StreamSource.parse(str(video)), reader_settings(2.0), threading.Event(), emit
    ).run()
    described = [round(s.stream_time) for s in samples if s.features is not None]
    assert len(samples) == 5 and described == [0, 2, 4]
