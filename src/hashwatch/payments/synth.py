"""A synthetic payment export with the published typologies planted at known rates.

``generate`` writes, into one directory:

* ``transactions.csv`` (or ``.parquet``): ordinary traffic of fictitious accounts — salaries,
  rent, bills, groceries, online shopping, payments between friends, family remittances — with
  the planted cases (:mod:`hashwatch.payments.synth_plant`) mixed in, ordered by time. Three
  shapes: ``native`` (hashwatch's canonical column names, read with no mapping), ``amlsim``
  (AMLSim's ``transactions.csv``: no countries, notes, devices; amounts in EUR) and ``saml-d``
  (SAML-D's columns: date and time apart, bank locations as country names).
* ``labels.csv``: ``account,typology,role`` for every planted account and every benign
  look-alike. Labels never enter ``native`` transactions; the AMLSim / SAML-D shapes carry their
  data sets' own label columns (``is_sar``, ``Is_laundering``), which the screening never reads.
* ``rates.csv``: the fixed EUR rates the amounts were made with (``--rates`` of the screening).
* ``synth.json``: the settings, the counts per typology and the SHA-256 of each file.

Rows are built in chunks of numbers with numpy and written by DuckDB (``COPY … TO``, sorted
with spill to disk under a memory limit), so 10,000,000 rows take minutes in bounded memory.
The same seed and settings give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from hashwatch import __version__
from hashwatch.errors import ConfigError
from hashwatch.payments.synth_plant import BENIGN, TYPOLOGIES, Label, PlantRates, plant
from hashwatch.payments.synth_world import (
    BANK,
    CARD,
    COUNTRIES,
    DEBIT,
    EMPLOYER,
    F64,
    I64,
    MERCHANT,
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

__all__ = [
    "FORMATS",
    "LABELS",
    "MANIFEST",
    "RATES",
    "SCHEMAS",
    "PlantRates",
    "SynthResult",
    "SynthSpec",
    "generate",
]

SCHEMAS = ("native", "amlsim", "saml-d")
FORMATS = ("csv", "parquet")
LABELS = "labels.csv"
RATES = "rates.csv"
MANIFEST = "synth.json"
_RECURRING_SHARE = 0.25  # salaries, rent and bills among the ordinary payments
_SHOPS = ("US", "GB", "DE", "NL", "SG", "JP", "IE")


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. ``days`` from ``start``; ``rates`` the planted shares."""

    accounts: int
    transactions: int
    seed: int = 0
    days: int = 180
    start: date = date(2024, 1, 1)
    schema: str = "native"
    format: str = "csv"
    rates: PlantRates = field(default_factory=PlantRates)
    chunk_rows: int = 1_000_000
    memory_limit: str = "1GB"

    def check(self) -> None:
        if self.schema not in SCHEMAS:
            raise ConfigError(f"--schema must be one of {', '.join(SCHEMAS)}")
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
        if self.accounts < 1_000:
            raise ConfigError("--accounts must be at least 1,000 (the planted cases need room)")
        if self.days < 30:
            raise ConfigError("--days must be at least 30")


@dataclass(frozen=True)
class SynthResult:
    """What was written: the files, row and account counts, labelled accounts per typology."""

    transactions: Path
    labels: Path
    rates: Path
    manifest: Path
    rows: int
    accounts: int
    planted_rows: int
    labelled: dict[str, int]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("transactions", "labels", "rates", "manifest"):
            out[key] = str(out[key])
        out["seconds"] = round(self.seconds, 2)
        return out


def _near(world: World, kind: int, senders: I64, spread: int, rng: np.random.Generator) -> I64:
    """An account of ``kind`` in each sender's country, among a few that sender always uses
    (its friends, its local shops): neighbours of its own position in the country's pool."""
    out = np.empty(len(senders), dtype=np.int64)
    country = world.accounts.country[senders]
    offset = rng.integers(1, spread + 1, size=len(senders))
    for c in np.unique(country):
        where = np.flatnonzero(country == c)
        pool = world.of(kind, int(c))
        if len(pool) == 0:
            pool = world.persons if kind == PERSON else world.merchants
        out[where] = pool[(world.rank[senders[where]] * 3 + offset[where]) % len(pool)]
    return out


def _contact(world: World, senders: I64, countries: tuple[int, ...], weights: F64 | None) -> I64:
    """The one person abroad each sender pays (family, a friend): fixed per sender, drawn from a
    hash of its index so that every chunk agrees."""
    mixed = (senders * 2654435761 + 97) % 4294967296
    if weights is None:
        pick = mixed % len(countries)
    else:
        cumulative = np.cumsum(weights / weights.sum())
        pick = np.searchsorted(cumulative, (mixed % 10_000) / 10_000, side="right")
    country = np.asarray(countries, dtype=np.int64)[np.minimum(pick, len(countries) - 1)]
    out = np.empty(len(senders), dtype=np.int64)
    for c in np.unique(country):
        where = np.flatnonzero(country == c)
        pool = world.of(PERSON, int(c))
        pool = pool if len(pool) else world.persons
        out[where] = pool[(mixed[where] // 7) % len(pool)]
    return out


def _monthly(
    world: World, streams: int, first_day: tuple[float, float], rng: np.random.Generator
) -> tuple[I64, F64]:
    """(stream index, day) of a monthly payment per stream within the period."""
    months = np.arange(0.0, world.days, 30.4)
    base = rng.uniform(*first_day, size=streams)
    day = (base[:, None] + months[None, :]).ravel()
    stream = np.repeat(np.arange(streams), len(months))
    keep = day < world.days
    return stream[keep], day[keep]


def _recurring(world: World, notes: NoteTable, rng: np.random.Generator, budget: int) -> Batch:
    """Salaries (employer → person), rent (person → landlord) and bills (direct debits, often
    run by the biller at night): the regular payments of ordinary life."""
    per_stream = max(1, len(np.arange(0.0, world.days, 30.4)))
    streams = budget // per_stream
    acc = world.accounts
    parts: list[Batch] = []
    # Salaries
    n = int(streams * 0.4)
    employee = rng.choice(world.persons, n)
    employer = world.pick_in(EMPLOYER, acc.country[employee], rng)
    salary_eur = np.exp(rng.normal(np.log(2600), 0.35, n))
    i, day = _monthly(world, n, (24.0, 28.0), rng)
    amount = world.local_amount(salary_eur[i], employer[i]) * rng.uniform(0.98, 1.02, len(i))
    parts.append(
        world.batch(
            employer[i],
            employee[i],
            day,
            rng.uniform(6, 10, len(i)),
            amount,
            BANK,
            notes.code("salary"),
        )
    )
    # Rent
    n = int(streams * 0.25)
    tenant = rng.choice(world.persons, n)
    landlord = world.pick_in(PERSON, acc.country[tenant], rng)
    rent = round_amount(world.local_amount(np.exp(rng.normal(np.log(900), 0.35, n)), tenant), rng)
    i, day = _monthly(world, n, (0.0, 3.0), rng)
    parts.append(
        world.batch(
            tenant[i],
            landlord[i],
            day,
            rng.uniform(7, 22, len(i)),
            rent[i],
            BANK,
            notes.code("rent"),
        )
    )
    # Bills
    n = streams - int(streams * 0.4) - int(streams * 0.25)
    payer = rng.choice(world.persons, n)
    biller = world.pick_in(MERCHANT, acc.country[payer], rng)
    what = rng.choice(
        notes.codes(("electricity", "mobile plan", "internet", "water", "insurance")), n
    )
    typical = np.exp(rng.normal(np.log(60), 0.5, n))
    i, day = _monthly(world, n, (0.0, 28.0), rng)
    night = rng.random(n) < 0.5
    hour = np.where(night[i], rng.uniform(1, 5, len(i)), rng.uniform(8, 20, len(i)))
    amount = world.local_amount(typical[i] * rng.uniform(0.8, 1.25, len(i)), payer[i])
    parts.append(world.batch(payer[i], biller[i], day, hour, amount, DEBIT, what[i]))
    return Batch.concat(parts)


def _everyday(world: World, notes: NoteTable, rng: np.random.Generator, n: int) -> Batch:
    """``n`` one-off payments: groceries, online shops abroad, friends, transfers at home,
    occasional remittances, other transfers abroad."""
    acc = world.accounts
    purpose = rng.choice(6, size=n, p=[0.50, 0.12, 0.25, 0.08, 0.03, 0.02])
    sender = world.active[np.floor(len(world.active) * rng.random(n) ** 1.5).astype(np.int64)]
    receiver = np.empty(n, dtype=np.int64)
    hour = np.empty(n)
    eur = np.empty(n)
    channel = np.empty(n, dtype=np.int64)
    note = np.zeros(n, dtype=np.int64)
    codes = {p: np.flatnonzero(purpose == p) for p in range(6)}

    w = codes[0]  # groceries at a few local shops, by card, in the day
    receiver[w] = _near(world, MERCHANT, sender[w], 4, rng)
    hour[w] = np.clip(rng.normal(15, 3.5, len(w)), 7, 22.5)
    eur[w] = np.exp(rng.normal(np.log(30), 0.7, len(w)))
    channel[w] = CARD
    note[w] = np.where(rng.random(len(w)) < 0.3, notes.code("POS purchase"), 0)

    w = codes[1]  # online shops abroad, at any hour
    shops = [[c.code for c in COUNTRIES].index(s) for s in _SHOPS]
    countries = np.where(
        rng.random(len(w)) < 0.95,
        rng.choice(shops, len(w)),
        rng.integers(0, len(COUNTRIES), len(w)),
    )
    receiver[w] = world.pick_in(MERCHANT, countries, rng)
    hour[w] = np.where(
        rng.random(len(w)) < 0.9, rng.uniform(8, 24, len(w)), rng.uniform(0, 8, len(w))
    )
    eur[w] = np.exp(rng.normal(np.log(45), 0.9, len(w)))
    channel[w] = CARD
    note[w] = rng.choice(notes.codes(("online order", "subscription", "")), len(w))

    w = codes[2]  # friends, by P2P app, round amounts, evenings (some late)
    receiver[w] = _near(world, PERSON, sender[w], 5, rng)
    hour[w] = np.mod(rng.normal(18.5, 3.5, len(w)), 24)
    eur[w] = np.exp(rng.normal(np.log(25), 0.8, len(w)))
    channel[w] = P2P
    friendly = notes.codes(
        (
            "dinner",
            "drinks",
            "taxi share",
            "concert tickets",
            "thanks",
            "birthday gift",
            "rent share",
            "coffee",
            "football",
            "",
        )
    )
    note[w] = rng.choice(friendly, len(w))
    handle = rng.random(len(w)) < 0.02
    note[w[handle]] = rng.choice(notes.handles, int(handle.sum()))

    w = codes[3]  # transfers at home
    receiver[w] = world.pick_in(PERSON, acc.country[sender[w]], rng)
    hour[w] = rng.uniform(8, 22, len(w))
    eur[w] = np.exp(rng.normal(np.log(150), 1.0, len(w)))
    channel[w] = BANK
    note[w] = rng.choice(notes.codes(("savings", "loan repayment", "car", "")), len(w))

    w = codes[4]  # now and then a remittance to the sender's own family in a source country
    receiver[w] = _contact(world, sender[w], SOURCE, SOURCE_WEIGHTS)
    hour[w] = rng.uniform(9, 21, len(w))
    eur[w] = np.exp(rng.normal(np.log(250), 0.5, len(w)))
    channel[w] = REMIT
    note[w] = rng.choice(notes.codes(("family support", "gift", "")), len(w), p=[0.4, 0.15, 0.45])

    w = codes[5]  # transfers to the sender's contact abroad (family, a holiday flat, a client)
    everywhere = tuple(range(len(COUNTRIES)))
    receiver[w] = _contact(world, sender[w], everywhere, None)
    hour[w] = rng.uniform(8, 22, len(w))
    eur[w] = np.exp(rng.normal(np.log(300), 1.0, len(w)))
    channel[w] = BANK
    note[w] = rng.choice(notes.codes(("invoice", "holiday flat", "")), len(w))

    amount = world.local_amount(eur, sender)
    roundish = (purpose == 2) | ((purpose >= 3) & (rng.random(n) < 0.5))
    amount = np.where(roundish, round_amount(amount, rng), amount)
    same = receiver == sender
    position = np.searchsorted(world.persons, receiver[same]) + 1
    receiver[same] = world.persons[position % len(world.persons)]
    return world.batch(sender, receiver, rng.uniform(0, world.days, n), hour, amount, channel, note)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_labels(path: Path, labels: list[Label], width: int) -> dict[str, int]:
    seen: set[tuple[int, str, str]] = set()
    rows = []
    for label in labels:
        key = (label.account, label.typology, label.role)
        if key not in seen:
            seen.add(key)
            rows.append(key)
    rows.sort()
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["account", "typology", "role"])
        for account, typology, role in rows:
            out.writerow([f"ACC-{account:0{width}d}", typology, role])
    return dict(sorted(Counter(f"{t}:{r}" for _, t, r in rows).items()))


def generate(
    spec: SynthSpec,
    out_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
) -> SynthResult:
    """Write a synthetic export with planted typologies into ``out_dir`` (see the module
    docstring). ``progress(rows_done, rows_total)`` is called after each chunk."""
    from hashwatch.payments.synth_write import SynthWriter

    spec.check()
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(spec.seed).spawn(4)
    world = World(spec.accounts, spec.days, spec.start, np.random.default_rng(seeds[0]))
    notes = NoteTable(np.random.default_rng(seeds[1]))
    planted, labels = plant(world, notes, np.random.default_rng(seeds[2]), spec.rates)
    ordinary = spec.transactions - len(planted)
    if ordinary < 0:
        raise ConfigError(
            f"--transactions {spec.transactions:,} is fewer than the {len(planted):,} planted "
            "payments: ask for more transactions or fewer accounts"
        )
    rng = np.random.default_rng(seeds[3])
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        writer = SynthWriter(tmp, spec.memory_limit)
        writer.append(planted)
        recurring = _recurring(world, notes, rng, int(ordinary * _RECURRING_SHARE))
        recurring = _take(recurring, ordinary)
        writer.append(recurring)
        left = ordinary - len(recurring)
        if progress is not None:
            progress(writer.rows, spec.transactions)
        while left > 0:
            n = min(spec.chunk_rows, left)
            writer.append(_everyday(world, notes, rng, n))
            left -= n
            if progress is not None:
                progress(writer.rows, spec.transactions)
        writer.lookups(world, notes, {code: name for name, code in TYPOLOGIES.items()})
        rates = {c.currency: c.eur_per_unit for c in COUNTRIES}
        path = out / f"transactions.{spec.format}"
        writer.write(path, spec.schema, spec.format, rates)
        rows = writer.rows
        writer.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rates_path = out / RATES
    with rates_path.open("w", newline="", encoding="utf-8") as handle:
        table = csv.writer(handle, lineterminator="\n")
        table.writerow(["currency", "rate"])
        table.writerows(sorted(rates.items()))
    labels_path = out / LABELS
    labelled = _write_labels(labels_path, labels, max(6, len(str(spec.accounts - 1))))
    result = SynthResult(
        transactions=path,
        labels=labels_path,
        rates=rates_path,
        manifest=out / MANIFEST,
        rows=rows,
        accounts=spec.accounts,
        planted_rows=int((planted.label > 0).sum()),
        labelled=labelled,
        seconds=time.perf_counter() - started,
    )
    settings = asdict(spec)
    settings["start"] = spec.start.isoformat()
    manifest = {
        "generator": "hashwatch payments synth",
        "hashwatch_version": __version__,
        "settings": settings,
        "rows": rows,
        "planted_rows": result.planted_rows,
        "labelled_accounts": labelled,
        "benign_lookalike": BENIGN,
        "files": {p.name: _sha256(p) for p in (path, labels_path, rates_path)},
    }
    result.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return result


def _take(batch: Batch, limit: int) -> Batch:
    """The first ``limit`` rows of ``batch`` (all when it has fewer)."""
    if len(batch) <= limit:
        return batch
    fields = ("ts", "offset", "sender", "receiver", "amount", "channel", "note", "label")
    return Batch(*(getattr(batch, f)[:limit] for f in fields))
