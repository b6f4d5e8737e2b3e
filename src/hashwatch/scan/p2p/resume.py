"""BitTorrent clients' resume data: what a client was downloading or seeding, where to, when.

* qBittorrent ``BT_backup/<info-hash>.fastresume``: libtorrent's resume file (keys as
  libtorrent's ``write_resume_data`` writes them: ``info-hash``, ``info-hash2``,
  ``save_path``, ``added_time``, ``completed_time``, ``last_seen_complete``,
  ``total_downloaded``, ``total_uploaded``, ``pieces`` — a byte per piece, bit 0 set when
  the piece is held — and, since libtorrent 2, the ``info`` dictionary itself) plus
  qBittorrent's ``qBt-*`` keys. With an embedded ``info``, one record per file, matchable as
  a ``.torrent``'s; without, one record naming the torrent by its info-hash.
* uTorrent / BitTorrent ``resume.dat``: one dictionary whose keys are the ``.torrent`` file
  names, each value the torrent's state (``info`` — the 20-byte info-hash —, ``path``,
  ``caption``, ``added_on``, ``completed_on``, ``downloaded``, ``uploaded``, ``have``, a bit
  per piece). ``.fileguard`` (a checksum) and ``rec`` are not torrents.
* Transmission ``resume/*.resume``: ``name``, ``destination``, ``added-date``, ``done-date``,
  ``activity-date``, ``downloaded``, ``uploaded``, ``progress`` (newer versions spell the
  keys with ``_``). It holds no hash: the info-hash is the file's name, and the torrent's
  ``.torrent`` is kept in ``torrents/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

from hashwatch.scan.p2p.bencode import BencodeError, iter_top_dict
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord
from hashwatch.scan.p2p.torrent import (
    MAX_ARTIFACT_BYTES,
    info_records,
    iso_date,
    read_capped,
    text,
    torrent_details,
)

__all__ = ["QBittorrentResumeReader", "TransmissionResumeReader", "UTorrentResumeReader"]

_INFO_HASH_ONLY = (
    "the resume data names the torrent by its info-hash only: the file hashes are in its "
    ".torrent ({where})"
)


def _too_large(client: str, artifact: str) -> P2PReadProblem:
    return P2PReadProblem(client, artifact, None, f"larger than {MAX_ARTIFACT_BYTES} bytes")


def _top(
    data: bytes,
) -> tuple[dict[bytes, Any], dict[bytes, tuple[int, int]], BencodeError | None]:
    """The top-level dictionary's items read before any damage, their spans, the damage."""
    top: dict[bytes, Any] = {}
    spans: dict[bytes, tuple[int, int]] = {}
    try:
        for key, value, start, end in iter_top_dict(data):
            top[key] = value
            spans[key] = (start, end)
    except BencodeError as exc:
        return top, spans, exc
    return top, spans, None


def _hash_hex(value: Any, length: int) -> str | None:
    if isinstance(value, bytes) and len(value) == length and any(value):
        return value.hex()
    return None


def _numbers(source: dict[bytes, Any], keys: dict[str, tuple[bytes, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, spellings in keys.items():
        for key in spellings:
            value = source.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                out[field] = value
                break
    return out


def _dates(source: dict[bytes, Any], keys: dict[str, tuple[bytes, ...]]) -> dict[str, str]:
    return {
        field: when
        for field, value in _numbers(source, keys).items()
        if (when := iso_date(value)) is not None
    }


class QBittorrentResumeReader(P2PArtifactReader):
    client: ClassVar[str] = "qbittorrent"
    artifact: ClassVar[str] = "fastresume"

    def recognises(self, name: str, head: bytes) -> bool:
        return name.lower().endswith(".fastresume") and head.startswith(b"d")

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        data = read_capped(stream)
        if data is None:
            yield _too_large(self.client, self.artifact)
            return
        top, spans, damage = _top(data)
        if top:
            yield from self._records(top, data, spans)
        if damage is not None:
            yield P2PReadProblem(self.client, self.artifact, damage.offset, str(damage))

    def _records(
        self, top: dict[bytes, Any], data: bytes, spans: dict[bytes, tuple[int, int]]
    ) -> Iterator[P2PRecord | P2PReadProblem]:
        pieces = top.get(b"pieces")
        have_bits = pieces if isinstance(pieces, bytes) else None
        share = len([b for b in have_bits if b & 1]) / len(have_bits) if have_bits else None
        seed = top.get(b"seed_mode") == 1
        dates = _dates(
            top,
            {
                "added": (b"added_time",),
                "completed": (b"completed_time",),
                "last_seen_complete": (b"last_seen_complete",),
                "last_download": (b"last_download",),
                "last_upload": (b"last_upload",),
            },
        )
        details = _numbers(
            top,
            {
                "downloaded": (b"total_downloaded",),
                "uploaded": (b"total_uploaded",),
                "active_seconds": (b"active_time",),
                "seeding_seconds": (b"seeding_time",),
            },
        )
        for key, field in ((b"qBt-category", "category"), (b"libtorrent-version", "libtorrent")):
            value = text(top.get(key))
            if value:
                details[field] = value
        tags = top.get(b"qBt-tags")
        if isinstance(tags, list):
            details["tags"] = [t for t in (text(x) for x in tags) if t]
        save_path = text(top.get(b"qBt-savePath")) or text(top.get(b"save_path"))
        btih = _hash_hex(top.get(b"info-hash"), 20)
        btmh = _hash_hex(top.get(b"info-hash2"), 32)
        info = top.get(b"info")
        if isinstance(info, dict) and b"info" in spans:
            start, end = spans[b"info"]
            more, more_dates = torrent_details(top)

            def have(first: int, last: int) -> float | None:
                if seed:
                    return 1.0
                if not have_bits or last >= len(have_bits):
                    return None
                span = have_bits[first : last + 1]
                return len([b for b in span if b & 1]) / len(span)

            yield from info_records(
                info,
                data[start:end],
                client=self.client,
                artifact=self.artifact,
                details={**more, **details},
                dates={**more_dates, **dates},
                save_path=save_path,
                have=have,
                offset=start,
            )
            return
        if btih is None and btmh is None:
            yield P2PReadProblem(self.client, self.artifact, None, "no info-hash")
            return
        hashes = {"btih": btih} if btih else {}
        if btmh:
            hashes["btmh"] = "1220" + btmh
        name = text(top.get(b"qBt-name")) or text(top.get(b"name"))
        if seed:
            share = 1.0
        yield P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=0,
            name=name or None,
            hashes=hashes,
            dates=dates,
            complete=None if share is None else share >= 1.0,
            completeness=share,
            save_path=save_path,
            details=details,
            unmatchable=_INFO_HASH_ONLY.format(where="qBittorrent keeps it beside, by hash"),
        )


class UTorrentResumeReader(P2PArtifactReader):
    client: ClassVar[str] = "utorrent"
    artifact: ClassVar[str] = "resume.dat"

    def recognises(self, name: str, head: bytes) -> bool:
        lower = name.lower()
        return (lower == "resume.dat" or lower.startswith("resume.dat.")) and head.startswith(b"d")

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        data = read_capped(stream)
        if data is None:
            yield _too_large(self.client, self.artifact)
            return
        index = 0
        try:
            for key, value, start, _end in iter_top_dict(data):
                if key in (b".fileguard", b"rec"):
                    continue
                if not isinstance(value, dict):
                    yield P2PReadProblem(
                        self.client, self.artifact, start, "an entry that is not a dictionary"
                    )
                    continue
                yield self._record(index, key, value)
                index += 1
        except BencodeError as exc:
            yield P2PReadProblem(self.client, self.artifact, exc.offset, str(exc))

    def _record(self, index: int, key: bytes, entry: dict[bytes, Any]) -> P2PRecord:
        path = text(entry.get(b"path"))
        caption = text(entry.get(b"caption"))
        name = caption or (path.replace("\\", "/").rsplit("/", 1)[-1] if path else None)
        btih = _hash_hex(entry.get(b"info"), 20)
        dates = _dates(
            entry,
            {
                "added": (b"added_on",),
                "completed": (b"completed_on",),
                "last_seen_complete": (b"last_seen_complete",),
            },
        )
        details: dict[str, Any] = {"torrent_file": text(key)}
        details.update(
            _numbers(
                entry,
                {
                    "downloaded": (b"downloaded",),
                    "uploaded": (b"uploaded",),
                    "seeding_seconds": (b"seedtime",),
                    "active_seconds": (b"runtime",),
                },
            )
        )
        have = entry.get(b"have")
        if isinstance(have, bytes):
            details["pieces_have"] = sum(bin(b).count("1") for b in have)
        label = text(entry.get(b"label"))
        if label:
            details["label"] = label
        done = "completed" in dates
        return P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=index,
            name=name,
            hashes={"btih": btih} if btih else {},
            dates=dates,
            complete=True if done else (False if isinstance(have, bytes) else None),
            completeness=1.0 if done else None,
            save_path=path,
            details=details,
            unmatchable=_INFO_HASH_ONLY.format(where="named by the entry's key"),
        )


class TransmissionResumeReader(P2PArtifactReader):
    client: ClassVar[str] = "transmission"
    artifact: ClassVar[str] = "resume"

    def recognises(self, name: str, head: bytes) -> bool:
        if not (name.lower().endswith(".resume") and head.startswith(b"d")):
            return False
        return any(
            k in head
            for k in (b"11:destination", b"10:added-date", b"10:added_date", b"8:progress")
        )

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        data = read_capped(stream)
        if data is None:
            yield _too_large(self.client, self.artifact)
            return
        top, _spans, damage = _top(data)
        if top:
            yield self._record(top)
        if damage is not None:
            yield P2PReadProblem(self.client, self.artifact, damage.offset, str(damage))

    def _record(self, top: dict[bytes, Any]) -> P2PRecord:
        dates = _dates(
            top,
            {
                "added": (b"added-date", b"added_date"),
                "completed": (b"done-date", b"done_date"),
                "last_active": (b"activity-date", b"activity_date"),
            },
        )
        details = _numbers(
            top,
            {
                "downloaded": (b"downloaded",),
                "uploaded": (b"uploaded",),
                "corrupt": (b"corrupt",),
                "seeding_seconds": (b"seeding-time-seconds", b"seeding_time_seconds"),
                "active_seconds": (b"downloading-time-seconds", b"downloading_time_seconds"),
            },
        )
        incomplete = text(top.get(b"incomplete-dir")) or text(top.get(b"incomplete_dir"))
        if incomplete:
            details["incomplete_dir"] = incomplete
        progress = top.get(b"progress")
        state: str | None = None
        if isinstance(progress, dict):
            for key in (b"blocks", b"have"):
                value = progress.get(key)
                if value in (b"all", b"none"):
                    state = value.decode()
                    break
                if key == b"blocks" and isinstance(value, bytes):
                    # A bitfield of the blocks held: written only while some are missing.
                    details["blocks_have"] = sum(bin(b).count("1") for b in value)
                    state = "partial"
                    break
        share = {"all": 1.0, "none": 0.0}.get(state or "")
        if state is None and "completed" in dates:
            share = 1.0
        return P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=0,
            name=text(top.get(b"name")),
            dates=dates,
            complete=False if state == "partial" else (None if share is None else share >= 1.0),
            completeness=share,
            save_path=text(top.get(b"destination")),
            details=details,
            unmatchable=(
                "Transmission's resume data holds no hash: the info-hash is the resume file's "
                "name, and the file hashes are in its .torrent (torrents/)"
            ),
        )
