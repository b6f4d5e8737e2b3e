"""The analyst's decisions on alerts, kept beside the screening and fed back into the next one.

A decision (``confirmed`` or ``not_suspicious``, a reason, who, when) is appended to
``decisions.jsonl`` in the screening's output directory. That file is a hash-chained audit log
(:mod:`hashwatch.audit`): append-only, each line committing to every line before it, so an
edited or removed decision is detected when the decisions are read back. Deciding again on the
same account appends a new line; the latest decision counts.

``export_flagged`` turns the decisions of one or more screenings into the two files the next
screening reads:

* the known-flagged list (``flagged.csv``, read by ``hashwatch payments screen --flagged``):
  confirmed accounts, which raise every account connected to them;
* the cleared list (``cleared.csv``): accounts found not suspicious, with the rules that had
  fired when a person looked. On the next screening such an account's alert is suppressed
  unless a rule fires that was not there then (:func:`suppressed`).
"""

from __future__ import annotations

import csv
import getpass
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hashwatch.audit import AuditLog, verify_audit_log
from hashwatch.errors import ConfigError, HashwatchError
from hashwatch.payments.model import Alert

__all__ = [
    "ALERTS",
    "DECISIONS",
    "DECISION_EVENT",
    "Decision",
    "DecisionError",
    "FlaggedExport",
    "alert_of",
    "decide",
    "export_flagged",
    "latest_decisions",
    "load_cleared",
    "read_decisions",
    "suppressed",
]

DECISIONS = "decisions.jsonl"
DECISION_EVENT = "payments.decision"
ALERTS = "alerts.jsonl"
Verdict = Literal["confirmed", "not_suspicious"]
_VERDICTS = ("confirmed", "not_suspicious")


class DecisionError(HashwatchError):
    """A decision cannot be recorded or read: no screening there, a broken decisions file."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision as recorded: the account, the verdict, why, who, when, and the alert as
    the analyst saw it (its role, score and rules; None when the account was not alerted)."""

    account: str
    decision: Verdict
    reason: str
    analyst: str
    time: str
    screening: str
    role: str | None
    score: float | None
    rules: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "decision": self.decision,
            "reason": self.reason,
            "analyst": self.analyst,
            "time": self.time,
            "screening": self.screening,
            "role": self.role,
            "score": self.score,
            "rules": list(self.rules),
        }


def _screening_dir(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    if not (out_dir / ALERTS).is_file():
        raise DecisionError(f"{out_dir} holds no {ALERTS}: not a payments screening's output")
    return out_dir


def alert_of(out_dir: Path, account: str) -> dict[str, Any] | None:
    """The account's alert in a screening (the highest-scoring one when it is alerted both as
    sender and as receiver), or None."""
    best: dict[str, Any] | None = None
    with (_screening_dir(out_dir) / ALERTS).open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("account") == account and (
                best is None or float(record["score"]) > float(best["score"])
            ):
                best = record
    return best


def decide(
    out_dir: Path,
    account: str,
    decision: str,
    *,
    reason: str = "",
    analyst: str | None = None,
) -> Decision:
    """Record the analyst's decision on ``account`` in the screening at ``out_dir``."""
    out_dir = _screening_dir(out_dir)
    if decision not in _VERDICTS:
        raise ConfigError(f"a decision is confirmed or not_suspicious, not {decision!r}")
    account = account.strip()
    if not account:
        raise ConfigError("name the account the decision is about")
    who = analyst or _os_user()
    alert = alert_of(out_dir, account)
    screening = ""
    meta = out_dir / "screening.json"
    if meta.is_file():
        screening = str(json.loads(meta.read_text("utf-8")).get("config_sha256", ""))
    log = _verified_log(out_dir)
    log.append(
        DECISION_EVENT,
        account=account,
        decision=decision,
        reason=reason[:2000],
        analyst=who[:200],
        screening=screening,
        role=alert["role"] if alert else None,
        score=float(alert["score"]) if alert else None,
        rules=list(alert["rules"]) if alert else [],
    )
    return read_decisions(out_dir)[-1]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (a container without a passwd entry)
        return "unknown"


def _verified_log(out_dir: Path) -> AuditLog:
    path = out_dir / DECISIONS
    if path.exists():
        check = verify_audit_log(path)
        if not check.ok:
            shown = "; ".join(str(p) for p in check.problems[:3])
            raise DecisionError(f"{path} does not verify, nothing recorded: {shown}")
    return AuditLog(path)


def read_decisions(out_dir: Path) -> list[Decision]:
    """Every decision recorded in a screening, in order; the chain is verified first."""
    path = Path(out_dir) / DECISIONS
    if not path.exists():
        return []
    check = verify_audit_log(path)
    if not check.ok:
        shown = "; ".join(str(p) for p in check.problems[:3])
        raise DecisionError(f"{path} does not verify: {shown}")
    decisions = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            if entry.get("event") != DECISION_EVENT:
                continue
            d = entry["details"]
            decisions.append(
                Decision(
                    account=str(d["account"]),
                    decision=d["decision"],
                    reason=str(d.get("reason", "")),
                    analyst=str(d.get("analyst", "")),
                    time=str(entry["time"]),
                    screening=str(d.get("screening", "")),
                    role=d.get("role"),
                    score=d.get("score"),
                    rules=tuple(d.get("rules") or ()),
                )
            )
    return decisions


def latest_decisions(out_dirs: Iterable[Path]) -> dict[str, Decision]:
    """The latest decision per account over the given screenings (by the time recorded)."""
    latest: dict[str, Decision] = {}
    for out_dir in out_dirs:
        for d in read_decisions(_screening_dir(out_dir)):
            if d.account not in latest or d.time >= latest[d.account].time:
                latest[d.account] = d
    return latest


@dataclass(frozen=True, slots=True)
class FlaggedExport:
    flagged_path: Path
    cleared_path: Path
    flagged: int
    cleared: int

    def to_json(self) -> dict[str, Any]:
        return {
            "flagged": str(self.flagged_path),
            "flagged_accounts": self.flagged,
            "cleared": str(self.cleared_path),
            "cleared_accounts": self.cleared,
        }


def export_flagged(
    out_dirs: Sequence[Path], flagged_path: Path, cleared_path: Path | None = None
) -> FlaggedExport:
    """Write the known-flagged list (confirmed accounts) and the cleared list (accounts found
    not suspicious, with the rules seen then) from the screenings' latest decisions."""
    if not out_dirs:
        raise ConfigError("name at least one screening's output directory")
    latest = latest_decisions(out_dirs)
    cleared_path = cleared_path or flagged_path.with_name("cleared.csv")
    confirmed = sorted((d for d in latest.values() if d.decision == "confirmed"), key=_key)
    cleared = sorted((d for d in latest.values() if d.decision == "not_suspicious"), key=_key)
    flagged_path.parent.mkdir(parents=True, exist_ok=True)
    with flagged_path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["account", "decided_at", "analyst", "reason"])
        out.writerows([d.account, d.time, d.analyst, d.reason] for d in confirmed)
    with cleared_path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(["account", "rules", "decided_at", "analyst", "reason"])
        out.writerows([d.account, ";".join(d.rules), d.time, d.analyst, d.reason] for d in cleared)
    return FlaggedExport(flagged_path, cleared_path, len(confirmed), len(cleared))


def _key(decision: Decision) -> str:
    return decision.account


def load_cleared(path: Path) -> dict[str, frozenset[str]]:
    """The cleared list: account → the rules that had fired when it was found not suspicious."""
    cleared: dict[str, frozenset[str]] = {}
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                account = (row.get("account") or "").strip()
                if account:
                    rules = (row.get("rules") or "").split(";")
                    cleared[account] = frozenset(r for r in rules if r)
    except OSError as exc:
        raise ConfigError(f"cleared accounts {path}: {exc}") from exc
    return cleared


def suppressed(alert: Alert, cleared: Mapping[str, frozenset[str]]) -> bool:
    """True when a person found the account not suspicious and no rule fires now that had
    not fired then (a new rule brings the alert back)."""
    seen = cleared.get(alert.account)
    return seen is not None and set(alert.rule_names) <= seen
