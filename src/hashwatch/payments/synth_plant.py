"""The typologies the generator plants, and the benign look-alikes beside them.

Each planter draws its accounts from people nobody else planted (a :class:`Picker`), builds
their payments as one :class:`~hashwatch.payments.synth_world.Batch`, and names every planted
account with its typology and role — the labels that go to ``labels.csv``, never into the
transactions. The shapes follow the published red flags (``docs/payments.md``, ANCHORS):

* ``livestream``: a sender in a demand country paying one or two receivers in a source country,
  EUR 10–200, round, repeated, escalating in amount and frequency, late at night at the sender's
  local time, notes such as "school fees" or a handle, remittance / P2P / gift card / crypto.
* ``fan_in``: one receiver paid by many senders from several demand countries.
* ``fan_out``: one sender paying several unrelated receivers within days.
* ``linked_receivers``: receivers sharing a device, address and payout reference with a receiver
  of repeated night-time payments, and some of its senders.
* ``lookalike_remittance`` (benign): family remittances along the same corridors — monthly,
  larger, in daytime — that a screening should mostly leave alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hashwatch.payments.synth_world import (
    BANK,
    CRYPTO,
    DEMAND,
    F64,
    GIFT,
    I64,
    P2P,
    PERSON,
    REMIT,
    SOURCE,
    SOURCE_WEIGHTS,
    Batch,
    NoteTable,
    World,
    round_amount,
)

__all__ = ["BENIGN", "TYPOLOGIES", "Label", "Picker", "PlantRates", "plant"]

# Codes written into the label columns of the AMLSim / SAML-D shapes (0: ordinary).
TYPOLOGIES = {"livestream": 1, "fan_in": 2, "fan_out": 3, "linked_receivers": 4}
BENIGN = "lookalike_remittance"

_KEYWORDS = (
    "school fees",
    "medical bills",
    "family support",
    "gift",
    "uniform",
    "allowance",
    "tuition",
    "for you",
    "help",
)
_FAMILY = ("family support", "for mum", "allowance", "school fees", "household", "")
_FAMILY_P = (0.30, 0.15, 0.10, 0.10, 0.10, 0.25)


@dataclass(frozen=True)
class PlantRates:
    """How many accounts carry each typology, as a share of all accounts (at least one each
    when the share is above zero). Suspicious cases are rare (SAML-D: 0.1 % of transactions);
    family remittances along the same corridors are common (AMLC: 87.5 % of reports were
    remittances)."""

    livestream: float = 0.002  # senders
    fan_in: float = 0.0005  # receivers
    fan_out: float = 0.0005  # senders
    linked_receivers: float = 0.0005  # groups
    lookalike_remittance: float = 0.01  # senders

    def count(self, name: str, accounts: int) -> int:
        share = float(getattr(self, name))
        return 0 if share <= 0 else max(1, round(share * accounts))


@dataclass(frozen=True)
class Label:
    account: int
    typology: str
    role: str  # sender | receiver


class Picker:
    """People drawn without replacement, by country group, for the planted roles."""

    def __init__(self, world: World, rng: np.random.Generator) -> None:
        self.world = world
        self.rng = rng
        countries = range(len(world.eur_per_unit))
        self._pools = {c: list(rng.permutation(world.of(PERSON, c))) for c in countries}

    def take(self, countries: tuple[int, ...], weights: F64 | None = None) -> int:
        p = None if weights is None else weights / weights.sum()
        for _ in range(64):
            c = countries[int(self.rng.choice(len(countries), p=p))]
            if self._pools[c]:
                return int(self._pools[c].pop())
        for c in countries:  # the drawn countries ran out: any of the group
            if self._pools[c]:
                return int(self._pools[c].pop())
        raise ValueError("too few accounts for the planted cases: raise --accounts")

    def demand(self) -> int:
        return self.take(DEMAND)

    def source(self) -> int:
        return self.take(SOURCE, SOURCE_WEIGHTS)


def _night_hours(rng: np.random.Generator, n: int, share: float) -> F64:
    """Hours on the sender's clock: ``share`` of them between 22:00 and 04:00 (as hours past
    midnight of the day before, i.e. 22–28), the rest in the evening."""
    night = rng.uniform(22.0, 28.0, n)
    evening = rng.uniform(18.0, 22.0, n)
    return np.where(rng.random(n) < share, night, evening)


def _notes(rng: np.random.Generator, notes: NoteTable, n: int, handle: int, p_key: float) -> I64:
    """Keywords with probability ``p_key``, the receiver's handle sometimes, else no note."""
    keywords = notes.codes(_KEYWORDS)
    u = rng.random(n)
    out = np.zeros(n, dtype=np.int64)
    out[u < p_key] = rng.choice(keywords, size=int((u < p_key).sum()))
    out[(u >= p_key) & (u < p_key + 0.15)] = handle
    return out


def _channels(rng: np.random.Generator, n: int) -> I64:
    preferred = rng.choice([REMIT, P2P, GIFT, CRYPTO], p=[0.45, 0.35, 0.10, 0.10])
    other = rng.choice([REMIT, P2P], size=n)
    return np.where(rng.random(n) < 0.85, preferred, other).astype(np.int64)


def _session_payments(
    world: World,
    notes: NoteTable,
    rng: np.random.Generator,
    sender: int,
    receiver: int,
    count: int,
    label: int,
) -> Batch:
    """Repeated payments for live sessions, escalating in amount and frequency."""
    start = rng.uniform(0, world.days * 0.4)
    span = rng.uniform(min(45.0, world.days - start - 1), world.days - start - 1)
    k = (np.arange(count) + rng.uniform(0, 1, count)) / count
    day = start + span * np.sort(k) ** 0.55  # intervals shrink: frequency escalates
    first = rng.uniform(12, 35)
    last = min(first * rng.uniform(2.5, 5.0), 190.0)
    eur = (first + (last - first) * np.sort(k)) * rng.uniform(0.85, 1.15, count)
    senders = np.full(count, sender, dtype=np.int64)
    amount = round_amount(world.local_amount(eur, senders), rng)
    handle = int(rng.choice(notes.handles))
    return world.batch(
        senders,
        np.full(count, receiver, dtype=np.int64),
        day,
        _night_hours(rng, count, 0.85),
        amount,
        _channels(rng, count),
        _notes(rng, notes, count, handle, 0.5),
        label,
    )


def _few_payments(
    world: World,
    notes: NoteTable,
    rng: np.random.Generator,
    sender: int,
    receiver: int,
    count: int,
    window: tuple[float, float],
    label: int,
) -> Batch:
    """A few low-value round payments at night within ``window`` (days)."""
    day = rng.uniform(window[0], window[1], count)
    senders = np.full(count, sender, dtype=np.int64)
    eur = rng.uniform(15, 150, count)
    return world.batch(
        senders,
        np.full(count, receiver, dtype=np.int64),
        day,
        _night_hours(rng, count, 0.7),
        round_amount(world.local_amount(eur, senders), rng),
        _channels(rng, count),
        _notes(rng, notes, count, int(rng.choice(notes.handles)), 0.4),
        label,
    )


def _livestream(
    world: World, notes: NoteTable, rng: np.random.Generator, pick: Picker, n: int
) -> tuple[list[Batch], list[Label]]:
    code = TYPOLOGIES["livestream"]
    receivers = [pick.source() for _ in range(max(1, int(np.ceil(n * 0.7))))]
    batches, labels = [], []
    used: set[int] = set()
    for _ in range(n):
        sender = pick.demand()
        labels.append(Label(sender, "livestream", "sender"))
        chosen = rng.choice(len(receivers), size=int(rng.integers(1, 3)), replace=False)
        for r in chosen:
            used.add(receivers[int(r)])
            count = int(rng.integers(12, 90)) // len(chosen)
            batches.append(
                _session_payments(world, notes, rng, sender, receivers[int(r)], count, code)
            )
    labels += [Label(r, "livestream", "receiver") for r in sorted(used)]
    return batches, labels


def _hub(
    world: World,
    notes: NoteTable,
    rng: np.random.Generator,
    pick: Picker,
    n: int,
    typology: str,
    *,
    inbound: bool,
    window: Callable[[], tuple[float, float]],
    spokes: tuple[int, int],
    payments: tuple[int, int],
) -> tuple[list[Batch], list[Label]]:
    """``n`` hubs, each paid by (``inbound``: a receiver in a source country) or paying (a
    sender in a demand country) a number of spokes in ``spokes``, with a few payments each in
    ``payments`` within one ``window`` per hub."""
    code = TYPOLOGIES[typology]
    hub_role, spoke_role = ("receiver", "sender") if inbound else ("sender", "receiver")
    pick_hub, pick_spoke = (pick.source, pick.demand) if inbound else (pick.demand, pick.source)
    batches, labels = [], []
    for _ in range(n):
        hub = pick_hub()
        labels.append(Label(hub, typology, hub_role))
        days = window()
        for _ in range(int(rng.integers(*spokes))):
            spoke = pick_spoke()
            labels.append(Label(spoke, typology, spoke_role))
            count = int(rng.integers(*payments))
            sender, receiver = (spoke, hub) if inbound else (hub, spoke)
            batches.append(_few_payments(world, notes, rng, sender, receiver, count, days, code))
    return batches, labels


def _fan_in(
    world: World, notes: NoteTable, rng: np.random.Generator, pick: Picker, n: int
) -> tuple[list[Batch], list[Label]]:
    def window() -> tuple[float, float]:
        start = rng.uniform(0, world.days * 0.5)
        return (start, min(world.days - 1.0, start + rng.uniform(20, 90)))

    return _hub(
        world,
        notes,
        rng,
        pick,
        n,
        "fan_in",
        inbound=True,
        window=window,
        spokes=(6, 21),
        payments=(2, 9),
    )


def _fan_out(
    world: World, notes: NoteTable, rng: np.random.Generator, pick: Picker, n: int
) -> tuple[list[Batch], list[Label]]:
    def window() -> tuple[float, float]:
        start = rng.uniform(0, world.days - 15)
        return (start, start + rng.uniform(3, 12))

    return _hub(
        world,
        notes,
        rng,
        pick,
        n,
        "fan_out",
        inbound=False,
        window=window,
        spokes=(4, 11),
        payments=(1, 4),
    )


def _linked(
    world: World, notes: NoteTable, rng: np.random.Generator, pick: Picker, n: int
) -> tuple[list[Batch], list[Label]]:
    code = TYPOLOGIES["linked_receivers"]
    acc = world.accounts
    batches, labels = [], []
    for _ in range(n):
        head = pick.source()
        country = int(acc.country[head])
        members = [pick.take((country,)) for _ in range(int(rng.integers(2, 4)))]
        for m in members:  # one phone, one address, one payout reference for the group
            acc.device[m], acc.ip[m], acc.wallet[m] = (
                acc.device[head],
                acc.ip[head],
                acc.wallet[head],
            )
        labels += [Label(a, "linked_receivers", "receiver") for a in [head, *members]]
        senders = [pick.demand() for _ in range(int(rng.integers(2, 4)))]
        labels += [Label(s, "linked_receivers", "sender") for s in senders]
        for s in senders:
            count = int(rng.integers(10, 40))
            batches.append(_session_payments(world, notes, rng, s, head, count, code))
        for m in members:  # shared senders: some of the head's, and one more of their own
            extra = pick.demand()
            labels.append(Label(extra, "linked_receivers", "sender"))
            for s in [*rng.choice(senders, size=2, replace=False), extra]:
                window = (0.0, world.days - 1.0)
                count = int(rng.integers(3, 9))
                batches.append(_few_payments(world, notes, rng, int(s), m, count, window, code))
    return batches, labels


def _lookalikes(
    world: World, notes: NoteTable, rng: np.random.Generator, pick: Picker, n: int
) -> tuple[list[Batch], list[Label]]:
    """Genuine family remittances: monthly on a payday (one in ten twice a month), about
    EUR 320 (6 % under 200), round, in daytime."""
    family = notes.codes(_FAMILY)
    batches, labels = [], []
    receiver = -1
    for _ in range(n):
        sender = pick.demand()
        if receiver < 0 or rng.random() > 0.15:  # siblings sometimes send to one parent
            receiver = pick.source()
            labels.append(Label(receiver, BENIGN, "receiver"))
        labels.append(Label(sender, BENIGN, "sender"))
        months = np.arange(0, world.days, 30.4)
        per_month = 2 if rng.random() < 0.1 else 1  # some send twice, the same sum each time
        day = (months[:, None] + rng.uniform(0, 28) + np.arange(per_month) * 14).ravel()
        day = np.clip(day + rng.uniform(-2, 2, len(day)), 0, world.days - 1)
        count = len(day)
        senders = np.full(count, sender, dtype=np.int64)
        eur = np.exp(rng.normal(np.log(320), 0.3)) * rng.uniform(0.9, 1.1, count)
        hour = np.where(
            rng.random(count) < 0.9, rng.uniform(9, 20, count), rng.uniform(20, 22, count)
        )
        channel = rng.choice([REMIT, P2P, BANK], p=[0.65, 0.20, 0.15])
        batches.append(
            world.batch(
                senders,
                np.full(count, receiver, dtype=np.int64),
                day,
                hour,
                round_amount(world.local_amount(eur, senders), rng),
                channel,
                rng.choice(family, size=count, p=_FAMILY_P),
            )
        )
    return batches, labels


def plant(
    world: World, notes: NoteTable, rng: np.random.Generator, rates: PlantRates
) -> tuple[Batch, list[Label]]:
    """Every planted case and look-alike of the world: their payments and their labels."""
    pick = Picker(world, rng)
    batches: list[Batch] = []
    labels: list[Label] = []
    planters = (
        ("livestream", _livestream),
        ("fan_in", _fan_in),
        ("fan_out", _fan_out),
        ("linked_receivers", _linked),
        (BENIGN, _lookalikes),
    )
    for name, planter in planters:
        made, named = planter(world, notes, rng, pick, rates.count(name, world.n))
        batches += made
        labels += named
    return Batch.concat(batches), labels
