"""Typed records of payment screening: transactions, rule hits, alerts and a screening's result.

These are the interfaces the screening, the synthetic generator, the report and the analyst's
decisions share. Inside hashwatch they stay dataclasses; JSON is written only at the edges
(``alerts.jsonl``, ``screening.json``) through the ``to_json`` methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "CANONICAL_COLUMNS",
    "LABEL_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Alert",
    "BadRow",
    "InputSummary",
    "Role",
    "RuleHit",
    "ScreenResult",
    "Transaction",
]

Role = Literal["sender", "receiver"]

# The canonical columns every input is mapped onto (``payments.config.ColumnMapping``).
REQUIRED_COLUMNS: tuple[str, ...] = ("sender", "receiver", "amount", "ts")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "tx_id",
    "currency",
    "ts_time",
    "sender_tz",
    "sender_country",
    "receiver_country",
    "channel",
    "note",
    "sender_device",
    "sender_ip",
    "receiver_account_ref",
)
CANONICAL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# Ground-truth columns the public synthetic data sets carry. The rules never read them: a
# mapping that names one is refused (``payments.config``), and the reader selects mapped
# columns only.
LABEL_COLUMNS: frozenset[str] = frozenset(
    name.lower()
    for name in (
        "is_sar",
        "is_fraud",
        "isFraud",
        "isFlaggedFraud",
        "alert_id",
        "Is_laundering",
        "Laundering_type",
        "Is Laundering",
    )
)


@dataclass(frozen=True, slots=True)
class Transaction:
    """One payment after mapping, parsing and conversion (``amount_eur`` with the rates table).

    ``ts_utc`` is timezone-aware UTC; ``sender_tz`` is the IANA zone used for the sender's local
    time (from a column or the sender country's default). Countries are ISO 3166 alpha-2 where
    known, else the raw text.
    """

    tx_id: str
    sender: str
    receiver: str
    amount: float
    currency: str
    amount_eur: float
    ts_utc: datetime
    sender_country: str | None = None
    receiver_country: str | None = None
    channel: str | None = None
    note: str | None = None
    sender_tz: str | None = None
    sender_device: str | None = None
    sender_ip: str | None = None
    receiver_account_ref: str | None = None


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired for an account: its weight, what it saw in words, on which payments."""

    rule: str
    weight: float
    detail: str
    tx_ids: tuple[str, ...] = ()
    counterparty: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "weight": self.weight,
            "detail": self.detail,
            "tx_ids": list(self.tx_ids),
            "counterparty": self.counterparty,
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """One alerted account: the rules that fired (at least two distinct ones), the score, the
    payments they fired on, the accounts on the other side, and why in plain words."""

    account: str
    role: Role
    score: float
    rules: tuple[RuleHit, ...]
    transactions: tuple[str, ...]
    counterparties: tuple[str, ...]
    explanation: str

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(sorted({hit.rule for hit in self.rules}))

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "role": self.role,
            "score": self.score,
            "rules": list(self.rule_names),
            "transactions": list(self.transactions),
            "counterparties": list(self.counterparties),
            "explanation": self.explanation,
            "hits": [hit.to_json() for hit in self.rules],
        }


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that did not parse: its file, line (1-based, header counted) and why."""

    file: str
    line: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class InputSummary:
    """One input file as read: its digest, rows kept and rows refused."""

    path: str
    sha256: str
    format: Literal["csv", "parquet"]
    rows: int
    bad_rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "format": self.format,
            "rows": self.rows,
            "bad_rows": self.bad_rows,
        }


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """What one screening found, with enough provenance to repeat it."""

    alerts: tuple[Alert, ...]
    inputs: tuple[InputSummary, ...]
    rows: int
    accounts: int
    relations: int
    bad_rows: int
    bad_row_samples: tuple[BadRow, ...]
    unknown_countries: dict[str, int]
    timings: dict[str, float]
    config_version: str
    config_sha256: str
    rule_counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "config_version": self.config_version,
            "config_sha256": self.config_sha256,
            "inputs": [summary.to_json() for summary in self.inputs],
            "rows": self.rows,
            "accounts": self.accounts,
            "relations": self.relations,
            "alerts": len(self.alerts),
            "bad_rows": self.bad_rows,
            "bad_row_samples": [row.to_json() for row in self.bad_row_samples],
            "unknown_countries": dict(sorted(self.unknown_countries.items())),
            "rule_counts": dict(sorted(self.rule_counts.items())),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
