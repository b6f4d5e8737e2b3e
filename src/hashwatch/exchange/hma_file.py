"""HMA's local-file exchange as a :class:`~hashwatch.exchange.base.SignalExchange` (kind
``file``): the reference implementation and test double of the seam.

The file is what python-threatexchange's ``LocalFileSignalExchangeAPI`` (``impl/file_api.py``)
reads: one signal a line, ``<signal type> <value>``, or bare values when the ``signal_type``
option names their type. Signal type names are hashwatch's or their aliases, plus pytx's
``video_md5``/``video_sha256``; a line of any other type, or a value that is not valid for its
type, is kept out and counted in :attr:`FileExchange.unmapped`. It needs no extra package.

pytx re-reads the whole file each time and never deletes. This exchange yields changes only:
its checkpoint holds the keys it has applied (an entry's key is ``<type>:<value>``, the same
values the subscriber's list holds, in the same database), so a line that appeared arrives as
an entry and a line that disappeared as ``None``. It suits files up to some hundred thousand
lines; a larger list is better served as a hashwatch feed. A CONFIRMED opinion appends the entry's
signals to the file, as pytx's ``report_opinion`` does; the file format has no place for any
other opinion.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from hashwatch.errors import ExchangeError
from hashwatch.exchange._http import known_hash
from hashwatch.exchange.base import (
    FetchDelta,
    Opinion,
    PeerConfig,
    RemoteEntry,
    SharedHash,
    SignalExchange,
    register,
)

__all__ = ["FileCheckpoint", "FileExchange"]

_PYTX_NAMES = {"video_md5": "md5", "video_sha256": "sha256"}


@dataclass(frozen=True)
class FileCheckpoint:
    """The keys applied so far."""

    keys: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {"keys": sorted(self.keys)}

    def is_stale(self) -> bool:
        return False  # the file is read whole each time


@register
class FileExchange(SignalExchange[FileCheckpoint]):
    """A signal file. ``url``: its path or a ``file://`` URL; option ``signal_type``: the
    type of lines that carry a bare value."""

    kind = "file"

    def __init__(self, config: PeerConfig) -> None:
        super().__init__(config)
        parsed = urlparse(config.url)
        self.path = Path(unquote(parsed.path) if parsed.scheme == "file" else config.url)
        self._default_type = config.options.get("signal_type")
        self.unmapped: Counter[str] = Counter()  # signal type -> lines kept out

    @classmethod
    def checkpoint_from_json(cls, data: Mapping[str, Any]) -> FileCheckpoint:
        return FileCheckpoint(frozenset(str(k) for k in data["keys"]))

    def _read(self) -> dict[str, RemoteEntry]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ExchangeError(
                f"peer {self.config.name!r}: cannot read the signal file ({exc.strerror})"
            ) from None
        entries: dict[str, RemoteEntry] = {}
        for line in lines:
            text = line.strip()
            if not text:
                continue
            signal_type = self._default_type
            if signal_type is None:
                signal_type, _, text = text.partition(" ")
            known = known_hash(_PYTX_NAMES.get(signal_type, signal_type), text.strip())
            if known is None:
                self.unmapped[signal_type] += 1
                continue
            key = f"{known[0]}:{known[1]}"
            entries[key] = RemoteEntry(
                key=key,
                hashes=(SharedHash(*known),),
                provenance={"org": self.config.name, "list": self.path.name},
            )
        return entries

    def fetch_iter(self, checkpoint: FileCheckpoint | None) -> Iterator[FetchDelta[FileCheckpoint]]:
        entries = self._read()
        before = checkpoint.keys if checkpoint else frozenset()
        updates: dict[str, RemoteEntry | None] = {
            key: entry for key, entry in entries.items() if key not in before
        }
        updates.update(dict.fromkeys(sorted(before - entries.keys())))
        yield FetchDelta(updates, FileCheckpoint(frozenset(entries)))

    def report_opinion(
        self, entry: RemoteEntry, opinion: Opinion, reason: str | None = None
    ) -> None:
        """Append the entry's signals to the file (CONFIRMED only, as pytx)."""
        if opinion is not Opinion.CONFIRMED:
            raise ExchangeError(
                f"a signal file takes confirmed signals only, not {opinion.value!r} opinions"
            )
        lines = "".join(f"{h.hash_type} {h.value}\n" for h in entry.hashes)
        try:
            with self.path.open("rb") as f:
                f.seek(0, 2)
                ends_in_newline = f.tell() == 0 or (f.seek(-1, 2) >= 0 and f.read(1) == b"\n")
            with self.path.open("a", encoding="utf-8") as f:
                f.write(("" if ends_in_newline else "\n") + lines)
        except OSError as exc:
            raise ExchangeError(
                f"peer {self.config.name!r}: cannot write the signal file ({exc.strerror})"
            ) from None
