"""``hashwatch watch``: match live streams against hash lists and raise alerts (docs/streams.md).

Thin like the rest of the CLI: it builds a :class:`~hashwatch.stream.watcher.StreamWatcher`
from the options and writes its events to stdout, one JSON object a line, flushed as each
happens so that a pipe sees an alert at once. SIGTERM and Ctrl-C stop it cleanly.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashwatch.cli._common import err
from hashwatch.cli._common import hw as _hw
from hashwatch.errors import ConfigError

if TYPE_CHECKING:
    from hashwatch.stream.watcher import StreamWatcher

__all__ = ["watch"]


class _JsonLines:
    """Events to stdout, one line each, flushed; a closed pipe stops the watcher."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.watcher: StreamWatcher | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False) + "\n"
        with self.lock:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except BrokenPipeError:
                if self.watcher is not None:
                    self.watcher.stop()


def _av_options(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--av-option {pair!r}: write KEY=VALUE")
        out[key] = value
    return out


def watch(
    ctx: typer.Context,
    urls: Annotated[
        list[str],
        typer.Argument(
            help="Streams: rtmp://, rtsp://, http(s):// (HLS playlists too), udp:// "
            "(MPEG-TS), other FFmpeg URLs, or video files.",
            show_default=False,
        ),
    ],
    list_names: Annotated[
        list[str],
        typer.Option(
            "--list", "-l", help="Match against this list (repeatable).", show_default=False
        ),
    ],
    webhooks: Annotated[
        list[str] | None,
        typer.Option("--webhook", help="Also POST each alert to this URL (repeatable)."),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret",
            envvar="HASHWATCH_WEBHOOK_SECRET",
            help="Sign --webhook requests (HMAC-SHA256, as the service signs).",
            show_default=False,
        ),
    ] = None,
    frame_interval: Annotated[
        float, typer.Option("--frame-interval", help="Seconds of stream between hashed frames.")
    ] = 1.0,
    feature_interval: Annotated[
        float,
        typer.Option(
            "--feature-interval",
            help="Seconds of stream between frames described by local features, when a "
            "watched list uses them (cropped, turned, framed copies; slower than PDQ).",
        ),
    ] = 2.0,
    min_matches: Annotated[
        int, typer.Option("--min-matches", help="Sampled frames of the window that must match (k).")
    ] = 3,
    window: Annotated[
        int, typer.Option("--window", help="How many last sampled frames count (n).")
    ] = 5,
    listen: Annotated[
        bool,
        typer.Option(
            "--listen", help="Be the server for rtmp:// and rtsp:// URLs (publishers push)."
        ),
    ] = False,
    realtime: Annotated[
        bool, typer.Option("--realtime/--no-realtime", help="Read files at real-time pace.")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds without data before a stream is dropped.")
    ] = 10.0,
    reconnect: Annotated[
        bool,
        typer.Option("--reconnect/--no-reconnect", help="Reconnect network streams that drop."),
    ] = True,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries", help="Give a stream up when this many retries in a row failed."
        ),
    ] = None,
    backoff_initial: Annotated[
        float, typer.Option("--backoff-initial", help="First wait before reconnecting (s).")
    ] = 1.0,
    backoff_max: Annotated[
        float, typer.Option("--backoff-max", help="Longest wait between reconnects (s).")
    ] = 30.0,
    skip_nonref: Annotated[
        bool,
        typer.Option(
            "--skip-nonref/--decode-all",
            help="Skip decoding non-reference frames (less CPU; samples may move a frame or two).",
        ),
    ] = True,
    av_options: Annotated[
        list[str] | None,
        typer.Option("--av-option", help="Extra FFmpeg option KEY=VALUE for every stream."),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Store alerts as match records and queue them for the service's webhooks.",
        ),
    ] = True,
    refresh_interval: Annotated[
        float, typer.Option("--refresh-interval", help="Seconds between list refreshes.")
    ] = 5.0,
    stats_interval: Annotated[
        float, typer.Option("--stats-interval", help="Emit stream.stats this often (0: never).")
    ] = 0.0,
) -> None:
    """Watch live streams and raise an alert when k of the last n sampled frames match a list.

    Every event is one JSON line on stdout: stream.alert, stream.open, stream.reconnect,
    stream.error, stream.end (and stream.stats, watch.error, webhook.error). Exit code 0 when
    stopped (SIGTERM, Ctrl-C) or when every input ended; 1 when an input failed for good.
    See docs/streams.md.
    """
    from hashwatch.signals.pdq import get_pdq_policy
    from hashwatch.store.webhooks import WebhookStore
    from hashwatch.stream.delivery import AlertSink, ServiceRecorder, WebhookPoster
    from hashwatch.stream.sampler import Backoff, ReaderSettings
    from hashwatch.stream.sources import StreamSource, check_sources
    from hashwatch.stream.watcher import StreamWatcher, WatchConfig

    if min(frame_interval, timeout, refresh_interval, feature_interval) <= 0:
        raise ConfigError(
            "--frame-interval, --feature-interval, --timeout and --refresh-interval must be above 0"
        )
    if not 1 <= min_matches <= window:
        raise ConfigError("--min-matches must be between 1 and --window")
    if backoff_initial <= 0 or backoff_max < backoff_initial:
        raise ConfigError("--backoff-initial must be above 0 and at most --backoff-max")
    for url in webhooks or []:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--webhook {url}: a webhook URL starts with http:// or https://")
    options = _av_options(av_options)
    sources = [StreamSource.parse(url, listen=listen, options=options) for url in urls]
    check_sources(sources)

    hw = _hw(ctx)
    matcher = hw.matcher(list_names)
    settings = ReaderSettings(
        frame_interval=frame_interval,
        policy=get_pdq_policy(hw.settings.pdq_policy),
        timeout_s=timeout,
        backoff=Backoff(initial_s=backoff_initial, max_s=backoff_max),
        max_retries=max_retries,
        reconnect=reconnect,
        realtime=realtime,
        skip_nonref=skip_nonref,
        feature_interval=feature_interval if matcher.wants_local else None,
    )
    config = WatchConfig(
        reader=settings,
        k=min_matches,
        n=window,
        refresh_s=refresh_interval,
        stats_s=stats_interval or None,
    )
    out = _JsonLines()
    sinks: list[AlertSink] = []
    if record:
        sinks.append(ServiceRecorder(WebhookStore(hw.db)))
    for url in webhooks or []:
        sinks.append(WebhookPoster(url, secret=webhook_secret, on_error=out))
    watcher = StreamWatcher(sources, matcher, config, out, sinks)
    out.watcher = watcher

    def on_term(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        watcher.stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    err.print(f"watching {len(sources)} stream(s) against {', '.join(list_names)}")
    try:
        watcher.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if watcher.failed:
        err.print(f"failed: {', '.join(watcher.failed)}")
        raise typer.Exit(1)
