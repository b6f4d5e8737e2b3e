"""Where a watched stream comes from: its URL, how it is shown, how FFmpeg opens it.

Why per-protocol options: FFmpeg has no single timeout. A dead RTMP or HTTP peer is noticed by
``rw_timeout`` (microseconds, any AVIO protocol), RTSP and UDP by their own ``timeout``
(microseconds too), while RTMP's ``timeout`` means something else entirely (seconds to wait for
a publisher in server mode). On top of those, PyAV's ``timeout=(open, read)`` installs an
interrupt callback that bounds every blocking call, including stream probing and the HLS
demuxer's playlist reloads, so no thread waits forever on a stream that went quiet.

Why redaction: stream URLs often carry credentials (``rtmp://user:secret@host/app``, signed HLS
URLs with ``?token=…``). Every event and error names the stream by :attr:`StreamSource.label`,
which keeps the scheme, host and path and replaces user information and query values with
``***``. A stream key written into the path itself cannot be told apart from a path and is
shown as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from hashwatch.errors import ConfigError

__all__ = ["LISTEN_WAIT_S", "PROBE_US", "StreamKind", "StreamSource", "check_sources", "redact_url"]

# How long one wait for a publisher lasts in server mode before the reader checks whether it
# was asked to stop and listens again (a publisher connecting in between is not lost for long:
# it retries, as encoders do).
LISTEN_WAIT_S = 2
PROBE_US = 1_000_000  # how much of a network stream FFmpeg reads to learn its streams


class StreamKind(StrEnum):
    """The protocol family of a stream, which decides its open options and end-of-data rule."""

    FILE = "file"
    RTMP = "rtmp"
    RTSP = "rtsp"
    HTTP = "http"  # progressive HTTP and HLS playlists alike
    UDP = "udp"
    OTHER = "other"  # any other FFmpeg protocol (tcp, rtp, srt when built in, ...)


_KINDS = {
    "rtmp": StreamKind.RTMP,
    "rtmps": StreamKind.RTMP,
    "rtmpt": StreamKind.RTMP,
    "rtsp": StreamKind.RTSP,
    "rtsps": StreamKind.RTSP,
    "http": StreamKind.HTTP,
    "https": StreamKind.HTTP,
    "udp": StreamKind.UDP,
    "file": StreamKind.FILE,
}


def redact_url(url: str) -> str:
    """``url`` without user information or query values (see the module docstring)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or parts.scheme == "file":
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        query = "&".join(
            f"{key}=***" if value else key
            for key, value in parse_qsl(query, keep_blank_values=True)
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class StreamSource:
    """One input to watch. ``listen``: act as the server (RTMP, RTSP) that a publisher pushes
    to, instead of pulling from one. ``options`` are extra FFmpeg options that win over ours."""

    url: str
    listen: bool = False
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls, url: str, *, listen: bool = False, options: dict[str, str] | None = None
    ) -> StreamSource:
        """Check the URL's shape; nothing is opened here."""
        text = url.strip()
        if not text:
            raise ConfigError("an empty stream URL")
        return cls(text, listen and _scheme(text) in ("rtmp", "rtsp"), dict(options or {}))

    @property
    def kind(self) -> StreamKind:
        scheme = _scheme(self.url)
        if not scheme:
            return StreamKind.FILE
        return _KINDS.get(scheme, StreamKind.OTHER)

    @property
    def is_file(self) -> bool:
        """A local file: read once (optionally at real-time pace), never reconnected."""
        return self.kind is StreamKind.FILE

    @property
    def path(self) -> str:
        """What FFmpeg opens (a ``file:`` URL becomes its path)."""
        if self.url.startswith("file:"):
            return urlsplit(self.url).path
        return self.url

    @property
    def label(self) -> str:
        """How events name this stream (credentials removed)."""
        return redact_url(self.url)

    def redact(self, text: str) -> str:
        """``text`` (an FFmpeg error message, say) with the raw URL replaced by the label."""
        return text.replace(self.url, self.label) if self.url != self.label else text

    def open_options(self, timeout_s: float) -> dict[str, str]:
        """FFmpeg options for opening this stream, with I/O timeouts of ``timeout_s``."""
        micro = str(max(1, int(timeout_s * 1_000_000)))
        kind = self.kind
        opts: dict[str, str] = {}
        if kind is StreamKind.RTMP:
            opts["rw_timeout"] = micro
            if self.listen:
                # RTMP's "timeout" is the wait for a publisher, in seconds; it implies listen.
                opts.update(listen="1", timeout=str(LISTEN_WAIT_S))
        elif kind is StreamKind.RTSP:
            opts.update(timeout=micro, rtsp_transport="tcp")
            if self.listen:
                opts.update(rtsp_flags="listen", listen_timeout=str(LISTEN_WAIT_S))
                del opts["rtsp_transport"]
        elif kind is StreamKind.UDP:
            # A late reader must not stop the stream: drop datagrams rather than fail.
            opts.update(timeout=micro, overrun_nonfatal="1")
        elif kind is not StreamKind.FILE:
            opts["rw_timeout"] = micro
        if kind is not StreamKind.FILE:
            # FFmpeg probes a live input for up to 5 s by default (an FLV stream might still
            # reveal an audio track), and nothing is decoded meanwhile: that would be 5 s of
            # alert latency after every (re)connect. One second finds a video stream's
            # parameters (its SPS comes with the first keyframe).
            opts["analyzeduration"] = str(PROBE_US)
        opts.update(self.options)
        return opts

    def pyav_timeout(self, timeout_s: float) -> tuple[float | None, float | None] | None:
        """PyAV's ``(open, read)`` timeout: none for files; no open timeout while listening
        (FFmpeg's own listen timeout ends each wait)."""
        if self.is_file:
            return None
        if self.listen:
            return (None, timeout_s)
        return (timeout_s, timeout_s)


def _scheme(url: str) -> str:
    """The URL scheme in lower case; empty for a path (``C:\\x`` is a path, not scheme "c")."""
    head, sep, _ = url.partition("://")
    if sep and head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return head.lower()
    if url.startswith("file:"):
        return "file"
    return ""


def check_sources(sources: list[StreamSource]) -> None:
    """Refuse the same input twice (its events could not be told apart). A missing file or a
    dead URL is not refused here: it is reported as that stream's error while others run."""
    seen: set[str] = set()
    for source in sources:
        if source.url in seen:
            raise ConfigError(f"{source.label} is given twice")
        seen.add(source.url)
