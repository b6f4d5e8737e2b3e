"""From fired rules to alerts: per account its best relation, the network rules, the words.

Relation rules are scored per sender -> receiver relation on the relations in scope
(``scoring``): an account's score is its best relation's score (both sides of a relation carry
it, the sender as ``sender``, the receiver as ``receiver``) plus the weights of the network
rules that fired for it, each rule once. An account is alerted when at least
``min_distinct_rules`` distinct rules fired and the score reaches ``threshold``, so no single
rule alerts alone; a link to a known-flagged account is a rule of its own with a high weight,
so it raises the accounts connected to a flagged one without alerting on its own either.

The ranking and the scores are SQL; Python reads back only the alerted accounts, a chunk at a
time (their best relation, their network hits, their payments), and hands each alert on as it
is built, so the outputs are written as a stream whatever the number of alerts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hashwatch.payments.config import RELATION_RULES, PaymentsConfig
from hashwatch.payments.model import Alert, Role, RuleHit
from hashwatch.payments.network import Relation, network_hits
from hashwatch.payments.rules import row_conditions
from hashwatch.payments.scoring import (
    add_network_hits,
    candidates,
    count_network,
    rule_counts,
    score_relations,
)

if TYPE_CHECKING:
    import duckdb

__all__ = ["Payment", "Scored", "iter_alerts", "prepare"]

CHUNK = 2000


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


@dataclass(frozen=True, slots=True)
class Scored:
    """What the scoring found before the alerts are read back: how many accounts alert, how
    many accounts each rule fired for, how many relations are in scope and in the reduced
    graph (handed to networkx; 0 without flagged accounts)."""

    alerts: int
    rule_counts: dict[str, int] = field(default_factory=dict)
    scope_relations: int = 0
    reduced_relations: int = 0


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


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _reduced(
    con: duckdb.DuckDBPyConnection, config: PaymentsConfig, flagged: frozenset[str]
) -> list[Relation]:
    """The red-flagged relations in scope and the flagged accounts' neighbourhood."""
    con.execute("CREATE OR REPLACE TEMP TABLE flagged (account VARCHAR)")
    con.executemany("INSERT INTO flagged VALUES (?)", [(a,) for a in sorted(flagged)])
    need = int(config.network_min_relation_rules)
    rows = con.execute(f"""
        SELECT sender, receiver FROM scope WHERE nrules >= {need}
        UNION
        SELECT sender, receiver FROM rel
        WHERE sender IN (SELECT account FROM flagged)
           OR receiver IN (SELECT account FROM flagged)
           OR sender IN (SELECT sender FROM rel WHERE receiver IN (SELECT account FROM flagged))
        ORDER BY 1, 2
    """).fetchall()
    return [Relation(str(a), str(b)) for a, b in rows]


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


def prepare(
    con: duckdb.DuckDBPyConnection, config: PaymentsConfig, flagged: frozenset[str]
) -> Scored:
    """Score the relations, count the network rules, run the flagged-account rules on the
    reduced graph and rank the accounts over the threshold (table ``cand``)."""
    score_relations(con, config)
    count_network(con, config)
    reduced = 0
    if flagged:
        relations = _reduced(con, config, flagged)
        reduced = len(relations)
        found = network_hits(relations, flagged, _shared_identifiers(con), config)
        del relations
        add_network_hits(
            con,
            [
                (
                    h.account,
                    h.role,
                    h.rule,
                    config.rule(h.rule).weight,
                    h.detail,
                    ", ".join(h.counterparties[:5]) + (" ..." if len(h.counterparties) > 5 else ""),
                )
                for h in found
            ],
        )
    count = candidates(con, config)
    return Scored(count, rule_counts(con), _scalar(con, "SELECT count(*) FROM scope"), reduced)


def iter_alerts(
    con: duckdb.DuckDBPyConnection, config: PaymentsConfig, flagged: frozenset[str]
) -> Iterator[tuple[Alert, list[Payment]]]:
    """The alerts, highest score first, each with its payments (for the timeline), read back
    ``CHUNK`` accounts at a time (after :func:`prepare`)."""
    total = _scalar(con, "SELECT count(*) FROM cand")
    _alerted_payments(con, config)
    for lo in range(1, total + 1, CHUNK):
        hi = lo + CHUNK - 1
        where = f"c.rank BETWEEN {lo} AND {hi}"
        cursor = con.execute(f"""
            SELECT c.rank, c.flagged_relations, s.* FROM cand c JOIN scope s
              ON c.role = 'sender' AND s.sender = c.account AND s.receiver = c.other
            WHERE {where}
            UNION ALL
            SELECT c.rank, c.flagged_relations, s.* FROM cand c JOIN scope s
              ON c.role = 'receiver' AND s.receiver = c.account AND s.sender = c.other
            WHERE {where}
        """)
        names = [d[0] for d in cursor.description]
        best = {int(r[0]): dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
        net: dict[int, list[RuleHit]] = defaultdict(list)
        for rank, rule, weight, detail, cps in con.execute(f"""
            SELECT c.rank, n.rule, MAX(n.weight), MIN(n.detail), MIN(n.counterparties)
            FROM cand c JOIN net n ON n.account = c.account AND n.role = c.role
            WHERE {where} GROUP BY c.rank, n.rule ORDER BY c.rank, n.rule
        """).fetchall():
            net[int(rank)].append(RuleHit(str(rule), float(weight), str(detail), (), cps))
        payments = _payments(con, lo, hi)
        for rank, account, role_text, total_score in con.execute(f"""
            SELECT c.rank, c.account, c.role, c.total FROM cand c WHERE {where} ORDER BY c.rank
        """).fetchall():
            role: Role = "sender" if role_text == "sender" else "receiver"
            yield _alert(
                config,
                flagged,
                str(account),
                role,
                float(total_score),
                best.get(int(rank)),
                net.get(int(rank), []),
                payments.get(int(rank), []),
            )


def _alert(
    config: PaymentsConfig,
    flagged: frozenset[str],
    account: str,
    role: Role,
    score: float,
    best: dict[str, Any] | None,
    net: list[RuleHit],
    mine: list[tuple[Payment, frozenset[str]]],
) -> tuple[Alert, list[Payment]]:
    side = "receiver" if role == "sender" else "sender"
    found: list[RuleHit] = []
    other = None
    if best is not None:
        other = str(best[side])
        for rule in RELATION_RULES:
            if best[f"f_{rule}"]:
                hit = RuleHit(rule, config.rule(rule).weight, _words(rule, best, config), (), other)
                found.append(_with_ids(hit, role, mine, config))
    found += net
    tx_ids = tuple(sorted({t for hit in found for t in hit.tx_ids}))
    counterparties = tuple(sorted({getattr(p, side) for p, _ in mine}))
    explanation = _explain(account, role, score, found, other, best, flagged)
    alert = Alert(account, role, score, tuple(found), tx_ids, counterparties, explanation)
    return alert, [p for p, _ in mine]


def _alerted_payments(con: duckdb.DuckDBPyConnection, config: PaymentsConfig) -> None:
    """``alerted_tx``: every payment of the ranked accounts in their role, with its rank and
    the relation rules it meets: one pass over ``tx`` for all chunks."""
    conds = row_conditions(config)
    flags = ", ".join(f"COALESCE({conds[r]}, FALSE) AS m_{r}" for r in RELATION_RULES)
    columns = (
        "c.rank, t.tx_id, t.sender, t.receiver, t.epoch_s, t.amount, t.currency, "
        f"t.amount_eur, {flags}"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE alerted_tx AS
        SELECT {columns} FROM cand c JOIN tx t ON t.sender = c.account WHERE c.role = 'sender'
        UNION ALL
        SELECT {columns} FROM cand c JOIN tx t ON t.receiver = c.account
        WHERE c.role = 'receiver'
    """)


def _payments(
    con: duckdb.DuckDBPyConnection, lo: int, hi: int
) -> dict[int, list[tuple[Payment, frozenset[str]]]]:
    """The payments of the accounts ranked ``lo`` to ``hi`` (by rank), each with the relation
    rules it meets."""
    met_columns = ", ".join(f"m_{r}" for r in RELATION_RULES)
    rows = con.execute(f"""
        SELECT rank, tx_id, sender, receiver, epoch_s, amount, currency, amount_eur,
               {met_columns}
        FROM alerted_tx WHERE rank BETWEEN {lo} AND {hi} ORDER BY rank, epoch_s, tx_id
    """).fetchall()
    out: dict[int, list[tuple[Payment, frozenset[str]]]] = defaultdict(list)
    for row in rows:
        payment = Payment(
            row[1], row[2], row[3], float(row[4]), float(row[5]), row[6], float(row[7])
        )
        met = frozenset(r for r, ok in zip(RELATION_RULES, row[8:], strict=True) if ok)
        out[int(row[0])].append((payment, met))
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
    account: str,
    role: Role,
    score: float,
    found: list[RuleHit],
    other: str | None,
    best: dict[str, Any] | None,
    flagged: frozenset[str],
) -> str:
    relation = [h for h in found if h.rule in RELATION_RULES]
    network = [h for h in found if h.rule not in RELATION_RULES]
    parts = []
    if relation and other is not None:
        said = "; ".join(f"{h.rule}: {h.detail}" for h in relation)
        parts.append(f"On its relation with {other}: {said}.")
        more = int(best["flagged_relations"]) - 1 if best is not None else 0
        if more > 0:
            parts.append(f"{more} more of its relations in scope have red flags.")
    for hit in network:
        named = hit.counterparty and hit.counterparty not in hit.detail
        where = f" ({hit.counterparty})" if named else ""
        parts.append(f"{hit.rule}: {hit.detail}{where}.")
    known = " It is on the known-flagged list." if account in flagged else ""
    names = {h.rule for h in found}
    return (
        f"{account} as {role} scored {score:g} from {len(names)} rules. " + " ".join(parts) + known
    )
