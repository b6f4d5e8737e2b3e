""".torrent files (BEP 3 v1, BEP 52 v2 and hybrids): one record per file of the torrent.

The info-hash is the hash of the exact bytes of the ``info`` dictionary as written: SHA-1
for v1 (``btih``), SHA-256 for v2 (``btmh``, spelled as its multihash ``1220<hex>``). The
hashes a list can match are each file's v2 ``pieces root`` (``bt_v2_root``; for a file of
one 16 KiB block it is the file's SHA-256), a single-file v1 torrent's pieces
(``bt_v1_pieces``; a file within one piece is named by its SHA-1 directly), and the
optional ``md5sum``/``sha1`` keys a file entry may carry. A file of a multi-file v1 torrent
has none of these: its pieces span files, which the record says.

:func:`info_records` is shared with the resume data that embeds an ``info`` dictionary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar

from hashwatch.scan.p2p.bencode import BencodeError, iter_top_dict
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord
from hashwatch.signals.bittorrent import BLOCK_SIZE, pieces_value

__all__ = [
    "MAX_ARTIFACT_BYTES",
    "MULTI_FILE_V1",
    "TorrentReader",
    "info_records",
    "iso_date",
    "read_capped",
    "text",
]

# A bencoded artifact is read whole, up to this size (a .torrent of a 100 GB file at 256 KiB
# pieces is 8 MB; resume data is smaller still).
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
MULTI_FILE_V1 = (
    "a file of a multi-file v1 torrent: its pieces span file boundaries, so its hash cannot "
    "be compared without the media"
)
_EMPTY = "an empty file: no hash names its content"
# Pieces a have-bitfield covers -> the share of a file's pieces the client has.
HaveShare = Callable[[int, int], float | None]


def read_capped(stream: BinaryIO, limit: int = MAX_ARTIFACT_BYTES) -> bytes | None:
    """The whole artifact, or None when it is larger than ``limit``."""
    data = stream.read(limit + 1)
    return None if len(data) > limit else data


def text(value: Any) -> str | None:
    """A byte string as text (UTF-8; undecodable bytes replaced), None if not a string."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return None


def iso_date(value: Any) -> str | None:
    """A Unix time as ISO-8601 UTC; None for 0, negative, absurd or non-integer values."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 1 << 34:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _hex_or_raw(value: Any, raw_length: int) -> str | None:
    """A digest given as raw bytes or hex text, as lower-case hex."""
    if not isinstance(value, bytes):
        return None
    if len(value) == raw_length:
        return value.hex()
    if len(value) == 2 * raw_length:
        try:
            return bytes.fromhex(value.decode("ascii")).hex()
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def _path(parts: Any) -> str | None:
    if not isinstance(parts, list) or not parts or not all(isinstance(p, bytes) for p in parts):
        return None
    return "/".join(p.decode("utf-8", errors="replace") for p in parts)


class _File:
    def __init__(self, path: str, length: int, offset: int) -> None:
        self.path = path
        self.length = length
        self.offset = offset  # where the file starts in the torrent's piece space
        self.root: bytes | None = None
        self.md5: str | None = None
        self.sha1: str | None = None


def _v1_files(info: dict[bytes, Any], name: str) -> list[_File] | str:
    files = info.get(b"files")
    if files is None:
        length = _number(info.get(b"length"))
        return [_File(name, length, 0)] if length is not None else "no file length"
    if not isinstance(files, list):
        return "'files' is not a list"
    out: list[_File] = []
    offset = 0
    for entry in files:
        if not isinstance(entry, dict):
            return "a file entry is not a dictionary"
        length = _number(entry.get(b"length"))
        path = _path(entry.get(b"path.utf-8")) or _path(entry.get(b"path"))
        if length is None or path is None:
            return "a file entry without its length or path"
        attr = entry.get(b"attr")
        if not (isinstance(attr, bytes) and b"p" in attr):  # BEP 47 padding: not a file
            f = _File(f"{name}/{path}", length, offset)
            md5 = entry.get(b"md5sum")
            f.md5 = _hex_or_raw(md5, 16)
            f.sha1 = _hex_or_raw(entry.get(b"sha1"), 20)
            out.append(f)
        offset += length
    return out


def _is_file_node(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get(b""), dict)


def _v2_files(info: dict[bytes, Any], name: str, piece_length: int) -> list[_File] | str:
    tree = info.get(b"file tree")
    if not isinstance(tree, dict) or not tree:
        return "a v2 torrent without its 'file tree'"
    # One file at the root: a single-file torrent, named by itself; else under the name.
    single = len(tree) == 1 and _is_file_node(next(iter(tree.values())))
    out: list[_File] = []
    offset = 0
    # Depth first, keys in their written (sorted) order, as clients number the files.
    stack: list[tuple[str, Iterator[tuple[bytes, Any]]]] = [
        ("" if single else name, iter(tree.items()))
    ]
    while stack:
        prefix, items = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        key, child = item
        part = key.decode("utf-8", errors="replace")
        path = f"{prefix}/{part}" if prefix else part
        if not isinstance(child, dict) or not key:
            return "a 'file tree' node is not a dictionary"
        if not _is_file_node(child):
            stack.append((path, iter(child.items())))
            continue
        leaf = child[b""]
        length = _number(leaf.get(b"length"))
        if length is None:
            return "a 'file tree' file without its length"
        f = _File(path, length, offset)
        root = leaf.get(b"pieces root")
        if isinstance(root, bytes) and len(root) == 32:
            f.root = root
        out.append(f)
        offset += -(-length // piece_length) * piece_length  # v2 files start on pieces
    return out


def info_records(
    info: dict[bytes, Any],
    info_bytes: bytes,
    *,
    client: str,
    artifact: str,
    details: dict[str, Any],
    dates: dict[str, str] | None = None,
    save_path: str | None = None,
    have: HaveShare | None = None,
    offset: int | None = None,
) -> Iterator[P2PRecord | P2PReadProblem]:
    """The records of the files an ``info`` dictionary describes (its exact bytes give the
    info-hashes); ``have(first_piece, last_piece)`` gives the share of a file's pieces held."""

    def problem(message: str) -> P2PReadProblem:
        return P2PReadProblem(client, artifact, offset, f"info dictionary: {message}")

    name = text(info.get(b"name.utf-8")) or text(info.get(b"name"))
    piece_length = _number(info.get(b"piece length"))
    if name is None or not piece_length:
        yield problem("no name or piece length")
        return
    v2 = info.get(b"meta version") == 2
    raw_pieces = info.get(b"pieces")
    v1 = isinstance(raw_pieces, bytes)
    pieces = raw_pieces if isinstance(raw_pieces, bytes) else b""
    if not v1 and not v2:
        yield problem("neither v1 pieces nor a v2 file tree")
        return
    if v1 and len(pieces) % 20:
        yield problem("'pieces' is not a whole number of SHA-1 hashes")
        return
    ids: dict[str, str] = {}
    if v1:
        ids["btih"] = hashlib.sha1(info_bytes).hexdigest()
    if v2:
        ids["btmh"] = "1220" + hashlib.sha256(info_bytes).hexdigest()
    v1_files = _v1_files(info, name) if v1 else []
    files = _v2_files(info, name, piece_length) if v2 else v1_files
    if isinstance(files, str) or isinstance(v1_files, str):
        yield problem(str(files if isinstance(files, str) else v1_files))
        return
    by_path = {f.path: f for f in v1_files}
    common: dict[str, Any] = {
        "torrent_name": name,
        "files": len(files),
        "piece_length": piece_length,
        "pieces": len(pieces) // 20 if v1 else None,
        "meta_version": 2 if v2 else 1,
        "hybrid": v1 and v2,
        "private": info.get(b"private") == 1,
        **details,
    }
    single_v1 = v1 and b"files" not in info
    for index, f in enumerate(files):
        hashes = dict(ids)
        extra = by_path.get(f.path) if v2 else f
        if extra is not None:
            if extra.md5:
                hashes["md5"] = extra.md5
            if extra.sha1:
                hashes["sha1"] = extra.sha1
        if f.root is not None:
            hashes["bt_v2_root"] = f.root.hex()
            if f.length <= BLOCK_SIZE:  # one leaf: the root is the file's SHA-256
                hashes["sha256"] = f.root.hex()
        if single_v1 and f.length:
            hashes["bt_v1_pieces"] = pieces_value(piece_length, pieces)
            if f.length <= piece_length and len(pieces) == 20:  # one piece: the file's SHA-1
                hashes["sha1"] = pieces.hex()
        unmatchable = None
        if f.length == 0:
            unmatchable = _EMPTY
        elif not any(k in hashes for k in ("bt_v2_root", "bt_v1_pieces", "md5", "sha1")):
            unmatchable = MULTI_FILE_V1
        share = None
        if have is not None and f.length:
            first = f.offset // piece_length
            share = have(first, (f.offset + f.length - 1) // piece_length)
        yield P2PRecord(
            client=client,
            artifact=artifact,
            index=index,
            name=f.path,
            size=f.length,
            hashes=hashes,
            dates=dict(dates or {}),
            complete=None if share is None else share >= 1.0,
            completeness=share,
            save_path=save_path,
            details={**common, "file_index": index},
            unmatchable=unmatchable,
        )


def _announce(top: dict[bytes, Any]) -> list[str]:
    out = [t for t in [text(top.get(b"announce"))] if t]
    tiers = top.get(b"announce-list")
    if isinstance(tiers, list):
        for tier in tiers:
            for url in tier if isinstance(tier, list) else []:
                shown = text(url)
                if shown and shown not in out:
                    out.append(shown)
    return out[:20]


def torrent_details(top: dict[bytes, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """What a metainfo file (or resume data carrying the same keys) says beside ``info``."""
    details: dict[str, Any] = {}
    trackers = _announce(top)
    if trackers:
        details["announce"] = trackers
    for key, field in ((b"created by", "created_by"), (b"comment", "comment")):
        value = text(top.get(key))
        if value:
            details[field] = value[:1000]
    created = iso_date(top.get(b"creation date"))
    return details, ({"created": created} if created else {})


class TorrentReader(P2PArtifactReader):
    """A ``.torrent`` metainfo file (any client, a browser's downloads, a client's cache)."""

    client: ClassVar[str] = "bittorrent"
    artifact: ClassVar[str] = "torrent"

    def recognises(self, name: str, head: bytes) -> bool:
        if not head.startswith(b"d"):
            return False
        if name.lower().endswith(".torrent"):
            return True
        return head.startswith((b"d8:announce", b"d13:announce-list")) and b"4:info" in head

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        data = read_capped(stream)
        if data is None:
            yield P2PReadProblem(
                self.client, self.artifact, None, f"larger than {MAX_ARTIFACT_BYTES} bytes"
            )
            return
        top: dict[bytes, Any] = {}
        span: tuple[int, int] | None = None
        damage: BencodeError | None = None
        try:
            for key, value, start, end in iter_top_dict(data):
                top[key] = value
                if key == b"info":
                    span = (start, end)
        except BencodeError as exc:
            damage = exc
        info = top.get(b"info")
        if span is not None and isinstance(info, dict):
            details, dates = torrent_details(top)
            yield from info_records(
                info,
                data[span[0] : span[1]],
                client=self.client,
                artifact=self.artifact,
                details=details,
                dates=dates,
                offset=span[0],
            )
        elif damage is None:
            yield P2PReadProblem(self.client, self.artifact, None, "no info dictionary")
        if damage is not None:
            yield P2PReadProblem(self.client, self.artifact, damage.offset, str(damage))
