"""The case's clusters and thumbnails in machine-readable files, for importing into a review.

``report.html`` shows both to a person; ``clusters.jsonl`` (one :meth:`Cluster.as_json` a
line, in review order) and ``thumbnails.jsonl`` (``{"root", "path", "jpeg"}`` a line, the
small JPEG in base64) let ``hashwatch cases import`` record them without parsing HTML. Both
are scan outputs, recorded in the manifest like the others; neither holds full-size media.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from hashwatch.errors import HashwatchError
from hashwatch.scan.model import Cluster, ItemRecord

__all__ = [
    "CLUSTERS_FILE",
    "THUMBNAILS_FILE",
    "read_clusters",
    "read_thumbnails",
    "write_cluster_lines",
    "write_clusters",
    "write_thumbnails",
]

CLUSTERS_FILE = "clusters.jsonl"
THUMBNAILS_FILE = "thumbnails.jsonl"


# json.dumps(..., ensure_ascii=False)'s text, with the encoder made once (dumps with an
# argument makes a new one for every line).
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


def write_clusters(path: str | os.PathLike[str], clusters: Iterable[Cluster]) -> None:
    write_cluster_lines(path, (_ENCODE(cluster.as_json()) for cluster in clusters))


def write_cluster_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> None:
    """``clusters.jsonl`` from its lines as they are stored (each the JSON text of a
    :meth:`Cluster.as_json`, ``json.dumps(..., ensure_ascii=False)``): a scan's state keeps
    them so, and they need not be decoded and made again."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")


def write_thumbnails(path: str | os.PathLike[str], records: Iterable[ItemRecord]) -> None:
    """One line per record that has a thumbnail (an image's, a video's contact sheet).

    Each line is the text ``json.dumps({"root", "path", "jpeg"}, ensure_ascii=False)`` makes,
    put together around the JPEG's base64 (which JSON writes as it is): the encoder scanned
    ~4 KB of base64 a line for characters to escape (0.22 -> 0.06 s at 12,000 pictures)."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for record in records:
            if record.thumbnail:
                jpeg = base64.b64encode(record.thumbnail).decode("ascii")
                root, item = _ENCODE(record.root), _ENCODE(record.path)
                fh.write(f'{{"root": {root}, "path": {item}, "jpeg": "{jpeg}"}}\n')


def _lines(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HashwatchError(f"{path.name} line {number}: not JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                raise HashwatchError(f"{path.name} line {number}: not a JSON object")
            yield number, data


def read_clusters(path: str | os.PathLike[str]) -> list[Cluster]:
    """The clusters of ``clusters.jsonl``; none when the file is absent (an older case)."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for number, data in _lines(p):
        try:
            out.append(Cluster(**data))  # type: ignore[arg-type]
        except TypeError:
            raise HashwatchError(f"{p.name} line {number}: not a cluster") from None
    return out


def read_thumbnails(path: str | os.PathLike[str]) -> Iterator[tuple[str, str, bytes]]:
    """``(root, path, jpeg)`` per line of ``thumbnails.jsonl``; nothing when it is absent."""
    p = Path(path)
    if not p.exists():
        return
    for number, data in _lines(p):
        root, item, jpeg = data.get("root"), data.get("path"), data.get("jpeg")
        if not (isinstance(root, str) and isinstance(item, str) and isinstance(jpeg, str)):
            raise HashwatchError(f"{p.name} line {number}: root, path and jpeg expected")
        try:
            yield root, item, base64.b64decode(jpeg, validate=True)
        except binascii.Error:
            raise HashwatchError(f"{p.name} line {number}: jpeg is not base64") from None
