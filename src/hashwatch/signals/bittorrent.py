"""BitTorrent's ways of naming a file's bytes, as signal types a list entry can carry.

* ``bt_v2_root`` (BEP 52): the root of a SHA-256 merkle tree over the file's 16 KiB blocks
  (the last block may be shorter), its leaves padded with zero hashes to a power of two. A
  v2 or hybrid torrent names each of its files by this root, so a torrent's file matches a
  list entry whose media is known. An empty file has no root.
* ``bt_v1_pieces``: a v1 torrent names its content only by SHA-1 hashes of fixed-length
  pieces. For a single-file v1 torrent those pieces are the file's own, so hashwatch spells
  them as ``"<piece length>:<SHA-256 of the concatenated 20-byte piece hashes>"``: the
  torrent record computes it from its ``pieces`` field, a list entry from the media at the
  piece lengths the curator asks for. The piece length is part of the value because the
  same file hashes differently at each length.

Both are computed in constant memory from blocks fed in order (:class:`BitTorrentAccumulator`,
the hasher's one-pass read when asked) and from bytes (the reference hashers).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from hashwatch.signals.signal_type import HexDigestType, SignalType, SignalValueError

if TYPE_CHECKING:
    from hashwatch.signals.hasher import FileSignals

__all__ = [
    "BITTORRENT_SIGNAL_TYPES",
    "BLOCK_SIZE",
    "COMMON_PIECE_LENGTHS",
    "DEFAULT_PIECE_LENGTH",
    "MAX_PIECE_LENGTH",
    "BitTorrentAccumulator",
    "BitTorrentDigests",
    "BtV1PiecesSignal",
    "BtV2RootSignal",
    "V2RootAccumulator",
    "pieces_value",
    "v1_pieces_digest",
    "v2_root",
]

BLOCK_SIZE = 16 * 1024  # BEP 52's merkle leaf
# The piece length a ``bt_v1_pieces`` value is computed at when none is named (the
# reference hasher): 256 KiB, the most common piece length of small torrents.
DEFAULT_PIECE_LENGTH = 256 * 1024
# Piece lengths most clients choose for files of a few MB to a few GB.
COMMON_PIECE_LENGTHS = tuple(1 << n for n in range(18, 23))  # 256 KiB .. 4 MiB
MAX_PIECE_LENGTH = 1 << 30
_ZERO = bytes(32)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class V2RootAccumulator:
    """BEP 52's file root from blocks fed in order, in memory of one hash per tree level."""

    def __init__(self) -> None:
        self._leaf = hashlib.sha256()
        self._fill = 0
        self._size = 0
        # (level, hash) of completed subtrees, levels strictly decreasing: the binary
        # representation of the number of leaves so far.
        self._stack: list[tuple[int, bytes]] = []

    def _push(self, leaf: bytes) -> None:
        level, node = 0, leaf
        stack = self._stack
        while stack and stack[-1][0] == level:
            node = _sha256(stack.pop()[1] + node)
            level += 1
        stack.append((level, node))

    def update(self, block: bytes | memoryview) -> None:
        view = memoryview(block)
        self._size += len(view)
        if self._fill:
            part = view[: BLOCK_SIZE - self._fill]
            self._leaf.update(part)
            self._fill += len(part)
            view = view[len(part) :]
            if self._fill < BLOCK_SIZE:
                return
            self._push(self._leaf.digest())
            self._leaf, self._fill = hashlib.sha256(), 0
        whole = len(view) - len(view) % BLOCK_SIZE
        for start in range(0, whole, BLOCK_SIZE):
            self._push(hashlib.sha256(view[start : start + BLOCK_SIZE]).digest())
        if whole < len(view):
            self._leaf.update(view[whole:])
            self._fill = len(view) - whole

    def finish(self) -> str | None:
        """The root in hex; None for an empty file (BEP 52: it has no ``pieces root``)."""
        if self._fill:
            self._push(self._leaf.digest())
            self._leaf, self._fill = hashlib.sha256(), 0
        if self._size == 0:
            return None
        stack = list(self._stack)
        # Complete the tree with zero leaves: the rightmost subtree is paired with zero
        # subtrees until it is as high as its left neighbour, then merged with it.
        zeros = [_ZERO]
        level, node = stack.pop()
        while stack:
            while level < stack[-1][0]:
                while len(zeros) <= level:
                    zeros.append(_sha256(zeros[-1] + zeros[-1]))
                node = _sha256(node + zeros[level])
                level += 1
            node = _sha256(stack.pop()[1] + node)
            level += 1
        return node.hex()


def pieces_value(piece_length: int, piece_hashes: bytes) -> str:
    """The ``bt_v1_pieces`` value of a v1 torrent's ``pieces`` field at its piece length."""
    return f"{piece_length}:{hashlib.sha256(piece_hashes).hexdigest()}"


class _V1PiecesAccumulator:
    def __init__(self, piece_length: int) -> None:
        if not 0 < piece_length <= MAX_PIECE_LENGTH:
            raise ValueError(f"piece length must be 1..{MAX_PIECE_LENGTH} bytes")
        self.piece_length = piece_length
        self._piece = hashlib.sha1()
        self._fill = 0
        self._concat = hashlib.sha256()

    def update(self, block: bytes | memoryview) -> None:
        view = memoryview(block)
        length = self.piece_length
        while view:
            part = view[: length - self._fill]
            if self._fill == 0 and len(part) == length:
                self._concat.update(hashlib.sha1(part).digest())
            else:
                self._piece.update(part)
                self._fill += len(part)
                if self._fill == length:
                    self._concat.update(self._piece.digest())
                    self._piece, self._fill = hashlib.sha1(), 0
            view = view[len(part) :]

    def finish(self) -> str:
        if self._fill:
            self._concat.update(self._piece.digest())
            self._piece, self._fill = hashlib.sha1(), 0
        return f"{self.piece_length}:{self._concat.hexdigest()}"


@dataclass(frozen=True)
class BitTorrentDigests:
    """A file's BitTorrent values: its v2 root (None when empty) and v1 pieces digests."""

    v2_root: str | None
    v1_pieces: tuple[str, ...] = ()


class BitTorrentAccumulator:
    """Feed blocks in order with :meth:`update`, then call :meth:`finish` once."""

    def __init__(self, piece_lengths: Sequence[int] = ()) -> None:
        self._root = V2RootAccumulator()
        self._pieces = [_V1PiecesAccumulator(n) for n in dict.fromkeys(piece_lengths)]

    def update(self, block: bytes | memoryview) -> None:
        self._root.update(block)
        for acc in self._pieces:
            acc.update(block)

    def finish(self) -> BitTorrentDigests:
        return BitTorrentDigests(self._root.finish(), tuple(a.finish() for a in self._pieces))


def _blocks(stream: BinaryIO, size: int = 1 << 20) -> Iterable[bytes]:
    while block := stream.read(size):
        yield block


def v2_root(stream: BinaryIO) -> str | None:
    """BEP 52's ``pieces root`` of the bytes read from ``stream`` (None when empty)."""
    acc = V2RootAccumulator()
    for block in _blocks(stream):
        acc.update(block)
    return acc.finish()


def v1_pieces_digest(stream: BinaryIO, piece_length: int) -> str:
    """``"<piece_length>:<hex>"``: SHA-256 over the SHA-1 of each ``piece_length`` piece of
    the bytes read from ``stream`` (the last piece may be shorter)."""
    acc = _V1PiecesAccumulator(piece_length)
    for block in _blocks(stream):
        acc.update(block)
    return acc.finish()


class BtV2RootSignal(HexDigestType):
    """BEP 52's per-file merkle root (SHA-256, 16 KiB leaves): matched by equality."""

    name = "bt_v2_root"
    aliases = ("pieces_root", "btv2root")
    hex_length = 64
    fields = ("bt_v2_root",)
    media_entry = True

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        bt = fs.bittorrent
        return (bt.v2_root,) if bt is not None and bt.v2_root is not None else ()

    def hash_bytes(self, data: bytes) -> str | None:
        acc = V2RootAccumulator()
        acc.update(data)
        return acc.finish()


_PIECES = re.compile(r"^([1-9][0-9]{0,9}):([0-9a-f]{64})$")


class BtV1PiecesSignal(SignalType):
    """A single-file v1 torrent's pieces at its piece length (see the module docstring)."""

    name = "bt_v1_pieces"
    aliases = ("btv1pieces",)
    fields = ("bt_v1_pieces",)
    media_entry = True
    default_piece_length: ClassVar[int] = DEFAULT_PIECE_LENGTH

    def normalize(self, value: str) -> str:
        found = _PIECES.match(value.strip().lower())
        if found is None:
            raise SignalValueError("expected '<piece length>:<64 hex characters>'")
        if int(found.group(1)) > MAX_PIECE_LENGTH:
            raise SignalValueError(f"piece length above {MAX_PIECE_LENGTH}")
        return found.group(0)

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        return fs.bittorrent.v1_pieces if fs.bittorrent is not None else ()

    def hash_bytes(self, data: bytes) -> str | None:
        acc = _V1PiecesAccumulator(self.default_piece_length)
        acc.update(data)
        return acc.finish()


BITTORRENT_SIGNAL_TYPES: tuple[SignalType, ...] = (BtV2RootSignal(), BtV1PiecesSignal())
