"""The analyst's decisions: recorded append-only with who and when, fed back as the known-flagged
list that raises the connected accounts on the next screening, a cleared account's alert
suppressed until a new rule fires, and an alert exported as a case folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hashwatch.payments.case_export import verify_case_export
from hashwatch.payments.config import load_flagged
from hashwatch.payments.decisions import DecisionError, load_cleared, read_decisions, suppressed
from hashwatch.payments.model import Alert, RuleHit
from hashwatch.payments.synth import SynthSpec, generate
from tests import inprocess_cli
from tests.inprocess_cli import Run

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process, as the entry runs it

SPEC = SynthSpec(accounts=1_000, transactions=6_000, seed=21, days=60)


def alerts_of(out: Path) -> dict[str, set[str]]:
    rules: dict[str, set[str]] = {}
    for line in (out / "alerts.jsonl").read_text().splitlines():
        record = json.loads(line)
        rules.setdefault(record["account"], set()).update(record["rules"])
    return rules


def linked_group(labels: Path) -> list[str]:
    with labels.open(newline="") as handle:
        return [
            r["account"]
            for r in csv.DictReader(handle)
            if r["typology"] == "linked_receivers" and r["role"] == "receiver"
        ]


def test_confirmed_account_raises_its_connected_accounts_next_time(
    run: Run, tmp_path: Path
) -> None:
    made = generate(SPEC, tmp_path / "data")
    screen_args = ["payments", "screen", str(made.transactions), "--rates", str(made.rates)]
    assert run(*screen_args, "--out", "first").returncode == 0
    first = alerts_of(tmp_path / "first")
    group = linked_group(made.labels)  # receivers sharing a phone, an address, a payout ref
    head = next(a for a in group if a in first)
    done = run(
        "payments",
        "decide",
        "first",
        head,
        "--confirmed",
        "--reason",
        "typology",
        "--analyst",
        "analyst-7",
    )
    assert done.returncode == 0, done.stderr
    recorded = json.loads(done.stdout)
    assert (recorded["account"], recorded["decision"], recorded["analyst"]) == (
        head,
        "confirmed",
        "analyst-7",
    )
    assert recorded["time"].endswith("Z") and recorded["rules"]
    assert run("payments", "flagged", "export", "first", "--out", "flagged.csv").returncode == 0
    assert load_flagged(tmp_path / "flagged.csv") == {head}
    assert run(*screen_args, "--out", "second", "--flagged", "flagged.csv").returncode == 0
    second = alerts_of(tmp_path / "second")
    others = [a for a in group if a != head]
    raised = [a for a in others if {"flagged_link", "flagged_community"} & second.get(a, set())]
    assert raised, f"no account linked to {head} was raised: {others}"
    assert not any({"flagged_link", "flagged_community"} & first.get(a, set()) for a in others)


def test_latest_decision_counts_and_the_log_is_tamper_evident(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "screening"
    out.mkdir()
    (out / "alerts.jsonl").write_text(
        json.dumps(
            {
                "account": "ACC-000007",
                "role": "receiver",
                "score": 5.0,
                "rules": ["corridor", "night"],
            }
        )
        + "\n"
    )
    assert run("payments", "decide", str(out), "ACC-000007", "--confirmed").returncode == 0
    assert (
        run(
            "payments",
            "decide",
            str(out),
            "ACC-000007",
            "--not-suspicious",
            "--reason",
            "a family member's allowance",
        ).returncode
        == 0
    )
    both = run("payments", "decide", str(out), "ACC-000007", "--confirmed", "--not-suspicious")
    assert both.returncode == 2 and "exactly one" in both.stderr
    assert [d.decision for d in read_decisions(out)] == ["confirmed", "not_suspicious"]
    assert run("payments", "flagged", "export", str(out), "--out", "f.csv").returncode == 0
    assert load_flagged(tmp_path / "f.csv") == frozenset()
    cleared = load_cleared(tmp_path / "cleared.csv")
    assert cleared == {"ACC-000007": frozenset({"corridor", "night"})}
    log = out / "decisions.jsonl"
    log.write_text(log.read_text().replace("allowance", "allowancE"))
    with pytest.raises(DecisionError, match="does not verify"):
        read_decisions(out)
    refused = run("payments", "decide", str(out), "ACC-000007", "--confirmed")
    assert refused.returncode == 2 and "does not verify" in refused.stderr


def test_a_cleared_alert_comes_back_only_with_a_new_rule() -> None:
    def alert(*rules: str) -> Alert:
        hits = tuple(RuleHit(r, 1.0, r) for r in rules)
        return Alert("ACC-000042", "sender", 4.0, hits, (), (), "")

    cleared = {"ACC-000042": frozenset({"corridor", "night", "low_value"})}
    assert suppressed(alert("corridor", "night"), cleared)
    assert suppressed(alert("corridor", "night", "low_value"), cleared)
    assert not suppressed(alert("corridor", "night", "fan_in"), cleared)
    assert not suppressed(alert("corridor", "night"), {})


def test_an_alert_exports_as_a_case_folder(run: Run, tmp_path: Path) -> None:
    made = generate(SynthSpec(accounts=1_000, transactions=5_000, seed=4, days=60), tmp_path / "d")
    args = ["payments", "screen", str(made.transactions), "--rates", str(made.rates)]
    assert run(*args, "--out", "s").returncode == 0
    account = json.loads((tmp_path / "s" / "alerts.jsonl").read_text().splitlines()[0])["account"]
    assert run("payments", "decide", "s", account, "--confirmed").returncode == 0
    done = run("payments", "case-export", "s", account, "--to", "case")
    assert done.returncode == 0, done.stderr
    case = tmp_path / "case"
    assert sorted(p.name for p in case.iterdir()) == ["alert.html", "alert.json", "manifest.json"]
    document = json.loads((case / "alert.json").read_text())
    assert document["account"] == account and document["alerts"][0]["hits"]
    assert document["decisions"][0]["decision"] == "confirmed"
    page = (case / "alert.html").read_text()
    assert account in page and "<svg" in page and "http://" not in page and "https://" not in page
    assert verify_case_export(case) == []
    (case / "alert.json").write_text((case / "alert.json").read_text() + " ")
    assert verify_case_export(case) == ["alert.json does not match its sha256"]
    again = run("payments", "case-export", "s", account, "--to", "case")
    assert again.returncode == 2 and "not empty" in again.stderr
