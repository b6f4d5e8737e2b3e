"""The exchange seam: how hashwatch pulls entries from a peer and tells it what it thinks.

Modelled on python-threatexchange's ``SignalExchangeAPI`` (what HMA fetches with): an exchange
is built for one peer (:class:`PeerConfig`), yields :class:`FetchDelta` pages from a checkpoint
(an update maps an entry's key to its new state, ``None`` deletes it), and reports an
:class:`Opinion` back. The subscriber (:mod:`hashwatch.exchange.sync`) applies each delta and
its checkpoint in one transaction, so an interrupted sync resumes from the last applied page
without loss or duplicates, whatever the exchange.

Implementations: hashwatch's own signed feed (the reference; it verifies every page against
a signed Merkle checkpoint), HMA's local-file exchange, NCMEC hash sharing, StopNCII and
ThreatExchange. Each is registered under a unique ``kind`` (:func:`register`) and passes the
one contract test, ``tests/test_exchange_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from hashwatch.errors import ConfigError

__all__ = [
    "ExchangeCheckpoint",
    "FetchDelta",
    "Opinion",
    "PeerConfig",
    "RemoteEntry",
    "SharedHash",
    "SignalExchange",
    "exchange_kinds",
    "exchange_of",
    "register",
]


class Opinion(StrEnum):
    """What a subscriber thinks of an entry it received (pytx's opinion, MISP's sighting,
    NCMEC's affirmative/negative feedback)."""

    CONFIRMED = "confirmed"  # positive: the media is what the entry says
    FALSE_POSITIVE = "false_positive"  # negative: it is not (a reason goes with it)
    DISPUTED = "disputed"  # the category or facts are contested
    SEEN = "seen"  # matched here; no judgement

    @property
    def positive(self) -> bool:
        return self is Opinion.CONFIRMED

    @property
    def negative(self) -> bool:
        return self is Opinion.FALSE_POSITIVE


@dataclass(frozen=True)
class SharedHash:
    """One hash of a shared entry; video frames carry their number, time and quality."""

    hash_type: str  # a hashwatch signal type name: md5, sha1, sha256, pdq, ...
    value: str
    frame: int | None = None
    frame_time: float | None = None
    quality: int | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.hash_type, "value": self.value}
        for name in ("frame", "frame_time", "quality"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SharedHash:
        return cls(
            str(data["type"]),
            str(data["value"]),
            data.get("frame"),
            data.get("frame_time"),
            data.get("quality"),
        )


@dataclass(frozen=True)
class RemoteEntry:
    """An entry as a peer shares it: its hashes, the peer's category code (raw, in the peer's
    scheme: mapping onto ours is the subscriber's job), shared fields and provenance."""

    key: str  # stable within the feed: the subscriber's entry key
    hashes: tuple[SharedHash, ...]
    category: str | None = None
    scheme: str | None = None  # the peer's category scheme (US, UK, CUSTOM, a feed's own)
    disputed: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)  # series, tags, date, ...
    provenance: Mapping[str, Any] = field(default_factory=dict)  # org, list, version, date


class ExchangeCheckpoint(Protocol):
    """Where a subscription stands; saved as JSON with each applied page."""

    def to_json(self) -> dict[str, Any]: ...

    def is_stale(self) -> bool:
        """True when the peer no longer honours it (a full re-fetch is needed)."""
        ...


C = TypeVar("C", bound=ExchangeCheckpoint)


@dataclass(frozen=True)
class FetchDelta(Generic[C]):
    """One page: entry key -> new state (``None``: revoked or deleted), and the checkpoint to
    save once the page is applied."""

    updates: Mapping[str, RemoteEntry | None]
    checkpoint: C


@dataclass(frozen=True)
class PeerConfig:
    """What an exchange needs to reach one peer. ``token`` is a secret: never logged."""

    name: str
    url: str
    token: str | None = None
    remote_list: str | None = None  # the peer's list, group or collaboration to read
    options: Mapping[str, str] = field(default_factory=dict)  # exchange-specific settings


class SignalExchange(ABC, Generic[C]):
    """One kind of peer. Subclasses set ``kind`` and implement the three methods."""

    kind: ClassVar[str]

    def __init__(self, config: PeerConfig) -> None:
        self.config = config

    @classmethod
    @abstractmethod
    def checkpoint_from_json(cls, data: Mapping[str, Any]) -> C:
        """The checkpoint saved by an earlier sync (:meth:`ExchangeCheckpoint.to_json`)."""

    @abstractmethod
    def fetch_iter(self, checkpoint: C | None) -> Iterator[FetchDelta[C]]:
        """Pages of changes after ``checkpoint`` (None: from the start), oldest first.

        Raises :class:`hashwatch.errors.ExchangeError` when the peer cannot be read and
        :class:`hashwatch.errors.FeedVerificationError` when what it sent fails verification;
        a page is yielded only once it is known good."""

    @abstractmethod
    def report_opinion(
        self, entry: RemoteEntry, opinion: Opinion, reason: str | None = None
    ) -> None:
        """Tell the peer what we think of one of its entries (raises ExchangeError when the
        peer refuses or has no way to take feedback)."""


_EXCHANGES: dict[str, type[SignalExchange[Any]]] = {}


def register(cls: type[SignalExchange[Any]]) -> type[SignalExchange[Any]]:
    """Class decorator adding an exchange under its ``kind``; kinds are unique."""
    kind = cls.kind
    if not kind or kind != kind.strip().lower() or kind in _EXCHANGES:
        raise ValueError(f"exchange kind {kind!r} is empty, not lower case, or taken")
    _EXCHANGES[kind] = cls
    return cls


def exchange_kinds() -> list[str]:
    _load_builtin()
    return sorted(_EXCHANGES)


def exchange_of(kind: str) -> type[SignalExchange[Any]]:
    _load_builtin()
    try:
        return _EXCHANGES[kind]
    except KeyError:
        raise ConfigError(
            f"unknown exchange kind {kind!r}; known: {', '.join(sorted(_EXCHANGES))}"
        ) from None


def _load_builtin() -> None:
    """Import the built-in exchanges so they register (lazily: they pull in HTTP clients)."""
    import importlib

    for module in _BUILTIN:
        importlib.import_module(module)


# The modules of the built-in exchanges; each registers its class on import.
_BUILTIN: tuple[str, ...] = (
    "hashwatch.exchange.feed_client",
    "hashwatch.exchange.hma_file",
    "hashwatch.exchange.ncmec",
    "hashwatch.exchange.stopncii",
    "hashwatch.exchange.threatexchange",
)
