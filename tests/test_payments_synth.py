"""The synthetic payment generator: the same seed gives the same bytes, labels stay apart, the
planted cases are found by the screening, the benign look-alikes mostly are not, and the
AMLSim / SAML-D shapes read through their presets."""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

import pytest

from hashwatch.payments.config import PRESETS, load_config, load_rates
from hashwatch.payments.model import LABEL_COLUMNS
from hashwatch.payments.screen import screen
from hashwatch.payments.synth import SynthSpec, generate

# 2,000 fictitious accounts: 4 live-stream senders, one of each network typology, 20 look-alike
# family remitters (PlantRates' defaults).
SPEC = SynthSpec(accounts=2_000, transactions=14_000, seed=11, days=90)
# The least share of the planted accounts in each suspicious role that the screening alerts.
RECALL_BOUND = 0.9
# The most share of the benign look-alike remitters that it alerts.
LOOKALIKE_BOUND = 0.5


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_labels(path: Path) -> dict[tuple[str, str], set[str]]:
    by_kind: dict[tuple[str, str], set[str]] = defaultdict(set)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_kind[(row["typology"], row["role"])].add(row["account"])
    return by_kind


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(SPEC, out)
    return out


@pytest.fixture(scope="module")
def alerted(synth: Path) -> set[str]:
    rates = load_rates(synth / "rates.csv")
    result = screen(
        [synth / "transactions.csv"], load_config(), synth / "screen", None, None, rates
    )
    return {alert.account for alert in result.alerts}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    small = SynthSpec(accounts=1_000, transactions=3_000, seed=5, days=30)
    first = generate(small, tmp_path / "first")
    again = generate(small, tmp_path / "again")
    assert first.rows == again.rows == small.transactions
    for name in ("transactions.csv", "labels.csv", "rates.csv"):
        assert sha256(tmp_path / "again" / name) == sha256(tmp_path / "first" / name), name
    generate(SynthSpec(**{**small.__dict__, "seed": 6}), tmp_path / "other")
    assert sha256(tmp_path / "other" / "transactions.csv") != sha256(first.transactions)


def test_labels_are_apart_and_name_accounts_of_the_transactions(synth: Path) -> None:
    with (synth / "transactions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = set(rows[0])
    assert not {h.lower() for h in header} & LABEL_COLUMNS
    assert not {"typology", "label", "role"} & header
    accounts = {r["sender"] for r in rows} | {r["receiver"] for r in rows}
    labels = read_labels(synth / "labels.csv")
    assert {t for t, _ in labels} == {
        "livestream",
        "fan_in",
        "fan_out",
        "linked_receivers",
        "lookalike_remittance",
    }
    for kind, members in labels.items():
        assert members <= accounts, kind
    assert all(a.startswith("ACC-") for a in accounts)
    # Ordered by time, as an export is; amounts in the sender's currency with a rate for each.
    rates = load_rates(synth / "rates.csv")
    assert {r["currency"] for r in rows} <= set(rates)
    ts = [r["tx_id"] for r in rows]
    assert ts == sorted(ts)


def test_planted_cases_are_found(synth: Path, alerted: set[str]) -> None:
    labels = read_labels(synth / "labels.csv")
    for kind in (
        ("livestream", "sender"),
        ("livestream", "receiver"),
        ("fan_in", "receiver"),
        ("fan_out", "sender"),
        ("linked_receivers", "sender"),
        ("linked_receivers", "receiver"),
        ("fan_in", "sender"),
    ):
        members = labels[kind]
        found = len(members & alerted) / len(members)
        assert found >= RECALL_BOUND, f"{kind}: {found:.2f} of {len(members)} alerted"


def test_benign_lookalikes_are_mostly_left_alone(synth: Path, alerted: set[str]) -> None:
    remitters = read_labels(synth / "labels.csv")[("lookalike_remittance", "sender")]
    share = len(remitters & alerted) / len(remitters)
    assert share <= LOOKALIKE_BOUND, f"{share:.2f} of the benign look-alikes alerted"


@pytest.mark.parametrize(("schema", "labels"), [("amlsim", "is_sar"), ("saml-d", "Is_laundering")])
def test_dataset_shapes_read_through_their_presets(
    tmp_path: Path, schema: str, labels: str
) -> None:
    spec = SynthSpec(accounts=1_000, transactions=4_000, seed=3, days=45, schema=schema)
    made = generate(spec, tmp_path)
    with made.transactions.open(newline="") as handle:
        header = next(csv.reader(handle))
    assert set(PRESETS[schema].columns.values()) <= set(header)
    assert labels in header  # the data set's own label column, which the rules never read
    config = load_config(schema=schema)
    result = screen(
        [made.transactions], config, tmp_path / "screen", None, None, load_rates(made.rates)
    )
    assert result.rows == spec.transactions
    assert result.bad_rows == 0
