"""``hashwatch payments synth``: a synthetic payment export with the published typologies
planted at known rates, labels apart (``docs/payments.md``, Synthetic data). Thin: parse, call
:func:`hashwatch.payments.synth.generate`, print what was written."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hashwatch.cli._common import emit, progress

__all__ = ["synth"]


def synth(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    accounts: Annotated[int, typer.Option("--accounts", help="Fictitious accounts.")] = 10_000,
    transactions: Annotated[
        int, typer.Option("--transactions", help="Payments in all, planted ones included.")
    ] = 200_000,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same bytes.")] = 0,
    schema: Annotated[
        str,
        typer.Option(
            "--schema",
            help="Columns: native (hashwatch's names), amlsim or saml-d (those data sets' "
            "shapes, read with 'payments screen --schema').",
        ),
    ] = "native",
    days: Annotated[int, typer.Option("--days", help="Days of traffic from 2024-01-01.")] = 180,
    scale_planted: Annotated[
        float,
        typer.Option(
            "--planted-scale",
            help="Multiply every planted typology's rate (1: the documented defaults).",
        ),
    ] = 1.0,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB's memory before it spills to disk.")
    ] = "1GB",
) -> None:
    """Write transactions, labels.csv (account, typology, role), rates.csv and synth.json into
    --out. All accounts are fictitious; labels never enter the native transactions."""
    from dataclasses import fields

    from hashwatch.payments.synth import PlantRates, SynthSpec, generate

    base = PlantRates()
    rates = PlantRates(
        **{f.name: getattr(base, f.name) * scale_planted for f in fields(PlantRates)}
    )
    spec = SynthSpec(
        accounts=accounts,
        transactions=transactions,
        seed=seed,
        days=days,
        schema=schema,
        format=fmt,
        rates=rates,
        memory_limit=memory_limit,
    )
    with progress("generating") as bar:
        task = bar.add_task("generating", total=transactions, rate="rows") if bar else None

        def step(done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=total)

        result = generate(spec, out, step)
    emit(result.to_json())
