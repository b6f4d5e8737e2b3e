"""Scores per relation and the counting network rules, as SQL over ``rel``.

The typology is a relation: one sender paying one receiver along a corridor, again and again,
small, round, at night, with certain notes. So relation rules are scored per sender -> receiver
relation (the rules of one relation must occur together), and only on relations in scope:
with ``score.relation_scope: corridor`` (the default) a relation from a demand country to a
source country, or one whose countries the export does not give (they cannot be ruled out).
An account's score is its best relation's score plus the weights of the network rules that
fired for it.

Fan-in and fan-out count "red-flagged" relations only: in scope, with at least
``score.network_min_relation_rules`` relation rules. Both are plain SQL (``GROUP BY``, a
``RANGE`` window), as portable as the relation rules; networkx is left the flagged-account
rules on the small graph around flagged accounts (``network``).

Tables made here: ``scope`` (the relations in scope with ``score`` and ``nrules``), ``net``
(account, role, rule, weight, detail, counterparties), ``cand`` (every account and role over
the threshold, with its best relation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hashwatch.payments.config import RELATION_RULES, PaymentsConfig

if TYPE_CHECKING:
    import duckdb

__all__ = ["add_network_hits", "candidates", "count_network", "rule_counts", "score_relations"]

NET_SCHEMA = """
CREATE OR REPLACE TABLE net (
    account VARCHAR, role VARCHAR, rule VARCHAR, weight DOUBLE, detail VARCHAR,
    counterparties VARCHAR
)
"""


def _scope_sql(config: PaymentsConfig) -> str:
    if config.relation_scope == "all":
        return "TRUE"
    return "(f_corridor OR s_country IS NULL OR r_country IS NULL)"


def score_relations(con: duckdb.DuckDBPyConnection, config: PaymentsConfig) -> None:
    """``scope``: the relations in scope, each with its score and how many rules fired."""
    score = " + ".join(
        f"(CASE WHEN f_{r} THEN {config.rule(r).weight} ELSE 0 END)" for r in RELATION_RULES
    )
    nrules = " + ".join(f"(CASE WHEN f_{r} THEN 1 ELSE 0 END)" for r in RELATION_RULES)
    con.execute(f"""
        CREATE OR REPLACE TABLE scope AS
        SELECT *, {score} AS score, {nrules} AS nrules FROM rel WHERE {_scope_sql(config)}
    """)
    con.execute(NET_SCHEMA)


def count_network(con: duckdb.DuckDBPyConnection, config: PaymentsConfig) -> None:
    """Fan-in and fan-out over the red-flagged relations, into ``net``."""
    need = int(config.network_min_relation_rules)
    fan_in = config.rule("fan_in")
    fan_out = config.rule("fan_out")
    window = fan_out.number("window_days") * 86400.0
    receivers = int(fan_out.number("min_receivers"))
    red = f"SELECT sender, receiver, t0, s_country FROM scope WHERE nrules >= {need}"
    con.execute(f"""
        INSERT INTO net
        SELECT receiver, 'receiver', 'fan_in', {fan_in.weight},
               CAST(COUNT(DISTINCT sender) AS VARCHAR) || ' senders from ' ||
               CAST(COUNT(DISTINCT s_country) AS VARCHAR) || ' countries paid this receiver on '
               || 'relations with at least {need} red flags each',
               NULL
        FROM ({red}) GROUP BY receiver
        HAVING COUNT(DISTINCT sender) >= {int(fan_in.number("min_senders"))}
           AND COUNT(DISTINCT s_country) >= {int(fan_in.number("min_countries"))}
    """)
    # For each red-flagged relation, how many of its sender's red-flagged relations began
    # within the window from it; a burst is such a start with enough receivers, and every
    # receiver in scope the sender began paying within a burst's window is one of its
    # receivers (a single payment there may carry fewer red flags).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE bursts AS
        WITH red AS ({red}), w AS (
            SELECT sender, t0, COUNT(*) OVER (
                PARTITION BY sender ORDER BY t0
                RANGE BETWEEN CURRENT ROW AND {window} FOLLOWING) AS k
            FROM red
        )
        SELECT r.sender, r.receiver, MAX(w.k) AS k
        FROM w JOIN scope r ON r.sender = w.sender AND r.t0 >= w.t0 AND r.t0 <= w.t0 + {window}
        WHERE w.k >= {receivers}
        GROUP BY r.sender, r.receiver
    """)
    days = f"{fan_out.number('window_days'):g}"
    con.execute(f"""
        INSERT INTO net
        SELECT sender, 'sender', 'fan_out', {fan_out.weight},
               'began paying ' || CAST(MAX(k) AS VARCHAR) || ' receivers within {days} days '
               || '(relations with at least {need} red flags each)', NULL
        FROM bursts GROUP BY sender
    """)
    con.execute(f"""
        INSERT INTO net
        SELECT receiver, 'receiver', 'fan_out', {fan_out.weight},
               'paid by ' || MIN(sender) || ', who began paying ' || CAST(MAX(k) AS VARCHAR)
               || ' receivers within {days} days', MIN(sender)
        FROM bursts GROUP BY receiver
    """)
    con.execute("DROP TABLE bursts")


def add_network_hits(
    con: duckdb.DuckDBPyConnection, hits: list[tuple[str, str, str, float, str, str]]
) -> None:
    """Network hits found outside SQL (the flagged-account rules) join those in ``net``."""
    if hits:
        con.executemany("INSERT INTO net VALUES (?, ?, ?, ?, ?, ?)", hits)


def candidates(con: duckdb.DuckDBPyConnection, config: PaymentsConfig) -> int:
    """``cand``: every (account, role) whose best relation plus network rules reaches the
    threshold with enough distinct rules, ranked; returns how many."""
    con.execute(f"""
        CREATE OR REPLACE TABLE cand AS
        WITH sides AS (
            SELECT sender AS account, 'sender' AS role, receiver AS other, score, nrules
            FROM scope WHERE nrules > 0
            UNION ALL
            SELECT receiver, 'receiver', sender, score, nrules FROM scope WHERE nrules > 0
        ), ranked AS (
            SELECT *, ROW_NUMBER() OVER (
                PARTITION BY account, role ORDER BY score DESC, nrules DESC, other) AS pos,
                COUNT(*) OVER (PARTITION BY account, role) AS flagged_relations
            FROM sides
        ), best AS (SELECT * FROM ranked WHERE pos = 1),
        netsum AS (
            SELECT account, role, SUM(weight) AS w, COUNT(*) AS k
            FROM (SELECT account, role, rule, MAX(weight) AS weight FROM net
                  GROUP BY account, role, rule)
            GROUP BY account, role
        ), joined AS (
            SELECT COALESCE(b.account, s.account) AS account, COALESCE(b.role, s.role) AS role,
                   b.other, COALESCE(b.flagged_relations, 0) AS flagged_relations,
                   ROUND(COALESCE(b.score, 0) + COALESCE(s.w, 0), 3) AS total,
                   COALESCE(b.nrules, 0) + COALESCE(s.k, 0) AS distinct_rules
            FROM best b FULL OUTER JOIN netsum s ON b.account = s.account AND b.role = s.role
        )
        SELECT *, ROW_NUMBER() OVER (ORDER BY total DESC, account, role) AS rank
        FROM joined
        WHERE total >= {config.threshold} AND distinct_rules >= {config.min_distinct_rules}
    """)
    row = con.execute("SELECT count(*) FROM cand").fetchone()
    return int(row[0]) if row else 0


def rule_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Per rule, how many accounts it fired for: relation rules on relations in scope (either
    side), network rules as found."""
    parts = [
        f"SELECT '{r}', (SELECT count(DISTINCT sender) FROM scope WHERE f_{r}) + "
        f"(SELECT count(DISTINCT receiver) FROM scope WHERE f_{r})"
        for r in RELATION_RULES
    ]
    parts.append("SELECT rule, count(*) FROM net GROUP BY rule")
    rows = con.execute(" UNION ALL ".join(parts)).fetchall()
    return {str(rule): int(n) for rule, n in rows if int(n)}
