"""LimeWire 5's ``downloads.dat`` (and its ``downloads.bak``): the downloads in progress or
waiting when LimeWire last saved them, with the SHA-1 of each wanted file.

Layout as LimeWire 5's published source writes it (``DownloadSerializerImpl``,
``FileUtils.writeWithBackupFile``, the ``*DownloadMementoImpl`` classes of
``com.limegroup.gnutella.downloader.serial``): one Java-serialised ``ArrayList`` of mementos,
each a class whose only field is ``serialObjects``, a ``HashMap`` from a property name to its
value. The memento classes exist so that the file no longer depends on the downloaders' own
classes; the properties read here:

* ``defaultFileName`` (``name`` for a torrent), ``contentLength`` (``Long``), ``sha1Urn`` (a
  ``URN``; a string ``urn:sha1:...`` for a libtorrent download), ``saveFile`` and
  ``incompleteFile`` (``java.io.File``), ``downloadType`` (``DownloaderType``), a torrent's
  ``torrentPath``, ``fastResumePath`` and ``trackers``; any other URN held by a memento
  (``urn:sha1:``, ``urn:ttroot:``) is kept too.

Not read: LimeWire 4's ``downloads.dat`` (in the ``Incomplete`` folder), which serialised the
downloaders themselves (``ManagedDownloader``, ``ResumeDownloader``, ``RemoteFileDesc``, ...)
with layouts that changed between 4.x releases; LimeWire 5 converts it with per-release
classes (``SerialResumeDownloader4x11``, ``4x16``, ``SerialRemoteFileDesc3x0``, ``4x14``,
``4x16``). Such a file is reported, naming its first class, and not guessed at.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from hashwatch.scan.p2p._cursor import Cursor, Malformed, Truncated
from hashwatch.scan.p2p._javaser import JavaEnum, JavaObject, JavaStream
from hashwatch.scan.p2p.gnutella import hashes_of_urns, urns_in
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord

__all__ = ["READERS", "DownloadsDatReader"]

_JAVA_MAGIC = b"\xac\xed\x00\x05"
_MEMENTO_PACKAGE = "com.limegroup.gnutella.downloader.serial."
_KEPT_TEXT = 500
_LIMEWIRE_4 = "LimeWire 4's downloads.dat, whose layout changed between releases, is not read"


def _properties(memento: JavaObject) -> dict[str, Any]:
    """The ``serialObjects`` map of a memento, as name -> value."""
    values = memento.fields.get(memento.class_name, {})
    table = values.get("serialObjects")
    if not isinstance(table, JavaObject):
        return {}
    items = [i for i in table.annotations.get("java.util.HashMap", []) if not isinstance(i, bytes)]
    return {k: v for k, v in zip(items[::2], items[1::2], strict=False) if isinstance(k, str)}


def _path(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, JavaObject) and value.class_name == "java.io.File":
        path = value.fields.get("java.io.File", {}).get("path")
        return path if isinstance(path, str) else None
    return None


def _number(value: Any) -> int | None:
    if isinstance(value, JavaObject) and value.class_name == "java.lang.Long":
        number = value.fields.get("java.lang.Long", {}).get("value")
        return number if isinstance(number, int) else None
    return None


class DownloadsDatReader(P2PArtifactReader):
    """LimeWire 5's ``downloads.dat``: the downloads it meant to finish, by SHA-1."""

    client = "limewire"
    artifact = "downloads.dat"

    def recognises(self, name: str, head: bytes) -> bool:
        return name.lower() in ("downloads.dat", "downloads.bak") and head.startswith(_JAVA_MAGIC)

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        cur = Cursor(stream)
        java = JavaStream(cur)
        index = 0
        try:
            java.header()
            for item in java.list_items():
                start = cur.offset
                if not isinstance(item, JavaObject) or not item.class_name.startswith(
                    _MEMENTO_PACKAGE
                ):
                    what = item.class_name if isinstance(item, JavaObject) else type(item).__name__
                    yield self.problem(start, f"download {index}: a {what}, not a memento", index)
                else:
                    yield self.record(index, item)
                index += 1
        except (Truncated, Malformed) as exc:
            message = str(exc)
            if "not a list" in message:
                message += f" ({_LIMEWIRE_4})"
            yield self.problem(cur.offset, f"download {index}: {message}", index)

    def record(self, index: int, memento: JavaObject) -> P2PRecord:
        props = _properties(memento)
        urns = urns_in(props.get("sha1Urn"))
        for value in props.values():
            urns += [u for u in urns_in(value) if u not in urns]
        hashes, details = hashes_of_urns(urns)
        details["memento"] = memento.class_name.removeprefix(_MEMENTO_PACKAGE)
        kind = props.get("downloadType")
        if isinstance(kind, JavaEnum):
            details["download_type"] = kind.constant
        incomplete = _path(props.get("incompleteFile"))
        if incomplete:
            details["incomplete_file"] = incomplete[:_KEPT_TEXT]
        for key in ("torrentPath", "fastResumePath"):
            if isinstance(props.get(key), str):
                details[key] = props[key][:_KEPT_TEXT]
        name = props.get("defaultFileName") or props.get("name")
        return P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=index,
            name=name if isinstance(name, str) else None,
            size=_number(props.get("contentLength")),
            hashes=hashes,
            complete=False,
            save_path=_path(props.get("saveFile")),
            details=details,
        )


READERS: tuple[P2PArtifactReader, ...] = (DownloadsDatReader(),)
