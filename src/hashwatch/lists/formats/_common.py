"""Pieces every list format shares: hash checks, booleans, tags, type inference, spooling.

Kept in one place so that a value means the same thing whichever file it came from: "true"
in a VICS string boolean and in a CSV cell, a tag list in VICS ``Tags`` and in a CSV column,
a bare 64-hex hash in a text line and in a CSV ``hash`` column.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

from hashwatch.errors import InvalidHashError, ListFormatError
from hashwatch.lists.model import EntryRecord, EntryStatus
from hashwatch.signals.types import HashType, normalize_hash, parse_hash_type

__all__ = [
    "add_hash",
    "check_hash",
    "dump_extra",
    "infer_hash_type",
    "join_tags",
    "parse_bool",
    "parse_status",
    "record_from_json",
    "record_to_json",
    "reorder_hashes",
    "split_tags",
    "spool",
    "type_from_name",
    "unspool",
]

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BASE32 = re.compile(r"^[A-Za-z2-7]{32}$")

# Signal-type names other tools write that are not hash-type aliases in ``signals.types``:
# HMA's "video_md5" is the MD5 of the whole video file, i.e. our md5.
_EXTRA_TYPE_NAMES = {"video_md5": HashType.MD5}


@functools.lru_cache(maxsize=256)
def type_from_name(name: str) -> HashType | None:
    """The hash type a column/line/HashName names, or None when it names none we know."""
    try:
        return parse_hash_type(name)
    except InvalidHashError:
        return _EXTRA_TYPE_NAMES.get(name.strip().lower())


# Values already in canonical spelling skip normalize_hash: the common case in lists that
# hashwatch or other careful tools wrote, and about a third of the per-record cost otherwise.
_CANONICAL = {
    HashType.MD5: re.compile(r"[0-9a-f]{32}"),
    HashType.SHA1: re.compile(r"[0-9a-f]{40}"),
    HashType.SHA256: re.compile(r"[0-9a-f]{64}"),
    HashType.ED2K: re.compile(r"[0-9a-f]{32}"),
    HashType.PDQ: re.compile(r"[0-9a-f]{64}"),
    HashType.SHA1_BASE32: re.compile(r"[A-Z2-7]{32}"),
    HashType.VPDQ: re.compile(r"[0-9a-f]{64}"),
    HashType.BT_V2_ROOT: re.compile(r"[0-9a-f]{64}"),
    HashType.BT_V1_PIECES: re.compile(r"[1-9][0-9]{0,8}:[0-9a-f]{64}"),
}


def check_hash(hash_type: HashType, value: str, where: str, what: str = "") -> str:
    """Normalise ``value`` or raise a :class:`ListFormatError` naming ``where`` and the field."""
    if _CANONICAL[hash_type].fullmatch(value):
        return value
    try:
        return normalize_hash(hash_type, value)
    except InvalidHashError as exc:
        prefix = f"{what}: " if what else ""
        raise ListFormatError(f"{prefix}{exc}", where=where) from None


def add_hash(
    hashes: list[tuple[HashType, str]], hash_type: HashType, value: Any, where: str, what: str
) -> None:
    """Append a checked hash unless empty or already there (a file may repeat a hash)."""
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise ListFormatError(f"{what}: expected a string, got {value!r}", where=where)
    pair = (hash_type, check_hash(hash_type, value, where, what))
    if pair not in hashes:
        hashes.append(pair)


def infer_hash_type(value: str, default: HashType | None, where: str) -> HashType:
    """Guess the type of a bare hash from its length and alphabet.

    32 hex is MD5 (ED2K is also 32 hex: pass ``default=ED2K`` for ED2K lists), 40 hex SHA-1,
    32 Base32 (or ``urn:sha1:``) Gnutella SHA-1. 64 hex is SHA-256 *or* PDQ and nothing in
    the value tells them apart, so it needs ``default``: guessing wrong would put file digests
    in the perceptual index or the reverse, and matches would silently never happen.
    ``default`` wins whenever the value has its shape.
    """
    text = value.strip()
    if default is not None and not (default is HashType.SHA1_BASE32 and len(text) == 40):
        try:
            normalize_hash(default, text)
            return default
        except InvalidHashError:
            pass
    if text.lower().startswith("urn:sha1:"):
        return HashType.SHA1_BASE32
    if _HEX.match(text):
        if len(text) == 32:
            return HashType.MD5
        if len(text) == 40:
            return HashType.SHA1
        if len(text) == 64:
            raise ListFormatError(
                f"bare 64-hex value {text[:16]}... may be SHA-256 or PDQ; write '<type> <hash>' "
                "lines (e.g. 'pdq <hash>') or give a default hash type (sha256 or pdq)",
                where=where,
            )
    if _BASE32.match(text):
        return HashType.SHA1_BASE32
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise ListFormatError(
        f"{shown!r} is not a hash: expected 32 hex (md5), 40 hex (sha1), 64 hex (sha256/pdq, "
        "with a type) or 32 Base32 (sha1_base32) characters",
        where=where,
    )


def reorder_hashes(
    hashes: list[tuple[HashType, str]], order: str, where: str, what: str
) -> list[tuple[HashType, str]]:
    """Put hashes in the order ``order`` names (``"sha256 md5"``), one name per hash.

    Files keep hashes in per-type fields or columns, which loses which one came first (the
    record's key hash); writers note the order when it differs, and this restores it.
    """
    pending = list(hashes)
    result = []
    for name in order.split():
        hash_type = type_from_name(name)
        found = next((p for p in pending if p[0] is hash_type), None)
        if found is None:
            raise ListFormatError(f"{what} names {name!r} but no such hash is left", where=where)
        pending.remove(found)
        result.append(found)
    if pending:
        raise ListFormatError(
            f"{what} names {len(result)} hashes but the record has {len(hashes)}", where=where
        )
    return result


def parse_bool(value: Any, where: str, what: str) -> bool | None:
    """Booleans as real files write them: true/false, "true"/"false", "1"/"0", yes/no, null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = value.strip().lower()
        if not key:
            return None
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    raise ListFormatError(f"{what}: expected a boolean, got {value!r}", where=where)


def parse_status(value: str, where: str) -> EntryStatus:
    try:
        return EntryStatus(value.strip().lower())
    except ValueError:
        known = ", ".join(s.value for s in EntryStatus)
        raise ListFormatError(
            f"status: unknown value {value!r} (known: {known})", where=where
        ) from None


def split_tags(value: Any, where: str) -> tuple[str, ...]:
    """VICS writes tags as one comma-separated string; some tools write a JSON list."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t for t in (p.strip() for p in value.split(",")) if t)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return tuple(t for t in (p.strip() for p in value) if t)
    raise ListFormatError(f"Tags: expected a comma-separated string, got {value!r}", where=where)


def join_tags(tags: tuple[str, ...], where: str) -> str:
    """Inverse of :func:`split_tags`; refuses tags that would not read back the same."""
    for tag in tags:
        if not tag or "," in tag or tag != tag.strip():
            raise ListFormatError(
                f"tag {tag!r} cannot be written: tags are comma-separated, so a tag must be "
                "non-empty, without commas and without surrounding spaces",
                where=where,
            )
    return ",".join(tags)


def record_to_json(record: EntryRecord) -> dict[str, Any]:
    """A JSON-able form of a record, used to spool records between two writer passes."""
    return {
        "h": [[t.value, v] for t, v in record.hashes],
        "c": record.category,
        "s": record.series,
        "v": record.victim_identified,
        "t": list(record.tags),
        "m": record.comment,
        "d": record.date,
        "st": record.status.value,
        "src": record.source,
        "x": record.extra,
    }


def record_from_json(data: dict[str, Any]) -> EntryRecord:
    return EntryRecord(
        hashes=tuple((HashType(t), v) for t, v in data["h"]),
        category=data["c"],
        series=data["s"],
        victim_identified=data["v"],
        tags=tuple(data["t"]),
        comment=data["m"],
        date=data["d"],
        status=EntryStatus(data["st"]),
        source=data["src"],
        extra=data["x"],
    )


def dump_extra(extra: dict[str, Any], where: str) -> str:
    """``extra`` as compact JSON; a value JSON cannot hold is an error, not a silent str()."""
    try:
        return json.dumps(extra, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ListFormatError(
            f"extra fields cannot be written as JSON: {exc}", where=where
        ) from None


def spool(records: Iterable[EntryRecord], spool_file: IO[bytes]) -> Iterator[EntryRecord]:
    """Write records to ``spool_file`` as JSON lines while passing them through."""
    for n, record in enumerate(records, 1):
        try:
            line = json.dumps(record_to_json(record), ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            where = f"record {n}"
            raise ListFormatError(f"extra fields cannot be written: {exc}", where=where) from None
        spool_file.write(line.encode("utf-8"))
        spool_file.write(b"\n")
        yield record


def unspool(spool_file: IO[bytes]) -> Iterator[EntryRecord]:
    spool_file.seek(0)
    for line in spool_file:
        yield record_from_json(json.loads(line))
