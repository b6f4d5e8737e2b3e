"""Gnutella clients' records: LimeWire's ``fileurns.cache`` and ``createtimes.cache`` (FrostWire
before 5 and LimeWire's forks write the same files).

Both are one Java-serialised ``HashMap`` (LimeWire's ``UrnCache`` and ``CreationTimeCache``):

* ``fileurns.cache``: ``UrnCache$UrnSetKey`` -> set of ``URN``. The key's ``writeObject`` writes
  the file's modification time (long, Java milliseconds) and its absolute path; the value is a
  ``UrnSet`` (fields ``sha1``, ``ttroot``, ``nms1``) in LimeWire 5, a ``HashSet`` or an
  unmodifiable set of ``URN`` before. A ``URN``'s ``writeObject`` writes its text
  (``urn:sha1:<32 Base32>``, ``urn:ttroot:<39 Base32>``, ``urn:nms1:...``) with ``writeUTF``.
* ``createtimes.cache``: ``URN`` -> ``Long``, the time (Java milliseconds) the file entered the
  library.

Keys given as ``java.io.File`` or as strings are read too. Entries are read one at a time from
the stream; an entry that holds no URN or path is reported and reading goes on.

Shareaza's library is read by :mod:`hashwatch.scan.p2p.shareaza`, LimeWire 5's
``downloads.dat`` by :mod:`hashwatch.scan.p2p.limewire_downloads`; see docs/scan.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from hashwatch.scan.p2p._cursor import Cursor, Malformed, Truncated, iso_utc
from hashwatch.scan.p2p._javaser import JavaObject, JavaStream, read_java_utf
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord

__all__ = [
    "READERS",
    "CreateTimesCacheReader",
    "FileUrnsCacheReader",
    "hashes_of_urns",
    "urns_in",
]

_JAVA_MAGIC = b"\xac\xed\x00\x05"
_SHA1 = re.compile(r"urn:sha1:([A-Za-z2-7]{32})", re.IGNORECASE)
_TTROOT = re.compile(r"urn:(?:ttroot|tree:tiger/?):([A-Za-z2-7]{39})", re.IGNORECASE)
_MAX_WALK = 64  # objects looked at for one entry's URNs


def _urn_text(obj: JavaObject) -> str | None:
    """A LimeWire ``URN``'s text: the ``writeUTF`` at the start of its writeObject data."""
    for item in obj.annotations.get(obj.class_name, []):
        if isinstance(item, bytes) and len(item) >= 2:
            length = int.from_bytes(item[:2], "big")
            if len(item) >= 2 + length:
                try:
                    return read_java_utf(item[2 : 2 + length])
                except UnicodeDecodeError:
                    return None
        break
    for values in obj.fields.values():  # a URN kept as a field by another version
        for value in values.values():
            if isinstance(value, str) and value.lower().startswith("urn:"):
                return value
    return None


def urns_in(value: Any) -> list[str]:
    """The URN texts in an entry's key or value (a URN, a set of them, a LimeWire UrnSet)."""
    found: list[str] = []
    pending = [value]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_WALK:
        item = pending.pop()
        if isinstance(item, str):
            if item.lower().startswith("urn:"):
                found.append(item)
            continue
        if not isinstance(item, JavaObject) or id(item) in seen:
            continue
        seen.add(id(item))
        if item.class_name.endswith(".URN"):
            text = _urn_text(item)
            if text is not None:
                found.append(text)
            continue
        for values in item.fields.values():
            pending.extend(values.values())
        for items in item.annotations.values():
            pending.extend(items)
    return sorted(set(found))


def hashes_of_urns(urns: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """A record's hashes (``sha1_base32``, ``tth``) from URN texts; other URNs in details."""
    hashes: dict[str, str] = {}
    details: dict[str, Any] = {}
    for urn in urns:
        sha1 = _SHA1.fullmatch(urn)
        tth = _TTROOT.fullmatch(urn)
        if sha1:
            hashes["sha1_base32"] = sha1.group(1).upper()
        elif tth:
            hashes["tth"] = tth.group(1).upper()
        else:
            details.setdefault("other_urns", []).append(urn[:200])
    return hashes, details


def _file_key(key: Any) -> tuple[str | None, int | None]:
    """(path, modification time in ms) of a ``UrnSetKey``, ``File`` or string key."""
    if isinstance(key, str):
        return key, None
    if not isinstance(key, JavaObject):
        return None, None
    if key.class_name.endswith("UrnSetKey"):
        items = key.annotations.get(key.class_name, [])
        path = next((i for i in items if isinstance(i, str)), None)
        block = next((i for i in items if isinstance(i, bytes)), b"")
        modified = int.from_bytes(block[:8], "big", signed=True) if len(block) >= 8 else None
        return path, modified
    if key.class_name == "java.io.File":
        path = key.fields.get("java.io.File", {}).get("path")
        return (path if isinstance(path, str) else None), None
    return None, None


def _base_name(path: str) -> str:
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1] or path


class _CacheReader(P2PArtifactReader):
    file_name = ""

    def recognises(self, name: str, head: bytes) -> bool:
        lower = name.lower()
        return lower in (self.file_name, self.file_name[:-6] + ".bak") and head.startswith(
            _JAVA_MAGIC
        )

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        cur = Cursor(stream)
        java = JavaStream(cur)
        index = 0
        start = 0
        try:
            java.header()
            for key, value in java.map_entries():
                item = self.entry(index, key, value)
                if isinstance(item, str):
                    yield self.problem(start, f"entry {index}: {item}", index)
                else:
                    yield item
                index += 1
                start = cur.offset
        except (Truncated, Malformed) as exc:
            yield self.problem(cur.offset, f"entry {index}: {exc}", index)

    def entry(self, index: int, key: Any, value: Any) -> P2PRecord | str:
        raise NotImplementedError


class FileUrnsCacheReader(_CacheReader):
    """LimeWire's ``fileurns.cache``: the URNs (SHA-1, tiger tree) of each file it shared."""

    client = "limewire"
    artifact = "fileurns.cache"
    file_name = "fileurns.cache"

    def entry(self, index: int, key: Any, value: Any) -> P2PRecord | str:
        path, modified = _file_key(key)
        urns = urns_in(value)
        if path is None and not urns:
            return "neither a file path nor a URN"
        hashes, details = hashes_of_urns(urns)
        dates: dict[str, str] = {}
        when = iso_utc(modified / 1000) if modified else None
        if when is not None:
            dates["file_modified"] = when
        return P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=index,
            name=_base_name(path) if path else None,
            hashes=hashes,
            dates=dates,
            complete=True,
            save_path=path,
            details=details,
        )


class CreateTimesCacheReader(_CacheReader):
    """LimeWire's ``createtimes.cache``: when each file (by SHA-1) entered the library."""

    client = "limewire"
    artifact = "createtimes.cache"
    file_name = "createtimes.cache"

    def entry(self, index: int, key: Any, value: Any) -> P2PRecord | str:
        hashes, details = hashes_of_urns(urns_in(key))
        if not hashes and not details:
            return "no URN"
        millis: int | None = None
        if isinstance(value, JavaObject):
            held = value.fields.get("java.lang.Long", {}).get("value")
            millis = held if isinstance(held, int) else None
        dates: dict[str, str] = {}
        when = iso_utc(millis / 1000) if millis else None
        if when is not None:
            dates["added"] = when
        return P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=index,
            hashes=hashes,
            dates=dates,
            complete=True,
            details=details,
        )


READERS: tuple[P2PArtifactReader, ...] = (FileUrnsCacheReader(), CreateTimesCacheReader())
