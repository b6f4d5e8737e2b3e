"""A strict, bounded bencode decoder (BEP 3) for the BitTorrent artifacts.

Strict: integers without leading zeros or ``-0``, string lengths that fit the data, every
container closed, dictionary keys byte strings. Bounded: nesting deeper than ``max_depth``
is refused (a "depth bomb" of nested lists cannot exhaust the stack), integers longer than
``MAX_INT_DIGITS`` digits are refused, and the artifact as a whole is capped by its reader.
Byte strings are kept exactly as written (never decoded here), and the byte span of each
value of the top-level dictionary is kept, so an info-hash is the hash of the exact bytes
of the ``info`` dictionary, never of a re-encoding.

Dictionary keys out of order are accepted (clients wrote such files; the info-hash is of
the bytes as they are); a key written twice is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "MAX_INT_DIGITS", "BencodeError", "decode", "iter_top_dict"]

DEFAULT_MAX_DEPTH = 64  # a .torrent's deepest "file tree" path is far below this
MAX_INT_DIGITS = 32

_DIGITS = frozenset(b"0123456789")


class BencodeError(ValueError):
    """The data is not valid bencode; ``offset`` is where decoding stopped."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"at byte {offset}: {message}")
        self.offset = offset
        self.message = message


class _Decoder:
    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        data = self.data
        if pos >= len(data):
            raise BencodeError(pos, "data ends where a value should start")
        lead = data[pos]
        if lead in _DIGITS:
            return self.string(pos)
        if lead == 0x69:  # i
            return self.integer(pos)
        if depth >= self.max_depth:
            raise BencodeError(pos, f"nested deeper than {self.max_depth} levels")
        if lead == 0x6C:  # l
            items: list[Any] = []
            pos += 1
            while True:
                if pos >= len(data):
                    raise BencodeError(pos, "data ends inside a list")
                if data[pos] == 0x65:  # e
                    return items, pos + 1
                item, pos = self.value(pos, depth + 1)
                items.append(item)
        if lead == 0x64:  # d
            out: dict[bytes, Any] = {}
            pos += 1
            while True:
                if pos >= len(data):
                    raise BencodeError(pos, "data ends inside a dictionary")
                if data[pos] == 0x65:
                    return out, pos + 1
                key, pos = self.key(pos)
                if key in out:
                    raise BencodeError(pos, "a dictionary key written twice")
                out[key], pos = self.value(pos, depth + 1)
        raise BencodeError(pos, f"unexpected byte 0x{lead:02x} where a value should start")

    def key(self, pos: int) -> tuple[bytes, int]:
        if self.data[pos] not in _DIGITS:
            raise BencodeError(pos, "a dictionary key is not a byte string")
        return self.string(pos)

    def string(self, pos: int) -> tuple[bytes, int]:
        data = self.data
        colon = data.find(b":", pos, pos + 21)
        if colon < 0:
            raise BencodeError(pos, "a string length without its ':'")
        digits = data[pos:colon]
        if not digits.isdigit() or (len(digits) > 1 and digits[0] == 0x30):
            raise BencodeError(pos, "a malformed string length")
        length = int(digits)
        start = colon + 1
        if start + length > len(data):
            raise BencodeError(pos, f"a string of {length} bytes runs past the end of the data")
        return data[start : start + length], start + length

    def integer(self, pos: int) -> tuple[int, int]:
        data = self.data
        end = data.find(b"e", pos + 1, pos + MAX_INT_DIGITS + 3)
        if end < 0:
            raise BencodeError(pos, f"an integer without its end (or over {MAX_INT_DIGITS} digits)")
        text = data[pos + 1 : end]
        body = text[1:] if text[:1] == b"-" else text
        if (
            not body.isdigit()
            or (len(body) > 1 and body[0] == 0x30)
            or text == b"-0"
            or len(body) > MAX_INT_DIGITS
        ):
            raise BencodeError(pos, "a malformed integer")
        return int(text), end + 1


def decode(data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The one value ``data`` holds: int, bytes, list or dict with bytes keys. Raises
    :class:`BencodeError` for anything else, trailing bytes included."""
    value, end = _Decoder(data, max_depth).value(0, 0)
    if end != len(data):
        raise BencodeError(end, f"{len(data) - end} bytes after the end of the value")
    return value


def iter_top_dict(
    data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> Iterator[tuple[bytes, Any, int, int]]:
    """The items of the dictionary ``data`` holds, one at a time, each as ``(key, value,
    start, end)`` where ``data[start:end]`` are the value's exact bytes. Items before a
    damaged one are yielded before :class:`BencodeError` is raised, so a truncated file
    still gives what it holds."""
    decoder = _Decoder(data, max_depth)
    if not data.startswith(b"d"):
        raise BencodeError(0, "not a bencoded dictionary")
    pos = 1
    seen: set[bytes] = set()
    while True:
        if pos >= len(data):
            raise BencodeError(pos, "data ends inside the dictionary")
        if data[pos] == 0x65:
            break
        key, start = decoder.key(pos)
        if key in seen:
            raise BencodeError(pos, "a dictionary key written twice")
        seen.add(key)
        value, pos = decoder.value(start, 1)
        yield key, value, start, pos
    if pos + 1 != len(data):
        raise BencodeError(pos + 1, f"{len(data) - pos - 1} bytes after the end of the value")
