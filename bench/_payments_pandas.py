"""The payment rules written naively in pandas: the reference beside the DuckDB screening.

Honest and simple, the way an analyst would write it in a notebook: read the whole CSV, one
boolean column per row condition, one ``groupby`` per relation, the halves for escalation, each
relation's score as the weights of its rules, relations in scope (the corridor, or countries
unknown), an account's score its best relation's plus fan-in and fan-out counted over the
red-flagged relations (a Python loop per sender for fan-out's window). Thresholds and weights
come from the same config (``load_config()``), so both count alerts the same way;
flagged-account rules are left out (the benchmark screens with no known-flagged list). It
reads the native shape only, where the timestamp carries the sender's UTC offset, so the local
hour is the hour written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from hashwatch.payments.config import RELATION_RULES, PaymentsConfig

__all__ = ["screen_pandas"]


def _row_flags(df: pd.DataFrame, config: PaymentsConfig) -> None:
    corridor = config.rule("corridor")
    low = config.rule("low_value")
    night = config.rule("night")
    notes = config.rule("note_keywords")
    channel = config.rule("channel")
    multiple = config.rule("round_amount").number("multiple")
    df["f_corridor"] = df["sender_country"].isin(corridor.strings("demand_countries")) & df[
        "receiver_country"
    ].isin(corridor.strings("source_countries"))
    df["f_low_value"] = df["amount_eur"].between(low.number("min_eur"), low.number("max_eur"))
    df["f_round_amount"] = (df["amount"] > 0) & (
        df["amount"] == (df["amount"] / multiple).round() * multiple
    )
    start, end = int(night.number("start_hour")), int(night.number("end_hour"))
    hour = df["local_hour"]
    df["f_night"] = (hour >= start) | (hour < end) if start > end else hour.between(start, end - 1)
    note = df["note"].fillna("").str.lower()
    pattern = "|".join(re.escape(k.lower()) for k in notes.strings("keywords"))
    df["f_note_keywords"] = note.str.contains(pattern, regex=True) | df["note"].fillna(
        ""
    ).str.contains(notes.text("handle_pattern"), regex=True)
    df["f_channel"] = (
        df["channel"].fillna("").str.lower().isin([c.lower() for c in channel.strings("channels")])
    )


def _relations(df: pd.DataFrame, config: PaymentsConfig) -> pd.DataFrame:
    df.sort_values(["sender", "receiver", "epoch_s"], inplace=True)
    df["gap"] = df.groupby(["sender", "receiver"])["epoch_s"].diff()
    shares = ["corridor", "low_value", "round_amount", "night", "note_keywords", "channel"]
    rel = df.groupby(["sender", "receiver"]).agg(
        n=("epoch_s", "size"),
        t0=("epoch_s", "min"),
        t1=("epoch_s", "max"),
        s_country=("sender_country", "max"),
        r_country=("receiver_country", "max"),
        gap_mean=("gap", "mean"),
        gap_sd=("gap", "std"),
        **{f"n_{r}": (f"f_{r}", "sum") for r in shares},
    )
    mid = ((rel["t0"] + rel["t1"]) / 2).rename("mid")
    df = df.join(mid, on=["sender", "receiver"])
    first = df["epoch_s"] < df["mid"]
    df["a1"] = df["amount_eur"].where(first)
    df["a2"] = df["amount_eur"].where(~first)
    halves = df.groupby(["sender", "receiver"]).agg(
        a1=("a1", "mean"), a2=("a2", "mean"), c1=("a1", "count"), c2=("a2", "count")
    )
    rel = rel.join(halves)
    n = rel["n"]

    def share(rule: str) -> pd.Series:
        r = config.rule(rule)
        return (n >= r.number("min_payments")) & (rel[f"n_{rule}"] >= r.number("min_share") * n)

    rep = config.rule("repetition")
    esc = config.rule("escalation")
    cv = (rel["gap_sd"] / rel["gap_mean"]).where(rel["gap_mean"] > 0, 0.0)
    rel["corridor"] = rel["n_corridor"] >= 1
    for rule in ("low_value", "round_amount", "night", "channel"):
        rel[rule] = share(rule)
    rel["note_keywords"] = rel["n_note_keywords"] >= config.rule("note_keywords").number(
        "min_payments"
    )
    rel["repetition"] = (
        (n >= rep.number("min_payments"))
        & (rel["gap_mean"] <= rep.number("max_mean_interval_days") * 86400.0)
        & (cv <= rep.number("max_interval_cv"))
    )
    rel["escalation"] = (
        (n >= esc.number("min_payments"))
        & (rel["c1"] > 0)
        & (rel["c2"] > 0)
        & (
            (rel["a2"] >= esc.number("amount_ratio") * rel["a1"])
            | (rel["c2"] >= esc.number("frequency_ratio") * rel["c1"])
        )
    )
    return rel.reset_index()


def _fan_out(red: pd.DataFrame, scope: pd.DataFrame, config: PaymentsConfig) -> set[str]:
    """``sender|sender`` of each sender beginning enough red-flagged relations within the
    window, and ``receiver|receiver`` of each receiver in scope it began paying in such a
    window."""
    rule = config.rule("fan_out")
    window = rule.number("window_days") * 86400.0
    need = int(rule.number("min_receivers"))
    out = set()
    starts_of: dict[str, np.ndarray] = {}
    for sender, group in red.groupby("sender"):
        if len(group) < need:
            continue
        t = np.sort(group["t0"].to_numpy())
        ends = np.searchsorted(t, t + window, side="right")
        starts = t[ends - np.arange(len(t)) >= need]
        if len(starts):
            out.add(f"{sender}|sender")
            starts_of[str(sender)] = starts
    mine = scope[scope["sender"].isin(list(starts_of))]
    for sender, receiver, t0 in zip(mine["sender"], mine["receiver"], mine["t0"], strict=True):
        starts = starts_of[str(sender)]
        if ((starts <= t0) & (t0 <= starts + window)).any():
            out.add(f"{receiver}|receiver")
    return out


def screen_pandas(path: Path, config: PaymentsConfig, rates: dict[str, float]) -> dict[str, Any]:
    """Alerts (accounts) of the naive pandas screening of one native-shape CSV."""
    df = pd.read_csv(
        path,
        usecols=[
            "ts",
            "sender",
            "receiver",
            "amount",
            "currency",
            "sender_country",
            "receiver_country",
            "channel",
            "note",
        ],
        keep_default_na=False,
        na_values=[""],
    )
    rows = len(df)
    # Seconds since the epoch whatever the resolution pandas parses to (ns or us).
    utc = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
    df["epoch_s"] = (utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    df["local_hour"] = df["ts"].str.slice(11, 13).astype(int)
    df["amount_eur"] = df["amount"] * df["currency"].map(rates).fillna(1.0)
    _row_flags(df, config)
    rel = _relations(df, config)
    del df
    weights = {name: config.rule(name).weight for name in config.rules}
    rel["score"] = sum(rel[r].astype(float) * weights[r] for r in RELATION_RULES)
    rel["nrules"] = sum(rel[r].astype(int) for r in RELATION_RULES)
    if config.relation_scope == "corridor":
        rel = rel[rel["corridor"] | rel["s_country"].isna() | rel["r_country"].isna()]
    fired = rel[rel["nrules"] > 0]
    # Each account's best relation (score, rules) per role, then the network rules on top.
    best: dict[str, tuple[float, int]] = {}
    for side in ("sender", "receiver"):
        top = fired.sort_values(["score", "nrules"], ascending=False).drop_duplicates(side)
        for account, score, nrules in zip(top[side], top["score"], top["nrules"], strict=True):
            best[f"{account}|{side}"] = (float(score), int(nrules))
    red = rel[rel["nrules"] >= config.network_min_relation_rules]
    network: dict[str, set[str]] = {}
    fan_in = config.rule("fan_in")
    per_receiver = red.groupby("receiver").agg(
        senders=("sender", "nunique"), countries=("s_country", "nunique")
    )
    many = per_receiver[
        (per_receiver["senders"] >= fan_in.number("min_senders"))
        & (per_receiver["countries"] >= fan_in.number("min_countries"))
    ]
    for account in many.index:
        network.setdefault(f"{account}|receiver", set()).add("fan_in")
    for key in _fan_out(red, rel, config):
        network.setdefault(key, set()).add("fan_out")
    alerts = set()
    for key in set(best) | set(network):
        score, nrules = best.get(key, (0.0, 0))
        extra = network.get(key, set())
        total = score + sum(weights[r] for r in extra)
        if nrules + len(extra) >= config.min_distinct_rules and total >= config.threshold:
            alerts.add(key)
    return {"rows": rows, "relations_in_scope": len(rel), "alerts": len(alerts)}
