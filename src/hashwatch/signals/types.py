"""Hash types hashwatch knows, and the one place that validates and normalises their values."""

from __future__ import annotations

import base64
import re
from enum import StrEnum

from hashwatch.errors import InvalidHashError

__all__ = ["EXACT_HASH_TYPES", "HashType", "normalize_hash", "parse_hash_type"]


class HashType(StrEnum):
    """A kind of hash. Its value is the name used in files, JSON and the database."""

    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    ED2K = "ed2k"
    SHA1_BASE32 = "sha1_base32"
    PDQ = "pdq"
    # The identity of a video's frame-hash set (SHA-256 of its canonical vPDQ lines): the key
    # of a list entry known only by its frame hashes (a vPDQ file), never a query signal.
    VPDQ = "vpdq"

    @property
    def is_exact(self) -> bool:
        """True for digests matched by equality; False for perceptual hashes."""
        return self is not HashType.PDQ


EXACT_HASH_TYPES: tuple[HashType, ...] = tuple(t for t in HashType if t.is_exact)

_HEX_LENGTHS = {
    HashType.MD5: 32,
    HashType.SHA1: 40,
    HashType.SHA256: 64,
    HashType.ED2K: 32,
    HashType.PDQ: 64,
    HashType.VPDQ: 64,
}
_HEX = re.compile(r"^[0-9a-f]+$")
_BASE32 = re.compile(r"^[A-Z2-7]{32}$")

# Names other tools use for the same hash types (VICS AlternativeHashes, NCMEC, HMA, NSRL).
_ALIASES = {
    "md5": HashType.MD5,
    "sha1": HashType.SHA1,
    "sha-1": HashType.SHA1,
    "sha256": HashType.SHA256,
    "sha-256": HashType.SHA256,
    "ed2k": HashType.ED2K,
    "edonkey": HashType.ED2K,
    "emule": HashType.ED2K,
    "sha1_base32": HashType.SHA1_BASE32,
    "sha1base32": HashType.SHA1_BASE32,
    "gnutella": HashType.SHA1_BASE32,
    "urn:sha1": HashType.SHA1_BASE32,
    "pdq": HashType.PDQ,
    "pdq_hash": HashType.PDQ,
    "pdqhash": HashType.PDQ,
    "vpdq": HashType.VPDQ,
}


def parse_hash_type(name: str) -> HashType:
    """Map a hash-type name as written by hashwatch or other tools to a :class:`HashType`."""
    key = name.strip().lower().replace(" ", "")
    if key in _ALIASES:
        return _ALIASES[key]
    raise InvalidHashError("hash type", name, f"unknown hash type (known: {', '.join(HashType)})")


def normalize_hash(hash_type: HashType, value: str) -> str:
    """Return the canonical spelling of ``value`` or raise :class:`InvalidHashError`.

    Hex digests become lowercase; Gnutella SHA-1 becomes uppercase Base32 without the
    ``urn:sha1:`` prefix. A 40-hex SHA-1 given as ``sha1_base32`` is converted.
    """
    text = value.strip()
    if hash_type is HashType.SHA1_BASE32:
        if text.lower().startswith("urn:sha1:"):
            text = text[9:]
        upper = text.upper()
        if _BASE32.match(upper):
            return upper
        lower = text.lower()
        if len(lower) == 40 and _HEX.match(lower):
            return base64.b32encode(bytes.fromhex(lower)).decode("ascii")
        raise InvalidHashError(hash_type.value, value, "expected 32 Base32 characters")
    expected = _HEX_LENGTHS[hash_type]
    lower = text.lower()
    if len(lower) != expected:
        raise InvalidHashError(
            hash_type.value, value, f"expected {expected} hex characters, got {len(lower)}"
        )
    if not _HEX.match(lower):
        raise InvalidHashError(hash_type.value, value, "not hexadecimal")
    return lower
