"""The relation rules as SQL over the ``tx`` table, one row per sender -> receiver relation.

Each rule is a row condition (does this payment look like the red flag?) and a relation
condition (enough payments, a large enough share). The SQL keeps to what Spark SQL also has:
``CASE``, ``LAG`` windows, ``stddev_samp``, ``IN`` lists, ``LIKE``. Two exceptions, named in
``docs/payments.md``: ``regexp_matches`` (Spark: ``rlike``) for ``@handles``, and the local hour,
which ``ingest`` computes with DuckDB's ``timezone`` (Spark: ``from_utc_timestamp``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hashwatch.payments.config import RELATION_RULES, PaymentsConfig

if TYPE_CHECKING:
    import duckdb

__all__ = ["build_relations", "row_conditions"]


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")" if values else "(NULL)"


def row_conditions(config: PaymentsConfig) -> dict[str, str]:
    """Per rule, the SQL condition one payment of ``tx`` meets (a relation-wide rule: TRUE)."""
    corridor = config.rule("corridor")
    low = config.rule("low_value")
    rnd = config.rule("round_amount")
    night = config.rule("night")
    notes = config.rule("note_keywords")
    channel = config.rule("channel")
    start, end = int(night.number("start_hour")), int(night.number("end_hour"))
    if start > end:
        night_sql = f"(local_hour >= {start} OR local_hour < {end})"
    else:
        night_sql = f"(local_hour >= {start} AND local_hour < {end})"
    keywords = " OR ".join(
        f"LOWER(note) LIKE {_lit('%' + k.lower() + '%')}" for k in notes.strings("keywords")
    )
    handle = f"regexp_matches(note, {_lit(notes.text('handle_pattern'))})"
    multiple = rnd.number("multiple")
    channels = tuple(c.lower() for c in channel.strings("channels"))
    return {
        "corridor": (
            f"(sender_country IN {_in_list(corridor.strings('demand_countries'))} AND "
            f"receiver_country IN {_in_list(corridor.strings('source_countries'))})"
        ),
        "low_value": (
            f"(amount_eur >= {low.number('min_eur')} AND amount_eur <= {low.number('max_eur')})"
        ),
        "round_amount": f"(amount > 0 AND amount = ROUND(amount / {multiple}) * {multiple})",
        "repetition": "TRUE",
        "escalation": "TRUE",
        "night": night_sql,
        "note_keywords": f"(note IS NOT NULL AND (({keywords}) OR {handle}))",
        "channel": f"(channel IN {_in_list(channels)})",
    }


def _fires(config: PaymentsConfig) -> dict[str, str]:
    """Per rule, the SQL condition a relation (columns of ``rel_stats``) meets to fire."""

    def share(rule: str) -> str:
        r = config.rule(rule)
        return f"(n >= {int(r.number('min_payments'))} AND n_{rule} >= {r.number('min_share')} * n)"

    rep = config.rule("repetition")
    esc = config.rule("escalation")
    min_notes = int(config.rule("note_keywords").number("min_payments"))
    return {
        "corridor": "n_corridor >= 1",
        "low_value": share("low_value"),
        "round_amount": share("round_amount"),
        "repetition": (
            f"(n >= {int(rep.number('min_payments'))} AND "
            f"gap_mean <= {rep.number('max_mean_interval_days') * 86400.0} AND "
            f"(gap_mean = 0 OR gap_sd / gap_mean <= {rep.number('max_interval_cv')}))"
        ),
        "escalation": (
            f"(n >= {int(esc.number('min_payments'))} AND c1 > 0 AND c2 > 0 AND "
            f"(a2 >= {esc.number('amount_ratio')} * a1 OR "
            f"c2 >= {esc.number('frequency_ratio')} * c1))"
        ),
        "night": share("night"),
        "note_keywords": f"n_note_keywords >= {min_notes}",
        "channel": share("channel"),
    }


def build_relations(con: duckdb.DuckDBPyConnection, config: PaymentsConfig) -> None:
    """Create ``rel``: per sender -> receiver relation its statistics and one boolean per rule
    (``f_<rule>``)."""
    conds = row_conditions(config)
    counts = ",\n".join(
        f"SUM(CASE WHEN {conds[r]} THEN 1 ELSE 0 END) AS n_{r}"
        for r in RELATION_RULES
        if r not in ("repetition", "escalation")
    )
    con.execute(f"""
        CREATE OR REPLACE TABLE rel_stats AS
        WITH gaps AS (
            SELECT *, epoch_s - LAG(epoch_s) OVER (
                PARTITION BY sender, receiver ORDER BY epoch_s) AS gap
            FROM tx
        )
        SELECT sender, receiver, COUNT(*) AS n, MIN(epoch_s) AS t0, MAX(epoch_s) AS t1,
               MAX(sender_country) AS s_country, MAX(receiver_country) AS r_country,
               SUM(amount_eur) AS eur_total, AVG(amount_eur) AS eur_mean,
               AVG(gap) AS gap_mean, STDDEV_SAMP(gap) AS gap_sd,
               {counts}
        FROM gaps GROUP BY sender, receiver
    """)
    con.execute("""
        CREATE OR REPLACE TABLE rel_halves AS
        SELECT t.sender, t.receiver,
               AVG(CASE WHEN t.epoch_s < (s.t0 + s.t1) / 2 THEN t.amount_eur END) AS a1,
               AVG(CASE WHEN t.epoch_s >= (s.t0 + s.t1) / 2 THEN t.amount_eur END) AS a2,
               SUM(CASE WHEN t.epoch_s < (s.t0 + s.t1) / 2 THEN 1 ELSE 0 END) AS c1,
               SUM(CASE WHEN t.epoch_s >= (s.t0 + s.t1) / 2 THEN 1 ELSE 0 END) AS c2
        FROM tx t JOIN rel_stats s ON t.sender = s.sender AND t.receiver = s.receiver
        WHERE s.n >= 2
        GROUP BY t.sender, t.receiver
    """)
    fires = _fires(config)
    flags = ",\n".join(f"COALESCE({fires[r]}, FALSE) AS f_{r}" for r in RELATION_RULES)
    con.execute(f"""
        CREATE OR REPLACE TABLE rel AS
        SELECT s.*, h.a1, h.a2, COALESCE(h.c1, 0) AS c1, COALESCE(h.c2, 0) AS c2,
               {flags}
        FROM rel_stats s LEFT JOIN rel_halves h
          ON s.sender = h.sender AND s.receiver = h.receiver
    """)
    con.execute("DROP TABLE rel_halves")
    con.execute("DROP TABLE rel_stats")
