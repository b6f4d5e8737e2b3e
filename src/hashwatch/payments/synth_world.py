"""The fictitious world the payment generator draws from: countries, currencies, time zones,
accounts, notes, and the columnar batches of transactions it builds.

Everything here is synthetic. Accounts are ``ACC-000123``; devices ``DEV-…`` and addresses in
the private ``10.0.0.0/8`` range; handles are made of neutral words. Exchange rates are one fixed
table (approximate 2024 rates, EUR per unit) written beside the data, so a screening converts
amounts exactly as they were generated.

A :class:`Batch` holds numbers only (account indexes, UTC seconds, minor currency units, codes
into :data:`CHANNELS` and the note table); the strings are made once, by DuckDB, when the file is
written. That keeps 10,000,000 rows cheap to build in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

__all__ = [
    "BANK",
    "CARD",
    "CHANNELS",
    "COUNTRIES",
    "CRYPTO",
    "DEBIT",
    "DEMAND",
    "EMPLOYER",
    "F64",
    "GIFT",
    "I64",
    "MERCHANT",
    "P2P",
    "PERSON",
    "REMIT",
    "SOURCE",
    "SOURCE_WEIGHTS",
    "Accounts",
    "Batch",
    "Country",
    "NoteTable",
    "World",
    "round_amount",
]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Country:
    code: str  # ISO 3166 alpha-2
    name: str  # as SAML-D-style exports write bank locations
    currency: str
    eur_per_unit: float
    zone: str  # IANA time zone of its most populous region
    weight: float  # share of the generated accounts living there


# Demand countries (senders of the published typology: Australia/NZ, Europe/UK, North America)
# and source countries (receivers: the Philippines first, then Thailand, Colombia, Dominican
# Republic and others, FINTRAC Project Shadow 2020), plus others for ordinary traffic.
COUNTRIES: tuple[Country, ...] = (
    Country("AU", "Australia", "AUD", 0.61, "Australia/Sydney", 0.10),
    Country("NZ", "New Zealand", "NZD", 0.56, "Pacific/Auckland", 0.03),
    Country("GB", "United Kingdom", "GBP", 1.17, "Europe/London", 0.12),
    Country("IE", "Ireland", "EUR", 1.0, "Europe/Dublin", 0.02),
    Country("DE", "Germany", "EUR", 1.0, "Europe/Berlin", 0.10),
    Country("FR", "France", "EUR", 1.0, "Europe/Paris", 0.07),
    Country("NL", "Netherlands", "EUR", 1.0, "Europe/Amsterdam", 0.04),
    Country("SE", "Sweden", "SEK", 0.088, "Europe/Stockholm", 0.03),
    Country("NO", "Norway", "NOK", 0.086, "Europe/Oslo", 0.02),
    Country("US", "United States", "USD", 0.92, "America/New_York", 0.14),
    Country("CA", "Canada", "CAD", 0.68, "America/Toronto", 0.05),
    Country("PH", "Philippines", "PHP", 0.016, "Asia/Manila", 0.09),
    Country("TH", "Thailand", "THB", 0.026, "Asia/Bangkok", 0.03),
    Country("CO", "Colombia", "COP", 0.00023, "America/Bogota", 0.03),
    Country("DO", "Dominican Republic", "DOP", 0.0155, "America/Santo_Domingo", 0.02),
    Country("GH", "Ghana", "GHS", 0.075, "Africa/Accra", 0.01),
    Country("RO", "Romania", "RON", 0.20, "Europe/Bucharest", 0.02),
    Country("JM", "Jamaica", "JMD", 0.0059, "America/Jamaica", 0.01),
    Country("ES", "Spain", "EUR", 1.0, "Europe/Madrid", 0.04),
    Country("IT", "Italy", "EUR", 1.0, "Europe/Rome", 0.03),
    Country("JP", "Japan", "JPY", 0.0062, "Asia/Tokyo", 0.03),
    Country("SG", "Singapore", "SGD", 0.68, "Asia/Singapore", 0.02),
    Country("IN", "India", "INR", 0.011, "Asia/Kolkata", 0.05),
)
_CODES = [c.code for c in COUNTRIES]
DEMAND = tuple(_CODES.index(c) for c in ("AU", "NZ", "GB", "IE", "DE", "FR", "NL", "SE", "NO"))
DEMAND = (*DEMAND, _CODES.index("US"), _CODES.index("CA"))
SOURCE = tuple(_CODES.index(c) for c in ("PH", "TH", "CO", "DO", "GH", "RO", "JM"))
# The source countries' weights among planted receivers: the Philippines first (AMLC: most
# reports), then the others of FINTRAC's list.
SOURCE_WEIGHTS = np.array([0.55, 0.15, 0.10, 0.08, 0.04, 0.04, 0.04])

# Payment channels as a transaction export names them.
CHANNELS = (
    "card",
    "bank_transfer",
    "direct_debit",
    "remittance",
    "p2p",
    "gift_card",
    "crypto",
)
CARD, BANK, DEBIT, REMIT, P2P, GIFT, CRYPTO = range(len(CHANNELS))

PERSON, MERCHANT, EMPLOYER = 0, 1, 2
_KIND_SHARES = (0.90, 0.07, 0.03)


def round_amount(x: F64, rng: np.random.Generator) -> F64:
    """Round amounts as people type them: to their leading power of ten, or half of it from 100
    up (37 → 40, 130 → 150 or 100, 2,400 → 2,500 or 2,000)."""
    x = np.maximum(x, 1.0)
    power = 10.0 ** np.floor(np.log10(x))
    step = np.where((rng.random(x.shape) < 0.5) & (power >= 100), power / 2, power)
    return np.maximum(np.round(x / step) * step, step)


class NoteTable:
    """Payment notes: an index into one table of texts, built deterministically."""

    def __init__(self, rng: np.random.Generator, handles: int = 400) -> None:
        self.texts: list[str] = [""]
        self._index: dict[str, int] = {"": 0}
        first = ("blue", "river", "star", "moon", "sky", "coral", "maple", "pixel", "echo", "nova")
        second = ("fox", "light", "wave", "stone", "leaf", "cloud", "peak", "song", "bay", "line")
        made: list[str] = []
        while len(made) < handles:
            a, b = rng.integers(0, len(first)), rng.integers(0, len(second))
            text = f"@{first[a]}_{second[b]}{int(rng.integers(10, 1000))}"
            if text not in self._index:
                made.append(text)
                self.code(text)
        self.handles = np.array([self._index[h] for h in made], dtype=np.int64)

    def code(self, text: str) -> int:
        if text not in self._index:
            self._index[text] = len(self.texts)
            self.texts.append(text)
        return self._index[text]

    def codes(self, texts: tuple[str, ...]) -> I64:
        return np.array([self.code(t) for t in texts], dtype=np.int64)


@dataclass
class Accounts:
    """Every account of the world, one entry per index (``ACC-`` + the zero-padded index)."""

    country: I64
    kind: I64
    device: I64  # shared within a household (about 5 % of people)
    ip: I64
    wallet: I64  # the payout reference (mobile wallet / pick-up id); shared by linked receivers

    def __len__(self) -> int:
        return len(self.country)


@dataclass
class Batch:
    """Transactions as numbers; ``ts`` in UTC seconds, ``offset`` the sender's UTC offset in
    minutes at that moment, ``amount`` in minor units of the sender's currency."""

    ts: I64
    offset: I64
    sender: I64
    receiver: I64
    amount: I64
    channel: I64
    note: I64
    label: I64  # 0: ordinary; else the planted typology's code (``synth_plant.TYPOLOGIES``)

    def __len__(self) -> int:
        return len(self.ts)

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        fields = ("ts", "offset", "sender", "receiver", "amount", "channel", "note", "label")
        if not batches:
            return Batch(*(np.zeros(0, dtype=np.int64) for _ in fields))
        return Batch(*(np.concatenate([getattr(b, f) for b in batches]) for f in fields))


class World:
    """Accounts, their countries, zones and currencies, and the period the traffic spans."""

    def __init__(self, accounts: int, days: int, start: date, rng: np.random.Generator) -> None:
        self.n = accounts
        self.days = days
        self.start = start
        self.start_epoch = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
        weights = np.array([c.weight for c in COUNTRIES])
        country = rng.choice(len(COUNTRIES), size=accounts, p=weights / weights.sum())
        kind = rng.choice(3, size=accounts, p=_KIND_SHARES)
        device = np.arange(accounts, dtype=np.int64)
        ip = rng.integers(1, 1 << 24, size=accounts, dtype=np.int64)
        # Households: some people share a device and address with the next person.
        shared = np.flatnonzero((rng.random(accounts) < 0.05) & (kind == PERSON))[:-1]
        device[shared + 1] = device[shared]
        ip[shared + 1] = ip[shared]
        wallet = np.arange(accounts, dtype=np.int64)
        self.accounts = Accounts(
            country.astype(np.int64), kind.astype(np.int64), device, ip, wallet
        )
        self.eur_per_unit = np.array([c.eur_per_unit for c in COUNTRIES])
        self._offsets = self._zone_offsets(days + 2)
        self._by: dict[tuple[int, int], I64] = {}
        for k in (PERSON, MERCHANT, EMPLOYER):
            members = np.flatnonzero(kind == k)
            for c in range(len(COUNTRIES)):
                self._by[(k, c)] = members[country[members] == c].astype(np.int64)
        # Each account's position in its (kind, country) pool: friends and shops are neighbours.
        self.rank = np.zeros(accounts, dtype=np.int64)
        for pool in self._by.values():
            self.rank[pool] = np.arange(len(pool))
        self.persons = np.flatnonzero(kind == PERSON).astype(np.int64)
        # People in order of how often they pay (the first pay most often).
        self.active = rng.permutation(self.persons)
        self.merchants = np.flatnonzero(kind == MERCHANT).astype(np.int64)
        if len(self.merchants) == 0:
            self.merchants = self.persons[:1]

    def _zone_offsets(self, days: int) -> I64:
        """UTC offset in minutes of each country's zone on each day (noon UTC)."""
        out = np.zeros((len(COUNTRIES), days), dtype=np.int64)
        base = datetime(self.start.year, self.start.month, self.start.day, 12, tzinfo=UTC)
        for i, c in enumerate(COUNTRIES):
            zone = ZoneInfo(c.zone)
            for d in range(days):
                delta = (base + timedelta(days=d)).astimezone(zone).utcoffset()
                out[i, d] = int(delta.total_seconds() // 60) if delta is not None else 0
        return out

    def of(self, kind: int, country: int) -> I64:
        return self._by[(kind, country)]

    def pick_in(self, kind: int, countries: I64, rng: np.random.Generator) -> I64:
        """One account of ``kind`` in each given country (any such account where none lives
        there)."""
        out = np.empty(len(countries), dtype=np.int64)
        pool_all = self.persons if kind == PERSON else self.merchants
        if kind == EMPLOYER:
            pool_all = np.flatnonzero(self.accounts.kind == EMPLOYER).astype(np.int64)
            pool_all = pool_all if len(pool_all) else self.merchants
        for c in np.unique(countries):
            where = np.flatnonzero(countries == c)
            pool = self.of(kind, int(c))
            if len(pool) == 0:
                pool = pool_all
            out[where] = pool[rng.integers(0, len(pool), size=len(where))]
        return out

    def local_amount(self, eur: F64, sender: I64) -> F64:
        """EUR amounts in the sender's currency."""
        rate: F64 = self.eur_per_unit[self.accounts.country[sender]]
        return np.asarray(eur / rate, dtype=np.float64)

    def batch(
        self,
        sender: I64,
        receiver: I64,
        day: F64,
        hour: F64,
        amount_local: F64,
        channel: I64 | int,
        note: I64 | int,
        label: int = 0,
    ) -> Batch:
        """Transactions at ``day`` (whole days from the start) and ``hour`` (fractional, the
        sender's local clock), amounts in the sender's currency."""
        day_i = np.clip(np.floor(day).astype(np.int64), 0, self.days - 1)
        offset = self._offsets[self.accounts.country[sender], day_i]
        local = self.start_epoch + day_i * 86_400 + np.round(hour * 3600).astype(np.int64)
        ts = local - offset * 60
        minor = np.round(amount_local * 100).astype(np.int64)
        n = len(sender)
        return Batch(
            ts=ts,
            offset=offset,
            sender=sender.astype(np.int64),
            receiver=receiver.astype(np.int64),
            amount=np.maximum(minor, 1),
            channel=np.broadcast_to(channel, (n,)).astype(np.int64),
            note=np.broadcast_to(note, (n,)).astype(np.int64),
            label=np.full(n, label, dtype=np.int64),
        )
