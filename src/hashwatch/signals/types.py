"""Hash types hashwatch knows: their stable names, and the registry of their implementations.

:class:`HashType` names every type as files, JSON and the database spell it (never renamed).
:data:`SIGNAL_TYPES` maps each name to its :class:`~hashwatch.signals.signal_type.SignalType`,
which validates, normalises and says how the type is matched. The registry is checked once,
at import: every name has exactly one implementation and no alias is claimed twice.

To add a hash type: write its ``SignalType`` class in a new module under ``signals/``, add its
name to :class:`HashType` and its instance to ``_REGISTERED`` below. Hashing, matching, scan
records and lists pick it up from the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from hashwatch.errors import InvalidHashError
from hashwatch.signals.bittorrent import BITTORRENT_SIGNAL_TYPES
from hashwatch.signals.builtin_types import BUILTIN_SIGNAL_TYPES
from hashwatch.signals.signal_type import MatchRule, SignalType, SignalValueError

__all__ = [
    "EXACT_HASH_TYPES",
    "SIGNAL_TYPES",
    "HashType",
    "MatchRule",
    "SignalType",
    "normalize_hash",
    "parse_hash_type",
    "signal_type",
]


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
    # BitTorrent (signals.bittorrent): BEP 52's per-file merkle root, and a single-file v1
    # torrent's piece hashes spelled "<piece length>:<sha256 of the piece hashes>".
    BT_V2_ROOT = "bt_v2_root"
    BT_V1_PIECES = "bt_v1_pieces"

    @property
    def is_exact(self) -> bool:
        """True for digests matched by equality; False for perceptual hashes."""
        return SIGNAL_TYPES[self].is_exact

    @property
    def impl(self) -> SignalType:
        return SIGNAL_TYPES[self]


_REGISTERED: tuple[SignalType, ...] = (*BUILTIN_SIGNAL_TYPES, *BITTORRENT_SIGNAL_TYPES)


def _build_registry(
    registered: tuple[SignalType, ...],
) -> tuple[Mapping[HashType, SignalType], Mapping[str, HashType]]:
    """The registry and its alias table; raises if a name or alias is not unique."""
    by_name: dict[HashType, SignalType] = {}
    aliases: dict[str, HashType] = {}
    for impl in registered:
        try:
            name = HashType(impl.name)
        except ValueError:
            raise RuntimeError(f"signal type {impl.name!r} is not a HashType name") from None
        if name in by_name:
            raise RuntimeError(f"signal type {impl.name!r} registered twice")
        if impl.match_rule is MatchRule.HAMMING and not impl.bits:
            raise RuntimeError(f"signal type {impl.name!r} is matched by Hamming: give its bits")
        by_name[name] = impl
        for alias in (impl.name, *impl.aliases):
            key = alias.strip().lower().replace(" ", "")
            if aliases.setdefault(key, name) is not name:
                raise RuntimeError(f"alias {alias!r} claimed by {aliases[key]} and {name}")
    missing = [t.value for t in HashType if t not in by_name]
    if missing:
        raise RuntimeError(f"hash types without an implementation: {', '.join(missing)}")
    return MappingProxyType(by_name), MappingProxyType(aliases)


SIGNAL_TYPES, _ALIASES = _build_registry(_REGISTERED)

EXACT_HASH_TYPES: tuple[HashType, ...] = tuple(t for t in HashType if t.is_exact)


def signal_type(hash_type: HashType | str) -> SignalType:
    """The implementation of a hash type, by :class:`HashType` or any of its names."""
    if not isinstance(hash_type, HashType):
        hash_type = parse_hash_type(hash_type)
    return SIGNAL_TYPES[hash_type]


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
    try:
        return SIGNAL_TYPES[hash_type].normalize(value)
    except SignalValueError as exc:
        raise InvalidHashError(hash_type.value, value, str(exc)) from None
