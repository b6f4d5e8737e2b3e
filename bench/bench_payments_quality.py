"""Precision, recall and alerts per 1,000 accounts of the payment screening, per typology, on
the synthetic generator's data: the native shape, and the AMLSim and SAML-D shapes read through
their presets (which carry fewer columns: no countries, notes or channels for AMLSim).

Scoring is per relation on corridor relations (rules 2026.12-2). Precision counts an alert on
a planted account (any typology, any role) as true; benign look-alike remitters and every
ordinary account as false.

    .venv/bin/python bench/bench_payments_quality.py --accounts 20000 --transactions 400000
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hashwatch.payments.config import load_config, load_rates
from hashwatch.payments.screen import screen
from hashwatch.payments.synth import SynthSpec, generate

BENIGN = "lookalike_remittance"


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
    labels: dict[tuple[str, str], set[str]] = defaultdict(set)
    with made.labels.open(newline="") as handle:
        for row in csv.DictReader(handle):
            labels[(row["typology"], row["role"])].add(row["account"])
    suspicious = set().union(*(v for (t, _), v in labels.items() if t != BENIGN))
    benign = set().union(*(v for (t, _), v in labels.items() if t == BENIGN))
    true_alerts = len(alerted & suspicious)
    per_k = 1000.0 / accounts
    print(
        f"\n## {schema}: {accounts:,} accounts, {transactions:,} payments, rules "
        f"{config.version}, {time.perf_counter() - started:.0f} s"
    )
    print(
        f"alerts {len(alerted):,} ({len(alerted) * per_k:.1f} per 1,000 accounts); "
        f"precision {true_alerts / max(1, len(alerted)):.3f}; "
        f"look-alikes alerted {len(alerted & benign) * per_k:.1f} per 1,000, other ordinary "
        f"accounts {len(alerted - suspicious - benign) * per_k:.1f} per 1,000"
    )
    print(
        "| typology | role | accounts | alerted | recall (share alerted for look-alikes) "
        "| alerted per 1,000 accounts |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (typology, role), members in sorted(labels.items()):
        hit = len(members & alerted)
        print(
            f"| {typology} | {role} | {len(members)} | {hit} | {hit / len(members):.2f} | "
            f"{hit * per_k:.2f} |"
        )
    # Per typology: its accounts in any role, and the precision of the alerts a screening
    # restricted to this typology's accounts plus every ordinary account would give.
    print("| typology | recall (any role) | precision against ordinary accounts |")
    print("| --- | ---: | ---: |")
    false = len(alerted - suspicious)
    for typology in sorted({t for t, _ in labels if t != BENIGN}):
        members = set().union(*(v for (t, _), v in labels.items() if t == typology))
        hit = len(members & alerted)
        print(f"| {typology} | {hit / len(members):.2f} | {hit / max(1, hit + false):.3f} |")


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
