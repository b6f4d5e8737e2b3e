"""Precision, recall and alerts per 1,000 accounts of the payment screening, per typology, on
the synthetic generator's data: the native shape, and the AMLSim and SAML-D shapes read through
their presets (which carry fewer columns: no countries, notes or channels for AMLSim).

    .venv/bin/python bench/bench_payments_quality.py --accounts 20000 --transactions 400000
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hashwatch.payments.config import RELATION_RULES, PaymentsConfig, load_config, load_rates
from hashwatch.payments.model import Alert
from hashwatch.payments.screen import screen
from hashwatch.payments.synth import SynthSpec, generate

BENIGN = "lookalike_remittance"


def per_relation(alert: Alert, config: PaymentsConfig, corridor_only: bool = False) -> bool:
    """Would the alert stand if relation rules were scored per relation (the best relation's
    rules plus the network rules) instead of summed over all of the account's relations?
    ``corridor_only``: and only relations in a named corridor count."""
    network = {h.rule: h.weight for h in alert.rules if h.rule not in RELATION_RULES}
    by_relation: dict[str, dict[str, float]] = defaultdict(dict)
    for hit in alert.rules:
        if hit.rule in RELATION_RULES:
            by_relation[hit.counterparty or ""][hit.rule] = hit.weight
    if corridor_only:
        by_relation = defaultdict(dict, {k: v for k, v in by_relation.items() if "corridor" in v})
    for rules in [*by_relation.values(), {}]:
        merged = {**rules, **network}
        if len(merged) >= config.min_distinct_rules and sum(merged.values()) >= config.threshold:
            return True
    return False


def measure(schema: str, accounts: int, transactions: int, seed: int, work: Path) -> None:
    data = work / schema
    started = time.perf_counter()
    made = generate(
        SynthSpec(accounts=accounts, transactions=transactions, seed=seed, schema=schema), data
    )
    config = load_config(schema=None if schema == "native" else schema)
    result = screen(
        [made.transactions], config, data / "screen", None, None, load_rates(made.rates)
    )
    alerted = {a.account for a in result.alerts}
    strict = {a.account for a in result.alerts if per_relation(a, config)}
    corridor = {a.account for a in result.alerts if per_relation(a, config, corridor_only=True)}
    labels: dict[tuple[str, str], set[str]] = defaultdict(set)
    with made.labels.open(newline="") as handle:
        for row in csv.DictReader(handle):
            labels[(row["typology"], row["role"])].add(row["account"])
    suspicious = set().union(*(v for (t, _), v in labels.items() if t != BENIGN))
    true_alerts = len(alerted & suspicious)
    per_k = 1000.0 / accounts
    print(
        f"\n## {schema}: {accounts:,} accounts, {transactions:,} payments, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        f"alerts {len(alerted):,} ({len(alerted) * per_k:.1f} per 1,000 accounts); "
        f"precision {true_alerts / max(1, len(alerted)):.3f}; "
        f"ordinary accounts alerted {(len(alerted - suspicious)) * per_k:.1f} per 1,000"
    )
    print(
        f"scored per relation instead: alerts {len(strict):,} ({len(strict) * per_k:.1f} per "
        f"1,000 accounts); precision {len(strict & suspicious) / max(1, len(strict)):.3f}; "
        f"corridor relations only: alerts {len(corridor):,} ({len(corridor) * per_k:.1f} per "
        f"1,000), precision {len(corridor & suspicious) / max(1, len(corridor)):.3f}"
    )
    print(
        "| typology | role | accounts | alerted | recall (share for look-alikes) "
        "| per 1,000 accounts | per relation | corridor only |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (typology, role), members in sorted(labels.items()):
        hit, kept, near = (len(members & s) for s in (alerted, strict, corridor))
        size = len(members)
        print(
            f"| {typology} | {role} | {size} | {hit} | {hit / size:.2f} | {hit * per_k:.2f} | "
            f"{kept / size:.2f} | {near / size:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--transactions", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--schemas", default="native,amlsim,saml-d")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for schema in args.schemas.split(","):
            measure(schema, args.accounts, args.transactions, args.seed, Path(tmp))


if __name__ == "__main__":
    main()
