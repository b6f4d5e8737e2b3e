"""The versioned screening configuration: rules with their sources, column mapping, presets.

The shipped defaults live in ``rules_default.yaml`` (package data). A user's YAML file is laid
over them key by key, so it needs to name only what it changes. The SHA-256 of the merged
configuration (canonical JSON) goes into ``screening.json`` beside the version, so a result
names exactly the rules that produced it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from hashwatch.errors import ConfigError
from hashwatch.payments.model import CANONICAL_COLUMNS, LABEL_COLUMNS

__all__ = [
    "PRESETS",
    "RULE_NAMES",
    "ColumnMapping",
    "EngineSettings",
    "PaymentsConfig",
    "RuleConfig",
    "load_config",
    "load_flagged",
    "load_rates",
]

RELATION_RULES = (
    "corridor",
    "low_value",
    "round_amount",
    "repetition",
    "escalation",
    "night",
    "note_keywords",
    "channel",
)
NETWORK_RULES = ("fan_in", "fan_out", "flagged_link", "flagged_community")
RULE_NAMES: tuple[str, ...] = RELATION_RULES + NETWORK_RULES


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which column of the file holds each canonical column, and how to read the time.

    ``columns`` maps a canonical name (``payments.model.CANONICAL_COLUMNS``) to the file's
    column; a canonical name left out is read from a column of the same name when the file has
    one. ``ts_time`` is a separate time-of-day column (SAML-D's ``Date`` + ``Time``);
    ``ts_unit="hours"`` reads the timestamp as hours since ``ts_origin`` (PaySim's ``step``).
    """

    columns: dict[str, str] = field(default_factory=dict)
    ts_format: str | None = None
    ts_unit: Literal["timestamp", "hours"] = "timestamp"
    ts_origin: str = "2024-01-01 00:00:00"
    naive_timestamps: Literal["sender_local", "utc"] = "sender_local"
    default_currency: str = "EUR"

    def source(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """DuckDB's bounds: memory before spilling to ``temp_directory``, threads."""

    memory_limit: str = "2GB"
    temp_directory: str | None = None
    threads: int | None = None


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """One rule: its weight, its parameters and the published source of its numbers."""

    name: str
    weight: float
    params: dict[str, Any]
    source: str

    def number(self, key: str) -> float:
        value = self.params.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"payments rule {self.name}: {key} must be a number, got {value!r}")
        return float(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.params.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"payments rule {self.name}: {key} must be a list of strings")
        return tuple(value)

    def text(self, key: str) -> str:
        value = self.params.get(key)
        if not isinstance(value, str):
            raise ConfigError(f"payments rule {self.name}: {key} must be a string")
        return value


@dataclass(frozen=True, slots=True)
class PaymentsConfig:
    """The whole configuration of one screening (defaults merged with the user's file)."""

    version: str
    sha256: str
    rules: dict[str, RuleConfig]
    mapping: ColumnMapping
    engine: EngineSettings
    threshold: float
    min_distinct_rules: int
    max_tx_ids_per_hit: int
    country_zones: dict[str, str]
    raw: dict[str, Any]
    relation_scope: Literal["corridor", "all"] = "corridor"
    network_min_relation_rules: int = 3

    def rule(self, name: str) -> RuleConfig:
        return self.rules[name]

    def with_mapping(self, mapping: ColumnMapping) -> PaymentsConfig:
        return replace(self, mapping=mapping)


# Published column names of the public synthetic data sets (see docs/payments.md). Label columns
# (is_sar, isFraud, Is_laundering, Is Laundering, ...) are deliberately absent.
PRESETS: dict[str, ColumnMapping] = {
    # AMLSim (IBM), outputs/<sim>/transactions.csv written by scripts/convert_logs.py.
    "amlsim": ColumnMapping(
        columns={
            "tx_id": "tran_id",
            "sender": "orig_acct",
            "receiver": "bene_acct",
            "amount": "base_amt",
            "ts": "tran_timestamp",
            "channel": "tx_type",
        },
        naive_timestamps="utc",
    ),
    # SAML-D (Oztas et al. 2023), SAML-D.csv: Time, Date, ..., Is_laundering, Laundering_type.
    "saml-d": ColumnMapping(
        columns={
            "sender": "Sender_account",
            "receiver": "Receiver_account",
            "amount": "Amount",
            "currency": "Payment_currency",
            "ts": "Date",
            "ts_time": "Time",
            "sender_country": "Sender_bank_location",
            "receiver_country": "Receiver_bank_location",
            "channel": "Payment_type",
        },
    ),
    # PaySim (Lopez-Rojas et al. 2016), PS_20174392719_1491204439457_log.csv: step is an hour.
    "paysim": ColumnMapping(
        columns={
            "sender": "nameOrig",
            "receiver": "nameDest",
            "amount": "amount",
            "ts": "step",
            "channel": "type",
        },
        ts_unit="hours",
        naive_timestamps="utc",
    ),
    # IBM AML-Data (Altman et al. 2023), HI-Small_Trans.csv: the receiver's "Account" header
    # repeats; it is read as "Account.1" (the name pandas and the data set's users give it).
    "ibm-aml": ColumnMapping(
        columns={
            "sender": "Account",
            "receiver": "Account.1",
            "amount": "Amount Paid",
            "currency": "Payment Currency",
            "ts": "Timestamp",
            "channel": "Payment Format",
        },
        ts_format="%Y/%m/%d %H:%M",
        naive_timestamps="utc",
    ),
}


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _default_raw() -> dict[str, Any]:
    text = resources.files("hashwatch.payments").joinpath("rules_default.yaml").read_text("utf-8")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def _mapping(raw: dict[str, Any]) -> ColumnMapping:
    columns = raw.get("columns") or {}
    if not isinstance(columns, dict):
        raise ConfigError("payments mapping.columns must be a table of canonical name: column")
    for canonical, column in columns.items():
        if canonical not in CANONICAL_COLUMNS:
            known = ", ".join(CANONICAL_COLUMNS)
            raise ConfigError(f"payments mapping: unknown column {canonical!r} (known: {known})")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"payments mapping: {canonical} must name a column")
        if column.lower() in LABEL_COLUMNS:
            raise ConfigError(
                f"payments mapping: {canonical} -> {column!r} is a data set's label column; "
                "the rules never read labels"
            )
    ts_unit = raw.get("ts_unit", "timestamp")
    naive = raw.get("naive_timestamps", "sender_local")
    if ts_unit not in ("timestamp", "hours"):
        raise ConfigError(f"payments mapping.ts_unit must be timestamp or hours, got {ts_unit!r}")
    if naive not in ("sender_local", "utc"):
        raise ConfigError(f"payments mapping.naive_timestamps: sender_local or utc, not {naive!r}")
    return ColumnMapping(
        columns={str(k): str(v) for k, v in columns.items()},
        ts_format=raw.get("ts_format"),
        ts_unit=ts_unit,
        ts_origin=str(raw.get("ts_origin", "2024-01-01 00:00:00")),
        naive_timestamps=naive,
        default_currency=str(raw.get("default_currency", "EUR")).upper(),
    )


def _build(raw: dict[str, Any]) -> PaymentsConfig:
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    rules_raw = raw.get("rules") or {}
    rules: dict[str, RuleConfig] = {}
    for name in RULE_NAMES:
        entry = rules_raw.get(name)
        if not isinstance(entry, dict):
            raise ConfigError(f"payments config: rule {name} is missing")
        params = {k: v for k, v in entry.items() if k not in ("weight", "source")}
        weight = entry.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ConfigError(f"payments rule {name}: weight must be a number")
        rules[name] = RuleConfig(name, float(weight), params, str(entry.get("source", "")))
    unknown = set(rules_raw) - set(RULE_NAMES)
    if unknown:
        raise ConfigError(f"payments config: unknown rules {', '.join(sorted(unknown))}")
    score = raw.get("score") or {}
    scope = score.get("relation_scope", "corridor")
    if scope not in ("corridor", "all"):
        raise ConfigError(f"payments score.relation_scope: corridor or all, not {scope!r}")
    engine = raw.get("engine") or {}
    threads = engine.get("threads")
    return PaymentsConfig(
        version=str(raw.get("version", "")),
        sha256=hashlib.sha256(canonical.encode()).hexdigest(),
        rules=rules,
        mapping=_mapping(raw.get("mapping") or {}),
        engine=EngineSettings(
            memory_limit=str(engine.get("memory_limit", "2GB")),
            temp_directory=engine.get("temp_directory"),
            threads=int(threads) if threads is not None else None,
        ),
        threshold=float(score.get("threshold", 4.0)),
        min_distinct_rules=int(score.get("min_distinct_rules", 2)),
        max_tx_ids_per_hit=int(score.get("max_tx_ids_per_hit", 200)),
        country_zones={str(k).upper(): str(v) for k, v in (raw.get("country_zones") or {}).items()},
        raw=raw,
        relation_scope=scope,
        network_min_relation_rules=int(score.get("network_min_relation_rules", 3)),
    )


def load_config(
    path: Path | None = None,
    *,
    schema: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> PaymentsConfig:
    """The shipped defaults, with the user's YAML file and then ``overrides`` laid over them.

    ``schema`` picks a preset column mapping (``PRESETS``); a mapping in the user's file wins
    over it column by column.
    """
    raw = _default_raw()
    if schema is not None:
        if schema not in PRESETS:
            raise ConfigError(f"unknown schema {schema!r} (known: {', '.join(sorted(PRESETS))})")
        preset = PRESETS[schema]
        raw["mapping"] = _deep_merge(
            raw.get("mapping") or {},
            {
                "columns": dict(preset.columns),
                "ts_format": preset.ts_format,
                "ts_unit": preset.ts_unit,
                "ts_origin": preset.ts_origin,
                "naive_timestamps": preset.naive_timestamps,
                "default_currency": preset.default_currency,
            },
        )
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"payments config {path}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"payments config {path}: the top level must be a table")
        raw = _deep_merge(raw, loaded or {})
    if overrides:
        raw = _deep_merge(raw, overrides)
    return _build(raw)


def load_rates(path: Path) -> dict[str, float]:
    """A rates table: CSV ``currency,rate`` where 1 unit of the currency is ``rate`` EUR."""
    rates: dict[str, float] = {"EUR": 1.0}
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or row[0].strip().startswith("#"):
                    continue
                if number == 1 and row[0].strip().lower() == "currency":
                    continue
                if len(row) < 2:
                    raise ConfigError(f"rates {path}:{number}: expected currency,rate")
                try:
                    rate = float(row[1])
                except ValueError:
                    raise ConfigError(f"rates {path}:{number}: {row[1]!r} is no number") from None
                if rate <= 0:
                    raise ConfigError(f"rates {path}:{number}: a rate must be positive")
                rates[row[0].strip().upper()] = rate
    except OSError as exc:
        raise ConfigError(f"rates {path}: {exc}") from exc
    return rates


def load_flagged(path: Path) -> frozenset[str]:
    """Known-flagged accounts: one a line (``#`` comments), or a CSV whose first column is the
    account with an ``account`` header (the analyst's confirmed decisions)."""
    accounts: set[str] = set()
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or not row[0].strip() or row[0].strip().startswith("#"):
                    continue
                if number == 1 and row[0].strip().lower() == "account":
                    continue
                accounts.add(row[0].strip())
    except OSError as exc:
        raise ConfigError(f"flagged accounts {path}: {exc}") from exc
    return frozenset(accounts)
