"""``hashwatch watch`` end to end, on loopback only, as a user runs it.

Every video here is generated: moving coloured shapes over a soft colour texture (benign
pictures). A "known" list is built from the frames of one part of such a video, standing in for
known material. PyAV is the sender: it pushes the file as a live stream at real-time pace
(RTMP to a watcher in server mode, HLS segments served by a loopback ``http.server``, MPEG-TS
over UDP), and the real ``hashwatch watch`` command runs as a subprocess. The clock that
matters is the wall clock between the sender writing the first known frame and the alert line
arriving on the watcher's stdout.
"""

from __future__ import annotations

import functools
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.matching.matcher import Signal
from hashwatch.signals.types import HashType
from hashwatch.signals.video import hash_video
from hashwatch.store.service import MatchRecordStore
from hashwatch.store.webhook_http import TargetPolicy
from hashwatch.store.webhooks import WebhookStore
from hashwatch.stream.sampler import ReaderSettings, hls_has_ended
from hashwatch.stream.sources import StreamSource
from hashwatch.stream.watcher import StreamWatcher, WatchConfig
from hashwatch.web.webhooks import verify_signature

FPS = 10
SIZE = (320, 240)
LEAD_S = 3.0  # seconds of other material before the known part
KNOWN_S = 5.0
HASHWATCH = Path(sys.executable).with_name("hashwatch")
# The promise: an alert within 5 s of the first known frame. The tests check it in stream time
# (where in the stream the alert fires: sampling and the k-of-n rule, deterministic); the wall
# clock delay on an idle machine is measured by bench/bench_stream.py, and here only bounded
# generously, since a loaded 2-core machine may delay any process by seconds.
MAX_ALERT_DELAY_S = 5.0
MAX_WALL_DELAY_S = 60.0


# -- benign media ----------------------------------------------------------------------------


def benign_frame(seed: int, i: int) -> Image.Image:
    """Frame ``i`` of generated video ``seed``: a drifting colour texture with moving shapes."""
    rng = np.random.default_rng(seed)
    w, h = SIZE
    cells = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    texture = Image.fromarray(cells).resize((2 * w, 2 * h), Image.Resampling.BICUBIC)
    t = i / FPS
    vx, vy = rng.uniform(-25, 25, 2)
    x0, y0 = int(w / 2 + vx * t) % w, int(h / 2 + vy * t) % h
    img = texture.crop((x0, y0, x0 + w, y0 + h))
    draw = ImageDraw.Draw(img)
    for k in range(5):
        cx0, cy0 = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy, r = rng.uniform(-60, 60), rng.uniform(-45, 45), rng.uniform(15, 45)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = (cx0 + sx * t) % w, (cy0 + sy * t) % h
        box = (cx - r, cy - r, cx + r, cy + r)
        if k % 2:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    return img


def write_video(path: Path, parts: list[tuple[int, float]]) -> Path:
    """H.264 at 10 fps, a keyframe every second, B-frames on (as live encoders send)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        gop = str(FPS)
        stream.options = {"preset": "ultrafast", "g": gop, "keyint_min": gop, "bf": "2"}
        stream.options["sc_threshold"] = "0"
        for seed, seconds in parts:
            for i in range(int(seconds * FPS)):
                frame = av.VideoFrame.from_ndarray(np.asarray(benign_frame(seed, i)), "rgb24")
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stream-videos")
    return {
        "lead_known": write_video(root / "lead_known.mp4", [(11, LEAD_S), (12, KNOWN_S)]),
        "known_only": write_video(root / "known_only.mp4", [(12, KNOWN_S)]),
        "other": write_video(root / "other.mp4", [(13, LEAD_S + KNOWN_S)]),
        "short": write_video(root / "short.mp4", [(14, 3.0)]),
    }


def make_known_list(hw: Hashwatch, video: Path, from_s: float, tmp: Path) -> set[int]:
    """A known list of every frame of ``video`` from ``from_s`` on; returns its entry ids."""
    signals = hash_video(video, frame_interval=1 / FPS)
    lines = {f"pdq {f['pdq']}" for f in signals.frames if f["timestamp"] >= from_s - 1e-6}
    path = tmp / "known.txt"
    path.write_text("\n".join(sorted(lines)) + "\n")
    hw.lists.import_file("known", path, fmt="text")
    found = hw.matcher(["known"]).match_many([[Signal(HashType.PDQ, line[4:])] for line in lines])
    return {m.entry_id for result in found for m in result.matches}


@pytest.fixture
def watch_db(tmp_path: Path, videos: dict[str, Path]) -> Iterator[tuple[str, Path, set[int]]]:
    """A SQLite database holding the known list: (url, data dir, known entry ids)."""
    url = f"sqlite:///{tmp_path / 'hw.sqlite3'}"
    hw = Hashwatch(Settings(database_url=url, data_dir=tmp_path / "data"))
    ids = make_known_list(hw, videos["lead_known"], LEAD_S, tmp_path)
    hw.close()
    yield url, tmp_path / "data", ids


# -- loopback plumbing -----------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a temporary folder: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


class Pusher(threading.Thread):
    """Sends a video file as a live stream at real-time pace, as an encoder would (remuxed:
    the packets of the file, timed by their decoding timestamps)."""

    def __init__(
        self,
        video: Path,
        url: str,
        fmt: str,
        *,
        options: dict[str, str] | None = None,
        known_from: float | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.video, self.url, self.fmt, self.options = video, url, fmt, options or {}
        self.known_from = known_from
        self.known_sent_at: float | None = None  # monotonic time the first known frame went
        self.error: BaseException | None = None

    def _connect(self, template: Any) -> tuple[Any, Any]:
        """Open the output; an RTMP server that is not listening yet is retried."""
        deadline = time.monotonic() + 20
        while True:
            out = av.open(self.url, "w", format=self.fmt, options=self.options)
            stream = out.add_stream_from_template(template)
            try:
                out.start_encoding()
                return out, stream
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def run(self) -> None:
        try:
            with av.open(str(self.video)) as src:
                template = src.streams.video[0]
                out, stream = self._connect(template)
                with out:
                    self._send(src, template, stream, out)
        except BaseException as exc:  # the test reports it
            self.error = exc

    def _send(self, src: Any, template: Any, stream: Any, out: Any) -> None:
        start = first_dts = first_pts = None
        for packet in src.demux(template):
            if packet.dts is None:
                continue
            dts = float(packet.dts * packet.time_base)
            pts = float(packet.pts * packet.time_base)
            if start is None:
                start, first_dts, first_pts = time.monotonic(), dts, pts
            assert first_dts is not None and first_pts is not None
            delay = start + (dts - first_dts) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            packet.stream = stream
            out.mux(packet)
            known = self.known_from is not None and pts - first_pts >= self.known_from - 1e-6
            if known and self.known_sent_at is None:
                self.known_sent_at = time.monotonic()


class Watch:
    """``hashwatch watch`` as a subprocess; its stdout events with their arrival times."""

    def __init__(self, db: tuple[str, Path, set[int]], *args: str) -> None:
        url, data_dir, self.known_ids = db
        command = [str(HASHWATCH), "--db", url, "--data-dir", str(data_dir), "watch", *args]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append((time.monotonic(), json.loads(line)))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if line.startswith("watching"):
                self.ready.set()

    def wait_ready(self) -> None:
        assert self.ready.wait(30), "".join(self.stderr)

    def of(self, kind: str, stream: str | None = None) -> list[tuple[float, dict[str, Any]]]:
        return [
            (at, e)
            for at, e in list(self.events)
            if e["event"] == kind and (stream is None or e.get("stream") == stream)
        ]

    def wait_for(
        self, kind: str, stream: str | None = None, *, timeout: float = 30.0, count: int = 1
    ) -> list[tuple[float, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = self.of(kind, stream)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        found = self.of(kind, stream)
        assert len(found) >= count, (kind, stream, self.events, "".join(self.stderr))
        return found

    def stop(self, how: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM as a service manager stops it (or SIGINT, Ctrl-C); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(how)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            time.sleep(0.1)  # let the readers take the last lines

    def dump(self) -> str:
        """Everything the watcher said, for a failing assertion's message."""
        lines = [json.dumps(e) for _, e in self.events]
        return "\n".join([*lines, *self.stderr])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def watches() -> Iterator[Callable[..., Watch]]:
    started: list[Watch] = []

    def start(db: tuple[str, Path, set[int]], *args: str) -> Watch:
        watch = Watch(db, *args)
        started.append(watch)
        return watch

    yield start
    for watch in started:
        watch.kill()


def assert_timely_alert(watch: Watch, pusher: Pusher, stream: str) -> dict[str, Any]:
    """One alert for ``stream`` within the promised delay, naming the known list and entry."""
    (arrived, alert), *_ = watch.wait_for("stream.alert", stream)
    assert pusher.error is None, pusher.error
    assert pusher.known_sent_at is not None
    delay = arrived - pusher.known_sent_at
    assert 0 < delay <= MAX_WALL_DELAY_S, f"alert {delay:.2f} s after the first known frame"
    assert alert["list"] == "known" and alert["kind"] == "known"
    assert alert["entry_id"] in watch.known_ids
    assert alert["matched"] >= 3 and alert["window"] == 5 and alert["distance"] <= 31
    start, end = alert["segment"]["start"], alert["segment"]["end"]
    assert start <= end == alert["stream_time"]
    assert 0 < alert["stream_time"] - LEAD_S <= MAX_ALERT_DELAY_S, alert
    return alert


# -- the tests -------------------------------------------------------------------------------


def test_rtmp_publisher_known_part_alerts_within_5_s(
    watch_db: tuple[str, Path, set[int]], videos: dict[str, Path], watches: Callable[..., Watch]
) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/test"
    watch = watches(watch_db, url, "--listen", "--list", "known")
    watch.wait_ready()
    pusher = Pusher(videos["lead_known"], url, "flv", known_from=LEAD_S)
    pusher.start()
    alert = assert_timely_alert(watch, pusher, url)
    # Stream time 0 is the first frame pushed: the matching samples lie in the known part.
    assert LEAD_S - 0.15 <= alert["segment"]["start"] <= LEAD_S + 1.0
    assert alert["stream_time"] - alert["segment"]["start"] == pytest.approx(2.0, abs=0.3)
    pusher.join(20)
    assert watch.stop() == 0, watch.dump()
    assert len(watch.of("stream.alert")) == 1  # one episode, one alert
    (_, opened), *_ = watch.of("stream.open")
    assert (opened["codec"], opened["width"], opened["height"]) == ("h264", *SIZE)
    (_, end), *_ = watch.of("stream.end")
    assert end["reason"] == "stopped" and end["samples"] >= 7


def test_hls_known_stream_alerts_and_another_stream_does_not(
    watch_db: tuple[str, Path, set[int]],
    videos: dict[str, Path],
    watches: Callable[..., Watch],
    http_root: tuple[str, Path],
) -> None:
    base, root = http_root
    hls = {"hls_time": "1", "hls_list_size": "6", "hls_flags": "delete_segments+temp_file"}
    pushers, urls = [], []
    for name, video in (("known", videos["lead_known"]), ("other", videos["other"])):
        (root / name).mkdir()
        options = {**hls, "hls_segment_filename": str(root / name / "seg%03d.ts")}
        known_from = LEAD_S if name == "known" else None
        pushers.append(
            Pusher(video, str(root / name / "live.m3u8"), "hls", options=options,
                   known_from=known_from)
        )  # fmt: skip
        urls.append(f"{base}/{name}/live.m3u8")
    watch = watches(
        watch_db, *urls, "--list", "known", "--backoff-initial", "0.2", "--backoff-max", "0.5"
    )
    watch.wait_ready()
    for pusher in pushers:
        pusher.start()
    assert_timely_alert(watch, pushers[0], urls[0])
    for pusher in pushers:
        pusher.join(20)
        assert pusher.error is None, pusher.error
    # The sender's last playlist says the stream ended: both streams end, the watcher exits.
    assert watch.proc.wait(20) == 0, watch.dump()
    time.sleep(0.1)
    assert watch.of("stream.alert", urls[1]) == []
    ends = {e["stream"]: e for _, e in watch.of("stream.end")}
    assert {e["reason"] for e in ends.values()} == {"eof"}
    assert ends[urls[1]]["samples"] >= LEAD_S + KNOWN_S - 1  # watched from start to end


def test_udp_stream_alerts_while_an_undecodable_stream_is_reported(
    watch_db: tuple[str, Path, set[int]],
    videos: dict[str, Path],
    watches: Callable[..., Watch],
    http_root: tuple[str, Path],
) -> None:
    base, root = http_root
    (root / "noise.ts").write_bytes(np.random.default_rng(3).bytes(256 * 1024))
    bad = f"{base}/noise.ts"
    good = f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    watch = watches(
        watch_db, bad, good, "--list", "known", "--max-retries", "2", "--backoff-initial", "0.3"
    )
    watch.wait_ready()
    pusher = Pusher(videos["lead_known"], f"{good}?pkt_size=1316", "mpegts", known_from=LEAD_S)
    pusher.start()
    assert_timely_alert(watch, pusher, good)
    errors = [e for _, e in watch.of("stream.error", bad)]
    assert len(errors) == 3 and all(e["stage"] == "open" for e in errors)
    assert [e["retry_in"] is None for e in errors] == [False, False, True]
    pusher.join(20)
    assert watch.stop() == 1  # an input failed for good
    ends = {e["stream"]: e["reason"] for _, e in watch.of("stream.end")}
    assert ends == {bad: "failed", good: "stopped"}


def test_rtmp_publisher_that_drops_and_comes_back_is_watched_again(
    watch_db: tuple[str, Path, set[int]], videos: dict[str, Path], watches: Callable[..., Watch]
) -> None:
    url = f"rtmp://127.0.0.1:{free_port()}/live/test"
    watch = watches(watch_db, url, "--listen", "--list", "known")
    watch.wait_ready()
    first = Pusher(videos["short"], url, "flv")
    first.start()
    first.join(20)
    assert first.error is None, first.error
    time.sleep(1.0)  # the publisher is away
    second = Pusher(videos["known_only"], url, "flv", known_from=0.0)
    second.start()
    (_, dropped), *_ = watch.wait_for("stream.error")
    assert dropped["stage"] == "read" and dropped["retry_in"] == 0
    assert dropped["stream_time"] >= 2.0  # most of the first session was watched
    (_, back), *_ = watch.wait_for("stream.reconnect")
    assert back["outage_s"] >= 0.9 and back["codec"] == "h264"
    alert = assert_timely_alert(watch, second, url)
    # Stream time runs on across the drop: the first session, then the outage.
    assert alert["segment"]["start"] >= dropped["stream_time"] + back["outage_s"] - 0.01
    second.join(20)
    assert watch.stop(signal.SIGINT) == 0, watch.dump()  # Ctrl-C stops as cleanly
    assert len(watch.of("stream.open")) == 1 and len(watch.of("stream.alert")) == 1
    (_, end), *_ = watch.of("stream.end")
    assert end["reason"] == "stopped"


# -- files -----------------------------------------------------------------------------------


class HookReceiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver on loopback: refuses the first request (503), keeps the rest."""

    received: list[tuple[dict[str, str], bytes]]
    refused: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self.refused:
            self.refused.append(body)
            self.send_response(503)
        else:
            self.received.append((dict(self.headers.items()), body))
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_file_alert_reaches_stdout_the_webhook_and_the_service(
    db_url: str, tmp_path: Path, videos: dict[str, Path]
) -> None:
    hw = Hashwatch(Settings(database_url=db_url, data_dir=tmp_path / "data"))
    make_known_list(hw, videos["lead_known"], LEAD_S, tmp_path)
    loopback = TargetPolicy.parse("127.0.0.1")  # webhook targets on loopback must be allowed
    WebhookStore(hw.db, policy=loopback).add("http://127.0.0.1:9/registered", list_name="known")

    class Receiver(HookReceiver):
        pass

    Receiver.received, Receiver.refused = [], []  # this test's own, not the base class's
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        result = subprocess.run(
            [str(HASHWATCH), "--db", db_url, "--data-dir", str(tmp_path / "data"), "watch",
             str(videos["lead_known"]), "--list", "known", "--no-realtime",
             "--webhook", hook, "--webhook-secret", "test-secret"],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["stream.open", "stream.alert", "stream.end"]
    alert, end = events[1], events[2]
    assert alert["stream"] == str(videos["lead_known"]) and alert["list"] == "known"
    assert alert["segment"] == {"start": LEAD_S, "end": LEAD_S + 2.0}  # a file's own clock
    assert end["reason"] == "eof" and end["samples"] == LEAD_S + KNOWN_S
    # The direct webhook: retried after the 503, signed as the service signs.
    assert len(Receiver.refused) == 1 and len(Receiver.received) == 1
    headers, body = Receiver.received[0]
    assert json.loads(body) == alert
    assert verify_signature("test-secret", body, headers["Hashwatch-Signature"])
    assert headers["Hashwatch-Delivery"] == alert["id"]
    assert not verify_signature("another-secret", body, headers["Hashwatch-Signature"])
    # The service: a match record, and a delivery queued for its registered webhook.
    (delivery,) = WebhookStore(hw.db).deliveries("pending")
    assert delivery["event"]["type"] == "stream.alert" and delivery["event"]["id"] == alert["id"]
    (record,) = MatchRecordStore(hw.db).recent()
    assert (record["key_name"], record["entry_id"]) == ("watch", alert["entry_id"])
    hw.close()


def test_file_is_paced_at_real_time_and_an_undecodable_file_is_reported(
    watch_db: tuple[str, Path, set[int]], tmp_path: Path, videos: dict[str, Path]
) -> None:
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(5).bytes(64 * 1024))
    url, data_dir, _ = watch_db
    started = time.monotonic()
    result = subprocess.run(
        [str(HASHWATCH), "--db", url, "--data-dir", str(data_dir), "watch",
         str(noise), str(videos["short"]), "--list", "known"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr  # an input failed
    events = [json.loads(line) for line in result.stdout.splitlines()]
    ends = {e["stream"]: e for e in events if e["event"] == "stream.end"}
    assert ends[str(noise)]["reason"] == "failed"
    assert ends[str(videos["short"])]["reason"] == "eof"
    assert ends[str(videos["short"])]["samples"] == 3
    (error,) = [e for e in events if e["event"] == "stream.error"]
    assert error["stream"] == str(noise) and error["retry_in"] is None
    assert "stream.alert" not in {e["event"] for e in events}
    assert elapsed >= 2.8  # 3 s of video at real-time pace, not as fast as it decodes


def test_a_list_imported_while_watching_applies(tmp_path: Path, videos: dict[str, Path]) -> None:
    """The library object, as the CLI drives it: list changes reach a running watch.

    The import happens while the watcher holds its first batch of samples (the stream's lead,
    not yet the known part), so however long the import takes on a loaded machine, the known
    frames are matched only after the watcher's own periodic refresh has run: no race with the
    stream's real-time pace.
    """
    hw = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "d")
    )
    hw.lists.create("known")  # empty when the watch starts
    events: list[dict[str, Any]] = []
    config = WatchConfig(ReaderSettings(realtime=True), refresh_s=0.05)
    source = StreamSource.parse(str(videos["lead_known"]))
    matcher = hw.matcher(["known"])
    first_batch, imported = threading.Event(), threading.Event()
    match_many = matcher.match_many

    def held_first_batch(items: Any, *args: Any, **kwargs: Any) -> Any:
        if not first_batch.is_set():
            first_batch.set()
            assert imported.wait(120), "the list import did not finish"
            # Past one refresh period: the watcher's refresh is due when this batch returns.
            time.sleep(config.refresh_s * 2)
        return match_many(items, *args, **kwargs)

    matcher.match_many = held_first_batch  # type: ignore[method-assign]
    watcher = StreamWatcher([source], matcher, config, events.append)
    watcher.start()
    try:
        assert first_batch.wait(60), events
        make_known_list(hw, videos["lead_known"], LEAD_S, tmp_path)
        imported.set()
        deadline = time.monotonic() + 60
        while not any(e["event"] == "stream.alert" for e in events) and not watcher.wait(0.05):
            assert time.monotonic() < deadline, events
    finally:
        imported.set()
        watcher.close()
        hw.close()
    (alert,) = [e for e in events if e["event"] == "stream.alert"]
    assert alert["segment"]["start"] == LEAD_S and alert["list"] == "known"
    assert events[-1]["event"] == "stream.end" and events[-1]["reason"] == "stopped"


def test_an_hls_stream_has_ended_only_when_its_playlist_says_so(
    http_root: tuple[str, Path],
) -> None:
    base, root = http_root
    head = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nseg0.ts\n"
    (root / "live.m3u8").write_text(head)
    (root / "ended.m3u8").write_text(head + "#EXT-X-ENDLIST\n")
    (root / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nended.m3u8\n")
    settings = ReaderSettings(timeout_s=5.0)
    assert not hls_has_ended(f"{base}/live.m3u8", settings)
    assert hls_has_ended(f"{base}/ended.m3u8", settings)
    assert hls_has_ended(f"{base}/master.m3u8", settings)
    assert not hls_has_ended(f"{base}/missing.m3u8", settings)
    assert not hls_has_ended(f"http://127.0.0.1:{free_port()}/gone.m3u8", settings)


def test_rtsp_publisher_known_part_alerts_within_5_s(
    watch_db: tuple[str, Path, set[int]], videos: dict[str, Path], watches: Callable[..., Watch]
) -> None:
    """RTSP with the watcher as the server (``--listen``): a publisher ANNOUNCEs over TCP."""
    url = f"rtsp://127.0.0.1:{free_port()}/live/test"
    watch = watches(watch_db, url, "--listen", "--list", "known")
    watch.wait_ready()
    pusher = Pusher(videos["lead_known"], url, "rtsp", options={"rtsp_transport": "tcp"},
                    known_from=LEAD_S)  # fmt: skip
    pusher.start()
    alert = assert_timely_alert(watch, pusher, url)
    assert LEAD_S - 0.15 <= alert["segment"]["start"] <= LEAD_S + 1.0
    pusher.join(20)
    assert pusher.error is None, pusher.error
    assert watch.stop() == 0, watch.dump()
    assert len(watch.of("stream.alert")) == 1
