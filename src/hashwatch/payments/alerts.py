"""From fired rules to alerts: per account a weighted score, the words, the payments.

A relation rule that fired counts for both sides of the relation (the sender as ``sender``, the
receiver as ``receiver``); a network rule counts for the account it names. Each distinct rule
adds its weight once. An account is alerted when at least ``min_distinct_rules`` distinct rules
fired and the score reaches ``threshold``, so no single rule alerts alone; a link to a
known-flagged account is a rule of its own with a high weight, so it raises the accounts
connected to a flagged one without alerting on its own either.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hashwatch.payments.config import RELATION_RULES, PaymentsConfig
from hashwatch.payments.model import Alert, Role, RuleHit
from hashwatch.payments.network import NetworkHit, Relation, network_hits
from hashwatch.payments.rules import row_conditions

if TYPE_CHECKING:
    import duckdb

__all__ = ["Payment", "build_alerts"]

_STATS = "n, t0, t1, s_country, r_country, eur_total, gap_mean, gap_sd, a1, a2, c1, c2"


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment of an alerted account, for the report's timeline."""

    tx_id: str
    sender: str
    receiver: str
    epoch_s: float
    amount: float
    currency: str
    amount_eur: float


def _words(rule: str, s: dict[str, Any], config: PaymentsConfig) -> str:
    n = int(s["n"])
    r = config.rule(rule)
    if rule == "corridor":
        return f"sender in {s['s_country']}, receiver in {s['r_country']} (a named corridor)"
    if rule == "low_value":
        return (
            f"{s['n_low_value']} of {n} payments between EUR {r.number('min_eur'):g} "
            f"and {r.number('max_eur'):g}"
        )
    if rule == "round_amount":
        return f"{s['n_round_amount']} of {n} payments in multiples of {r.number('multiple'):g}"
    if rule == "repetition":
        mean = float(s["gap_mean"] or 0.0)
        cv = float(s["gap_sd"] or 0.0) / mean if mean else 0.0
        return f"{n} payments, one every {mean / 3600:.1f} hours on average (variation {cv:.2f})"
    if rule == "escalation":
        return (
            f"average EUR {float(s['a1'] or 0):.0f} -> {float(s['a2'] or 0):.0f} and "
            f"{s['c1']} -> {s['c2']} payments from the first to the second half of the period"
        )
    if rule == "night":
        return (
            f"{s['n_night']} of {n} payments between {r.number('start_hour'):g}:00 and "
            f"{r.number('end_hour'):g}:00 at the sender's local time"
        )
    if rule == "note_keywords":
        return f"{s['n_note_keywords']} payment notes with a listed phrase or an @handle"
    return f"{s['n_channel']} of {n} payments by {', '.join(r.strings('channels'))}"


def _reduced(
    con: duckdb.DuckDBPyConnection, flagged: frozenset[str]
) -> tuple[list[Relation], dict[tuple[str, str], dict[str, Any]]]:
    con.execute("CREATE OR REPLACE TEMP TABLE flagged (account VARCHAR)")
    if flagged:
        con.executemany("INSERT INTO flagged VALUES (?)", [(a,) for a in sorted(flagged)])
    any_rule = " OR ".join(f"f_{r}" for r in RELATION_RULES)
    counts = ", ".join(f"n_{r}" for r in RELATION_RULES if r not in ("repetition", "escalation"))
    flags = ", ".join(f"f_{r}" for r in RELATION_RULES)
    cursor = con.execute(f"""
        SELECT sender, receiver, {_STATS}, {counts}, {flags} FROM rel
        WHERE {any_rule} OR sender IN (SELECT account FROM flagged)
           OR receiver IN (SELECT account FROM flagged)
        ORDER BY sender, receiver
    """)
    names = [d[0] for d in cursor.description]
    relations: list[Relation] = []
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    for row in cursor.fetchall():
        s = dict(zip(names, row, strict=True))
        rules = frozenset(r for r in RELATION_RULES if s[f"f_{r}"])
        relations.append(
            Relation(
                s["sender"],
                s["receiver"],
                int(s["n"]),
                float(s["t0"]),
                float(s["t1"]),
                s["s_country"],
                s["r_country"],
                float(s["eur_total"] or 0.0),
                rules,
            )
        )
        stats[(s["sender"], s["receiver"])] = s
    return relations, stats


def _shared_identifiers(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    parts = []
    for column, side, kind in (
        ("sender_device", "sender", "device"),
        ("sender_ip", "sender", "IP address"),
        ("receiver_account_ref", "receiver", "receiving account reference"),
    ):
        parts.append(f"""
            SELECT DISTINCT t.{side}, f.{side}, '{kind}' FROM tx t JOIN (
                SELECT DISTINCT {side}, {column} FROM tx
                WHERE {column} IS NOT NULL AND {side} IN (SELECT account FROM flagged)
            ) f ON t.{column} = f.{column} AND t.{side} <> f.{side}
        """)
    rows = con.execute(" UNION ".join(parts) + " ORDER BY 1, 2, 3").fetchall()
    return [(str(a), str(b), str(k)) for a, b, k in rows]


def build_alerts(
    con: duckdb.DuckDBPyConnection, config: PaymentsConfig, flagged: frozenset[str]
) -> tuple[list[Alert], dict[str, list[Payment]], list[Relation], dict[str, int]]:
    """The alerts (highest score first), each alert's payments, the reduced graph, and how
    many accounts each rule fired for."""
    relations, stats = _reduced(con, flagged)
    shared = _shared_identifiers(con) if flagged else []
    hits: dict[tuple[str, Role], list[RuleHit]] = defaultdict(list)
    for rel in relations:
        s = stats[(rel.sender, rel.receiver)]
        for rule in sorted(rel.rules):
            weight = config.rule(rule).weight
            words = _words(rule, s, config)
            hits[(rel.sender, "sender")].append(RuleHit(rule, weight, words, (), rel.receiver))
            hits[(rel.receiver, "receiver")].append(RuleHit(rule, weight, words, (), rel.sender))
    net: list[NetworkHit] = network_hits(relations, flagged, shared, config)
    for h in net:
        weight = config.rule(h.rule).weight
        cps = ", ".join(h.counterparties[:5]) + (" ..." if len(h.counterparties) > 5 else "")
        hits[(h.account, h.role)].append(RuleHit(h.rule, weight, h.detail, (), cps or None))
    rule_counts: dict[str, int] = defaultdict(int)
    chosen: list[tuple[str, Role, float, list[RuleHit]]] = []
    for (account, role), found in hits.items():
        distinct = {hit.rule: hit.weight for hit in found}
        for rule in distinct:
            rule_counts[rule] += 1
        score = round(sum(distinct.values()), 3)
        if len(distinct) >= config.min_distinct_rules and score >= config.threshold:
            chosen.append((account, role, score, found))
    chosen.sort(key=lambda c: (-c[2], c[0], c[1]))
    payments = _payments(con, config, [(a, r) for a, r, _, _ in chosen])
    alerts: list[Alert] = []
    timelines: dict[str, list[Payment]] = {}
    for account, role, score, found in chosen:
        mine = payments.get((account, role), [])
        hits_with_ids = tuple(_with_ids(hit, role, mine, config) for hit in found)
        tx_ids = tuple(sorted({t for hit in hits_with_ids for t in hit.tx_ids}))
        side = "receiver" if role == "sender" else "sender"
        counterparties = tuple(sorted({getattr(p[0], side) for p in mine}))
        alerts.append(
            Alert(
                account,
                role,
                score,
                hits_with_ids,
                tx_ids,
                counterparties,
                _explain(account, role, score, found, flagged),
            )
        )
        timelines[f"{account}|{role}"] = [p[0] for p in mine]
    return alerts, timelines, relations, dict(rule_counts)


def _payments(
    con: duckdb.DuckDBPyConnection, config: PaymentsConfig, accounts: list[tuple[str, Role]]
) -> dict[tuple[str, Role], list[tuple[Payment, frozenset[str]]]]:
    """Each alerted account's payments with the relation rules each payment meets."""
    con.execute("CREATE OR REPLACE TEMP TABLE alerted (account VARCHAR, role VARCHAR)")
    if not accounts:
        return {}
    con.executemany("INSERT INTO alerted VALUES (?, ?)", accounts)
    conds = row_conditions(config)
    flags = ", ".join(f"COALESCE({conds[r]}, FALSE)" for r in RELATION_RULES)
    rows = con.execute(f"""
        SELECT a.account, a.role, t.tx_id, t.sender, t.receiver, t.epoch_s, t.amount,
               t.currency, t.amount_eur, {flags}
        FROM alerted a JOIN tx t ON (a.role = 'sender' AND t.sender = a.account)
                                 OR (a.role = 'receiver' AND t.receiver = a.account)
        ORDER BY a.account, a.role, t.epoch_s, t.tx_id
    """).fetchall()
    out: dict[tuple[str, Role], list[tuple[Payment, frozenset[str]]]] = defaultdict(list)
    for row in rows:
        role: Role = "sender" if row[1] == "sender" else "receiver"
        payment = Payment(
            row[2], row[3], row[4], float(row[5]), float(row[6]), row[7], float(row[8])
        )
        met = frozenset(r for r, ok in zip(RELATION_RULES, row[9:], strict=True) if ok)
        out[(str(row[0]), role)].append((payment, met))
    return out


def _with_ids(
    hit: RuleHit, role: Role, mine: list[tuple[Payment, frozenset[str]]], config: PaymentsConfig
) -> RuleHit:
    if hit.rule not in RELATION_RULES or hit.counterparty is None:
        return hit
    side = "receiver" if role == "sender" else "sender"
    ids = [p.tx_id for p, met in mine if getattr(p, side) == hit.counterparty and hit.rule in met]
    return RuleHit(
        hit.rule, hit.weight, hit.detail, tuple(ids[: config.max_tx_ids_per_hit]), hit.counterparty
    )


def _explain(
    account: str, role: Role, score: float, found: list[RuleHit], flagged: frozenset[str]
) -> str:
    by_rule: dict[str, list[RuleHit]] = defaultdict(list)
    for hit in found:
        by_rule[hit.rule].append(hit)
    parts = []
    for rule in sorted(by_rule):
        first = by_rule[rule][0]
        where = f" (with {first.counterparty})" if first.counterparty else ""
        more = f"; and on {len(by_rule[rule]) - 1} more relations" if len(by_rule[rule]) > 1 else ""
        parts.append(f"{rule}: {first.detail}{where}{more}")
    known = " It is on the known-flagged list." if account in flagged else ""
    return (
        f"{account} as {role} scored {score:g} from {len(by_rule)} rules. "
        + ". ".join(parts)
        + "."
        + known
    )
