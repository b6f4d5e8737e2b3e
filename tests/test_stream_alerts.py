"""The k-of-n alert rule, sampling by presentation time, backoff and URL handling.

Pure logic, no streams: what each part promises in docs/streams.md, checked case by case.
"""

from __future__ import annotations

import random

import pytest

from hashwatch.matching.matcher import Match
from hashwatch.stream.alerts import AlertWindow, SampleMatches
from hashwatch.stream.sampler import Backoff, SampleSchedule, StreamClock
from hashwatch.stream.sources import StreamKind, StreamSource, redact_url


def known(entry_id: int, distance: int = 4, list_name: str = "agency") -> Match:
    return Match(list_name, "known", "pdq", distance, "1", "NONE", None, entry_id)


def sample(t: float, *matches: Match) -> SampleMatches:
    return SampleMatches.of(t, t + 10.0, list(matches))


def feed(window: AlertWindow, samples: list[SampleMatches]) -> list[tuple[float, int, str]]:
    out = []
    for s in samples:
        out += [(a.stream_time, a.best.entry_id, a.counted_by) for a in window.add(s)]
    return out


def test_three_of_five_alerts_once_per_episode_and_rearms() -> None:
    window = AlertWindow("rtmp://host/live", k=3, n=5)
    hits = [sample(0, known(7)), sample(1), sample(2, known(7)), sample(3, known(7, 2))]
    assert feed(window, hits) == [(3.0, 7, "list")]
    # The episode goes on: no second alert for the same entry.
    assert feed(window, [sample(t, known(7)) for t in range(4, 9)]) == []
    # Five samples without it close the episode; the next 3 of 5 alert again.
    assert feed(window, [sample(t) for t in range(9, 14)]) == []
    assert feed(window, [sample(t, known(7)) for t in range(14, 17)]) == [(16.0, 7, "list")]


def test_two_of_five_is_not_an_alert() -> None:
    window = AlertWindow("s", k=3, n=5)
    samples = [sample(0, known(1)), sample(1), sample(2), sample(3), sample(4, known(1))]
    samples += [sample(5), sample(6), sample(7), sample(8, known(1))]
    assert feed(window, samples) == []


def test_alert_event_names_entry_distance_segment_and_match_facts() -> None:
    window = AlertWindow("udp://127.0.0.1:5000", k=3, n=5)
    feed(window, [sample(10, known(3, 9)), sample(11), sample(12, known(3, 5))])
    (alert,) = window.add(sample(13, known(3, 7)))
    event = alert.as_event()
    assert event["event"] == "stream.alert" and event["stream"] == "udp://127.0.0.1:5000"
    assert (event["list"], event["entry_id"], event["kind"]) == ("agency", 3, "known")
    assert event["distance"] == 5  # the best of the window
    assert event["segment"] == {"start": 10.0, "end": 13.0}
    assert (event["stream_time"], event["pts"]) == (13.0, 23.0)
    assert (event["matched"], event["window"], event["required"]) == (3, 5, 3)
    assert event["category"] == "1" and event["hash_type"] == "pdq"
    assert event["entries"] == [{"entry_id": 3, "samples": 3, "distance": 5}]


def test_a_video_listed_frame_by_frame_alerts_once_per_list() -> None:
    """Each second of a playing video matches another per-frame entry of the same list."""
    window = AlertWindow("s", k=3, n=5)
    alerts = [a for t in range(8) for a in window.add(sample(t, known(100 + t, distance=t)))]
    assert [(a.stream_time, a.best.entry_id, a.counted_by) for a in alerts] == [(2.0, 100, "list")]
    event = alerts[0].as_event()  # ties on samples: the closest entry is named
    assert event["segment"] == {"start": 0.0, "end": 2.0} and event["matched"] == 3
    assert event["entries"] == [
        {"entry_id": 100, "samples": 1, "distance": 0},
        {"entry_id": 101, "samples": 1, "distance": 1},
        {"entry_id": 102, "samples": 1, "distance": 2},
    ]


def test_another_entry_reaching_k_inside_an_open_episode_gets_its_own_alert() -> None:
    window = AlertWindow("s", k=3, n=5)
    first = [sample(t, known(1)) for t in range(3)]
    second = [sample(t, known(2)) for t in range(3, 6)]
    assert feed(window, first + second) == [(2.0, 1, "list"), (5.0, 2, "entry")]


def test_lists_count_separately_and_only_known_matches_count() -> None:
    window = AlertWindow("s", k=2, n=3)
    ignorable = Match("nsrl", "ignorable", "pdq", 0, None, "NONE", None, 50)
    negative = Match("fp", "negative", "pdq", 0, None, "NONE", None, 60)
    assert feed(window, [sample(0, ignorable, negative), sample(1, ignorable, negative)]) == []
    got = feed(window, [sample(2, known(1, list_name="a")), sample(3, known(9, list_name="b"))])
    assert got == []
    assert feed(window, [sample(4, known(1, list_name="a"), known(9, list_name="b"))]) == [
        (4.0, 1, "list"),
        (4.0, 9, "list"),
    ]


def test_reset_forgets_the_episode() -> None:
    window = AlertWindow("s", k=2, n=5)
    assert feed(window, [sample(0, known(1)), sample(1, known(1))]) == [(1.0, 1, "list")]
    window.reset()
    assert feed(window, [sample(60, known(1)), sample(61, known(1))]) == [(61.0, 1, "list")]


def test_window_rejects_impossible_rules() -> None:
    with pytest.raises(ValueError):
        AlertWindow("s", k=6, n=5)
    with pytest.raises(ValueError):
        AlertWindow("s", k=0, n=5)


def test_schedule_takes_one_frame_per_interval_at_any_frame_rate() -> None:
    for fps in (25.0, 29.97, 30.0, 60.0):
        schedule = SampleSchedule(1.0)
        taken = [n for n in range(int(10 * fps)) if schedule.take(n / fps)]
        assert len(taken) == 10, fps
        assert all(abs(n / fps - k) < 1.0 / fps + 1e-9 for k, n in enumerate(taken))


def test_schedule_resumes_after_a_gap_without_a_burst() -> None:
    schedule = SampleSchedule(1.0)
    times = [0.0, 0.5, 1.0, 1.5, 7.2, 7.5, 8.0, 8.3, 9.1]
    assert [t for t in times if schedule.take(t)] == [0.0, 1.0, 7.2, 8.0, 9.1]  # one grid
    with pytest.raises(ValueError):
        SampleSchedule(0)


def test_clock_follows_timestamps_and_survives_jumps_and_reconnects() -> None:
    clock = StreamClock(max_step_s=10.0)
    step = 0.1
    assert clock.advance(1000.0, step) == 0.0  # stream time starts at the first frame
    assert clock.advance(1000.5, step) == pytest.approx(0.5)
    assert clock.advance(3.0, step) == pytest.approx(0.6)  # a jump back: one frame
    assert clock.advance(3.2, step) == pytest.approx(0.8)
    assert clock.advance(None, step) == pytest.approx(0.9)  # no timestamp: one frame
    assert clock.advance(9999.0, step) == pytest.approx(1.0)  # far ahead: one frame
    clock.reconnected(4.0)
    assert clock.advance(0.0, step) == pytest.approx(5.0)  # the outage counts
    assert clock.advance(0.25, step) == pytest.approx(5.25)


def test_backoff_doubles_to_the_cap_with_bounded_jitter() -> None:
    rng = random.Random(5)
    plain = Backoff(initial_s=1.0, max_s=30.0, jitter=0.0)
    assert [plain.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    jittered = Backoff(initial_s=1.0, max_s=30.0, jitter=0.2)
    for attempt in range(1, 10):
        base = min(30.0, 2.0 ** (attempt - 1))
        delay = jittered.delay(attempt, rng)
        assert 0.8 * base <= delay <= min(30.0, 1.2 * base)


def test_urls_are_shown_without_credentials() -> None:
    assert redact_url("rtmp://user:secret@host:1935/live/x") == "rtmp://***@host:1935/live/x"
    assert (
        redact_url("https://cdn.example/live.m3u8?token=abc&exp=1")
        == "https://cdn.example/live.m3u8?token=***&exp=***"
    )
    assert redact_url("/videos/a.mp4") == "/videos/a.mp4"
    source = StreamSource.parse("rtsp://admin:pw@cam/stream")
    assert source.label == "rtsp://***@cam/stream"
    message = "ConnectionRefusedError: 'rtsp://admin:pw@cam/stream'"
    assert "pw" not in source.redact(message)


def test_open_options_bound_every_protocol() -> None:
    def opts(url: str, listen: bool = False) -> dict[str, str]:
        return StreamSource.parse(url, listen=listen).open_options(5.0)

    probe = {"analyzeduration": "1000000"}  # a live input is not probed for 5 s
    assert opts("rtmp://h/app/key") == {"rw_timeout": "5000000", **probe}
    assert opts("rtmp://0.0.0.0:1935/app/key", listen=True) == {
        "rw_timeout": "5000000",
        "listen": "1",
        "timeout": "2",
        **probe,
    }
    assert opts("rtsp://cam/x") == {"timeout": "5000000", "rtsp_transport": "tcp", **probe}
    assert opts("udp://127.0.0.1:5000")["timeout"] == "5000000"
    assert opts("https://cdn/live.m3u8") == {"rw_timeout": "5000000", **probe}
    assert opts("/tmp/a.mp4") == {}
    assert StreamSource.parse("/tmp/a.mp4").pyav_timeout(5.0) is None
    assert StreamSource.parse("http://h/x").pyav_timeout(5.0) == (5.0, 5.0)
    assert StreamSource.parse("udp://h:1", listen=True).listen is False  # only RTMP and RTSP
    kinds = [StreamSource.parse(u).kind for u in ("a.mp4", "file:///a.mp4", "srt://h:1")]
    assert kinds == [StreamKind.FILE, StreamKind.FILE, StreamKind.OTHER]
    extra = StreamSource.parse("rtsp://cam/x", options={"rtsp_transport": "udp"})
    assert extra.open_options(1.0)["rtsp_transport"] == "udp"  # the user's option wins
