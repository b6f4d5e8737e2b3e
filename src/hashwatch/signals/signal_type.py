"""The signal-type seam: what a kind of hash is, how its values are spelled and matched.

Modelled on python-threatexchange's ``SignalType``: a hash type is one small class that says

* its ``name`` (stored in databases, list files and JSON: never renamed) and the ``aliases``
  other tools write for it;
* how a value is normalised and validated (:meth:`SignalType.normalize`);
* how it is matched (:class:`MatchRule`: equality, or Hamming distance within a list's
  threshold) and whether a query may carry it (``query``: False for a key that only names a
  list entry);
* how a hashed file yields it (:meth:`SignalType.values_of`, from the one-pass
  :class:`~hashwatch.signals.hasher.FileSignals`, and ``fields``, the keys of a hashed file's
  JSON that hold it) and how bytes yield it (:meth:`SignalType.hash_bytes`, the reference
  hasher the contract test compares with the fast one-pass read).

The types hashwatch knows are in :mod:`hashwatch.signals.builtin_types`; the registry that
checks their names once, at import, is :data:`hashwatch.signals.types.SIGNAL_TYPES`.
Adding a hash type is one module with its class plus its registration there.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from hashwatch.signals.hasher import FileSignals

__all__ = ["HexDigestType", "MatchRule", "SignalType", "SignalValueError"]


class SignalValueError(ValueError):
    """A value is not a valid spelling of its type; the message says why (never the value)."""


class MatchRule(StrEnum):
    """How values of a type are compared with list entries."""

    EQUAL = "equal"  # cryptographic digests: the database index finds equal values
    HAMMING = "hamming"  # perceptual hashes: the PDQ index finds values within a threshold


class SignalType(ABC):
    """One kind of hash. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    match_rule: ClassVar[MatchRule] = MatchRule.EQUAL
    bits: ClassVar[int | None] = None  # the hash length in bits, for Hamming types
    # May a query carry it? False for a key that names a list entry only (a vPDQ frame set).
    query: ClassVar[bool] = True
    # Keys of a hashed file's JSON (``hashwatch hash`` output, scan results) holding values
    # of this type, in order; empty when the type is not a field of its own.
    fields: ClassVar[tuple[str, ...]] = ()
    # Is it one of the hashes a list entry made from a media file carries (``add-media``)?
    media_entry: ClassVar[bool] = False

    @property
    def is_exact(self) -> bool:
        return self.match_rule is MatchRule.EQUAL

    @abstractmethod
    def normalize(self, value: str) -> str:
        """The canonical spelling of ``value``; raises :class:`SignalValueError`."""

    def is_valid(self, value: str) -> bool:
        """True when ``value`` is already in canonical form."""
        try:
            return self.normalize(value) == value
        except SignalValueError:
            return False

    @abstractmethod
    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        """The values of this type that hashing a file produced (empty if none)."""

    def quality_of(self, fs: FileSignals) -> int | None:
        """The quality of the file's value where the type has one (PDQ), else None."""
        return None

    def variants_of(self, fs: FileSignals) -> tuple[str, ...] | None:
        """Values of the file's rotated/flipped copies where computed (PDQ's 8), else None."""
        return None

    @abstractmethod
    def hash_bytes(self, data: bytes) -> str | None:
        """The reference hasher: this type's value for ``data`` (None if it yields none)."""

    def __repr__(self) -> str:
        return f"<SignalType {self.name}>"


_HEX = re.compile(r"^[0-9a-f]+$")


class HexDigestType(SignalType):
    """A hash written as a fixed number of hexadecimal digits, lowercase when canonical."""

    hex_length: ClassVar[int]

    def normalize(self, value: str) -> str:
        lower = value.strip().lower()
        if len(lower) != self.hex_length:
            raise SignalValueError(f"expected {self.hex_length} hex characters, got {len(lower)}")
        if not _HEX.match(lower):
            raise SignalValueError("not hexadecimal")
        return lower
