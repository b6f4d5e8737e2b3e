"""Every payment rule on small hand-made tables where its outcome is obvious (fictitious
accounts, synthetic payments): it fires at its threshold and not just past it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from hashwatch.payments.config import RELATION_RULES, load_config
from hashwatch.payments.ingest import connect, ingest_file
from hashwatch.payments.rules import build_relations
from hashwatch.payments.screen import screen

HEADER = [
    "tx_id",
    "sender",
    "receiver",
    "amount",
    "currency",
    "ts",
    "sender_country",
    "receiver_country",
    "channel",
    "note",
]


def pay(
    n: int, sender: str = "ACC-000001", receiver: str = "ACC-000900", **kw: Any
) -> list[dict[str, str]]:
    """``n`` payments, one a day at 14:00 local, EUR 537.13 by card inside Germany, unless
    overridden; a callable value is called with the payment's index."""
    rows = []
    for i in range(n):
        row = {
            "sender": sender,
            "receiver": receiver,
            "amount": "537.13",
            "currency": "EUR",
            "ts": f"2024-03-{1 + i % 28:02d} 14:00:00",
            "sender_country": "DE",
            "receiver_country": "DE",
            "channel": "card",
            "note": "",
        }
        for key, value in kw.items():
            row[key] = str(value(i) if callable(value) else value)
        rows.append(row)
    return rows


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        for i, row in enumerate(rows):
            writer.writerow({"tx_id": f"T{i}", **row})
    return path


def fired(tmp_path: Path, rows: list[dict[str, str]]) -> set[str]:
    config = load_config()
    con = connect(config.engine, tmp_path, config, {"EUR": 1.0, "AUD": 0.6})
    ingest_file(con, write(tmp_path / "t.csv", rows), 0, config)
    build_relations(con, config)
    flags = ", ".join(f"f_{r}" for r in RELATION_RULES)
    row = con.execute(f"SELECT {flags} FROM rel").fetchone()
    con.close()
    assert row is not None
    return {rule for rule, on in zip(RELATION_RULES, row, strict=True) if on}


def test_ordinary_payments_fire_nothing(tmp_path: Path) -> None:
    assert fired(tmp_path, pay(5)) == set()


@pytest.mark.parametrize(
    ("amount", "fires"), [("10", True), ("200", True), ("9.99", False), ("200.01", False)]
)
def test_low_value_edges(tmp_path: Path, amount: str, fires: bool) -> None:
    assert ("low_value" in fired(tmp_path, pay(2, amount=amount))) is fires


def test_low_value_converts_with_the_rates_table(tmp_path: Path) -> None:
    # AUD 320 is EUR 192 at 0.6: low value; EUR 320 is not.
    assert "low_value" in fired(tmp_path, pay(2, amount=320, currency="AUD"))
    assert "low_value" not in fired(tmp_path, pay(2, amount=320))


def test_round_amounts(tmp_path: Path) -> None:
    assert "round_amount" in fired(tmp_path, pay(3, amount=lambda i: 50 + 10 * i))
    assert "round_amount" not in fired(tmp_path, pay(3, amount=lambda i: 50.5 + i))
    assert "round_amount" not in fired(tmp_path, pay(2, amount=50))  # under min_payments


def test_corridor_with_names_and_codes(tmp_path: Path) -> None:
    assert "corridor" in fired(tmp_path, pay(1, sender_country="Australia", receiver_country="PHL"))
    assert "corridor" not in fired(tmp_path, pay(1, sender_country="AU", receiver_country="DE"))
    assert "corridor" not in fired(tmp_path, pay(1, sender_country="PH", receiver_country="AU"))


def test_night_at_the_senders_local_time(tmp_path: Path) -> None:
    # Naive times are the sender's local time (the country's default zone).
    assert "night" in fired(
        tmp_path, pay(2, sender_country="AU", ts=lambda i: f"2024-03-0{i + 1} 23:30:00")
    )
    assert "night" not in fired(
        tmp_path, pay(2, sender_country="AU", ts=lambda i: f"2024-03-0{i + 1} 21:59:00")
    )
    # 12:30 UTC is 23:30 in Sydney (daylight saving time in March): night for an Australian sender,
    # not for a German one (13:30).
    utc = {"ts": lambda i: f"2024-03-0{i + 1}T12:30:00+00:00"}
    assert "night" in fired(tmp_path, pay(2, sender_country="AU", **utc))
    assert "night" not in fired(tmp_path, pay(2, sender_country="DE", **utc))


def test_repetition_needs_count_and_frequency(tmp_path: Path) -> None:
    assert "repetition" in fired(tmp_path, pay(10))
    assert "repetition" not in fired(tmp_path, pay(9))
    monthly = {"ts": lambda i: f"2024-{1 + i:02d}-05 14:00:00"}
    assert "repetition" not in fired(tmp_path, pay(10, **monthly))


def test_escalation_of_amount_and_frequency(tmp_path: Path) -> None:
    assert "escalation" in fired(tmp_path, pay(6, amount=lambda i: 20 if i < 3 else 40))
    assert "escalation" not in fired(tmp_path, pay(6, amount=lambda i: 20 if i < 3 else 29))
    faster = ["01", "08", "15", "16", "17", "18", "19", "20", "21", "22"]
    assert "escalation" in fired(tmp_path, pay(10, ts=lambda i: f"2024-03-{faster[i]} 14:00:00"))


def test_note_keywords_and_handles(tmp_path: Path) -> None:
    assert "note_keywords" in fired(tmp_path, pay(1, note="For SCHOOL fees"))
    assert "note_keywords" in fired(tmp_path, pay(1, note="thanks @maria_22"))
    assert "note_keywords" not in fired(tmp_path, pay(1, note="rent march"))


def test_channel(tmp_path: Path) -> None:
    assert "channel" in fired(tmp_path, pay(1, channel="Remittance"))
    assert "channel" not in fired(tmp_path, pay(1, channel="card"))


LOW_THRESHOLD = {"score": {"threshold": 3.0}}


def _corridor_sender(i: int, receiver: str, country: str = "AU") -> list[dict[str, str]]:
    return pay(
        1,
        sender=f"ACC-0001{i:02d}",
        receiver=receiver,
        sender_country=country,
        receiver_country="PH",
    )


def test_fan_in_and_no_single_rule_alert(tmp_path: Path) -> None:
    five = [r for i in range(5) for r in _corridor_sender(i, "ACC-000900", ("AU", "GB")[i % 2])]
    result = screen(
        [write(tmp_path / "a.csv", five)], load_config(overrides=LOW_THRESHOLD), tmp_path / "a"
    )
    alerted = {(a.account, a.role): a for a in result.alerts}
    assert set(alerted) == {("ACC-000900", "receiver")}
    assert alerted[("ACC-000900", "receiver")].rule_names == ("corridor", "fan_in")
    four = five[:4]
    assert not screen(
        [write(tmp_path / "b.csv", four)], load_config(overrides=LOW_THRESHOLD), tmp_path / "b"
    ).alerts
    # One rule alone never alerts, whatever its weight.
    heavy = load_config(overrides={"rules": {"corridor": {"weight": 50}}})
    assert not screen([write(tmp_path / "c.csv", four)], heavy, tmp_path / "c").alerts


def test_fan_out_within_the_window(tmp_path: Path) -> None:
    rows = [
        r
        for i in range(3)
        for r in pay(
            1,
            receiver=f"ACC-00090{i}",
            sender_country="AU",
            receiver_country="PH",
            ts=f"2024-03-{1 + 7 * i:02d} 14:00:00",
        )
    ]
    result = screen(
        [write(tmp_path / "a.csv", rows)], load_config(overrides=LOW_THRESHOLD), tmp_path / "a"
    )
    assert [(a.account, a.rule_names) for a in result.alerts] == [
        ("ACC-000001", ("corridor", "fan_out"))
    ]
    rows[2]["ts"] = "2024-03-16 14:00:01"  # 15 days after the first: outside the 14-day window
    result = screen(
        [write(tmp_path / "b.csv", rows)], load_config(overrides=LOW_THRESHOLD), tmp_path / "b"
    )
    assert not result.alerts


def test_known_flagged_accounts_raise_connected_accounts(tmp_path: Path) -> None:
    rows = pay(2, receiver="ACC-000777", sender_country="AU", receiver_country="PH")
    rows += pay(
        2, sender="ACC-000002", receiver="ACC-000888", sender_country="AU", receiver_country="PH"
    )
    rows += pay(2, sender="ACC-000002", receiver="ACC-000777", amount=500)
    path = write(tmp_path / "a.csv", rows)
    assert not screen([path], load_config(), tmp_path / "a").alerts
    result = screen([path], load_config(), tmp_path / "b", known_flagged=frozenset({"ACC-000777"}))
    alerted = {(a.account, a.role): a.rule_names for a in result.alerts}
    assert alerted[("ACC-000001", "sender")] == ("corridor", "flagged_link")
    assert alerted[("ACC-000002", "sender")] == ("corridor", "flagged_link")
    # ACC-000888 shares one sender with the flagged receiver; two are needed for a link, but it
    # sits in the flagged receiver's community: not enough weight with one other rule.
    assert ("ACC-000888", "receiver") not in alerted
