"""``hashwatch index ...``: the persisted PDQ index (status, rebuild)."""

from __future__ import annotations

import typer

from hashwatch.cli._common import emit, err, hw

__all__ = ["index_app"]

index_app = typer.Typer(help="The persisted PDQ index.", no_args_is_help=True)


@index_app.command("status")
def index_status(ctx: typer.Context) -> None:
    """Size and freshness of the persisted PDQ index."""
    opened = hw(ctx)
    idx = opened.pdq_index
    emit(
        {
            "path": str(idx.path),
            "hashes": len(idx),
            "watermark": idx.watermark,
            "database_change_seq": opened.db.change_seq(),
        }
    )


@index_app.command("rebuild")
def index_rebuild(ctx: typer.Context) -> None:
    """Rebuild the PDQ index from the database (never needed for correctness)."""
    idx = hw(ctx).pdq_index
    idx.watermark = -1
    idx.refresh()
    err.print(f"rebuilt: {len(idx)} PDQ hashes")
