"""Where py7zr writes one 7z member: the bytes go to a :class:`Bridge`, never to a file.

Apart from :mod:`hashwatch.scan._archive_io` because the class subclasses py7zr's ``MemIO``:
importing it loads py7zr (and its codecs, several MiB per process), which only a 7z archive
needs; :mod:`hashwatch.scan.archives` imports this module when it opens one.
"""

from __future__ import annotations

from typing import Any, cast

from py7zr.io import MemIO

from hashwatch.scan._archive_io import CHUNK, Bridge

__all__ = ["Sink"]


class Sink(MemIO):
    """Where py7zr writes one member (it accepts a ``MemIO`` in place of a path): the bytes
    go to the bridge, never to a file."""

    def __init__(self, bridge: Bridge, entry: Any) -> None:
        super().__init__(str(entry.id), cast(Any, None))
        self._bridge, self._entry = bridge, entry

    def open(self, mode: str = "w") -> Sink:
        self._bridge.put("start", self._entry)
        return self

    def write(self, s: bytes | bytearray) -> int:
        view = memoryview(s if isinstance(s, bytes) else bytes(s))
        for i in range(0, len(view), CHUNK):
            self._bridge.put("data", view[i : i + CHUNK])
        return len(view)

    def close(self) -> None:
        self._bridge.put("end")

    def flush(self) -> None:
        pass

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:  # a failure (CRC) reaches the reader through "done" instead
            self.close()
