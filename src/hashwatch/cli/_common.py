"""What every ``hashwatch`` command module shares: the ``--db`` option, the library object,
JSON Lines output, progress on stderr and the translation of errors into exit codes.

Imported by every module of :mod:`hashwatch.cli`; it imports none of them. It keeps start-up
fast: nothing here imports numpy, SQLAlchemy, FastAPI or PyAV — :class:`hashwatch.app.Hashwatch`
is imported when a command first asks for it, so ``hashwatch --help`` and ``hashwatch version``
stay well under half a second.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from hashwatch.errors import ConfigError, HashwatchError

if TYPE_CHECKING:
    from rich.progress import Progress

    from hashwatch.app import Hashwatch

__all__ = [
    "SAMPLINGS",
    "DbOption",
    "PathsArg",
    "PolicyOpt",
    "SamplingOpt",
    "WorkersOpt",
    "check_sampling",
    "emit",
    "err",
    "hw",
    "progress",
    "run_app",
]

# Messages on stderr are single lines whatever the terminal's width (logs and tests read them
# whole); progress bars still fit the terminal.
err = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: HASHWATCH_DATABASE_URL or a SQLite file).",
        show_default=False,
    ),
]
PathsArg = Annotated[
    list[Path], typer.Argument(help="Files or directories (walked, links not followed).")
]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", help="Parallel worker processes.")]
PolicyOpt = Annotated[
    str | None,
    typer.Option(
        "--pdq-policy",
        help="'fast' (reduced-size decode) or 'reference' "
        "(full decode, hashes exactly like the reference pipeline). "
        "Default: HASHWATCH_PDQ_POLICY, else 'fast'.",
        show_default=False,
    ),
]
SamplingOpt = Annotated[
    str,
    typer.Option(
        "--sampling",
        help="Video frames: 'fast' (keyframe-first, one a frame interval), 'keyframes' "
        "(keyframes only: fastest, as sparse as the video's keyframes) or 'exact' (every k-th "
        "frame, numbered as Meta's vPDQ tool numbers them).",
    ),
]
NoBorderTrimOpt = Annotated[
    bool,
    typer.Option(
        "--no-border-trim",
        help="Do not also hash the picture inside a uniform border (framed, padded copies).",
    ),
]
# The same names as hashwatch.signals.video.SAMPLINGS (a test checks), without importing PyAV.
SAMPLINGS = ("fast", "exact", "keyframes")


def check_sampling(sampling: str) -> str:
    if sampling not in SAMPLINGS:
        raise ConfigError(f"--sampling must be one of {', '.join(SAMPLINGS)}")
    return sampling


def hw(ctx: typer.Context) -> Hashwatch:
    """The library object of this invocation, opened on first use and closed at exit."""
    obj = ctx.ensure_object(dict)
    if "hw" not in obj:
        from hashwatch.app import Hashwatch

        obj["hw"] = Hashwatch.open(obj.get("db"), obj.get("data_dir"))
        ctx.call_on_close(obj["hw"].close)
    opened: Hashwatch = obj["hw"]
    return opened


def emit(record: dict[str, Any]) -> None:
    """One JSON object, one line, on stdout."""
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


@contextmanager
def progress(label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr when a person is watching; nothing in pipes and CI logs."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield bar


def run_app(app: typer.Typer) -> None:
    """Run the command; a :class:`HashwatchError` becomes a one-line message and its exit code."""
    try:
        app()
    except HashwatchError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # output piped into head & co.
        sys.exit(0)
