"""The ``hashwatch`` command: parse arguments, call :class:`hashwatch.app.Hashwatch`, print.

No logic lives here. Results go to stdout as JSON Lines (or tables for people); progress and
errors go to stderr; a :class:`HashwatchError` becomes its exit code with a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hashwatch import __version__
from hashwatch.app import Hashwatch
from hashwatch.errors import ConfigError, HashwatchError
from hashwatch.report.manifest import verify_case
from hashwatch.signals.hasher import FileSignals
from hashwatch.signals.video import SAMPLINGS
from hashwatch.triage import summary_lines

__all__ = ["app", "main"]

app = typer.Typer(
    help="Find known material by hash, put new material first, share hash lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
index_app = typer.Typer(help="The persisted PDQ index.", no_args_is_help=True)
app.add_typer(index_app, name="index")


err = Console(stderr=True)
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: HASHWATCH_DATABASE_URL or a SQLite file).",
        show_default=False,
    ),
]


def _hw(ctx: typer.Context) -> Hashwatch:
    obj = ctx.ensure_object(dict)
    if "hw" not in obj:
        obj["hw"] = Hashwatch.open(obj.get("db"), obj.get("data_dir"))
        ctx.call_on_close(obj["hw"].close)
    hw: Hashwatch = obj["hw"]
    return hw


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")


@contextmanager
def _progress(label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr when a person is watching; nothing in pipes and CI logs."""
    if not err.is_terminal:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        yield progress


@app.callback()
def root(
    ctx: typer.Context,
    db: DbOption = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the index and default database live.")
    ] = None,
) -> None:
    ctx.ensure_object(dict).update(db=db, data_dir=data_dir)


@app.command()
def version() -> None:
    """Print the hashwatch version."""
    typer.echo(__version__)


# -- hash / match -----------------------------------------------------------------------------


PathsArg = Annotated[
    list[Path], typer.Argument(help="Files or directories (walked, links not followed).")
]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", help="Parallel worker processes.")]
PolicyOpt = Annotated[
    str,
    typer.Option(
        "--pdq-policy",
        help="'fast' (reduced-size decode) or 'reference' "
        "(full decode, hashes exactly like the reference pipeline).",
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


def _check_sampling(sampling: str) -> str:
    if sampling not in SAMPLINGS:
        raise ConfigError(f"--sampling must be one of {', '.join(SAMPLINGS)}")
    return sampling


@app.command("hash")
def hash_cmd(
    ctx: typer.Context,
    paths: PathsArg,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also print the 8 dihedral PDQ hashes.")
    ] = False,
    pdq_policy: PolicyOpt = "fast",
    workers: WorkersOpt = 1,
    frame_interval: Annotated[
        float, typer.Option("--frame-interval", help="Seconds between hashed video frames.")
    ] = 1.0,
    sampling: SamplingOpt = "fast",
) -> None:
    """Print the signals of every file as JSON Lines (digests; PDQ for images and video frames)."""
    hw = _hw(ctx)
    if frame_interval <= 0:
        raise ConfigError("--frame-interval must be above 0")
    _check_sampling(sampling)
    options = dataclasses.replace(
        hw.hash_options(dihedral=dihedral, policy=pdq_policy, frame_interval=frame_interval),
        sampling=sampling,
    )
    with _progress("hashing") as progress:
        task = progress.add_task("hash", total=None, rate="") if progress else None
        for fs in hw.hash_paths(paths, options, workers=workers):
            _emit(fs.as_dict())
            if progress is not None and task is not None:
                progress.advance(task)


@app.command()
def match(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or directories.")] = None,
    list_names: Annotated[
        list[str] | None, typer.Option("--list", "-l", help="Match against this list (repeatable).")
    ] = None,
    signals: Annotated[
        str | None,
        typer.Option(
            "--signals",
            help="Match hashes instead of files: one '<type> <hash>' a "
            "line, from FILE or '-' (stdin).",
        ),
    ] = None,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Try the 8 rotations/flips of each PDQ hash.")
    ] = False,
    min_quality: Annotated[
        int | None, typer.Option("--min-quality", help="Lowest PDQ quality matched (default 50).")
    ] = None,
    pdq_policy: PolicyOpt = "fast",
    workers: WorkersOpt = 1,
) -> None:
    """Match files (or hashes) against the hash lists; JSON Lines with the matches."""
    hw = _hw(ctx)
    matcher = hw.matcher(list_names, dihedral=dihedral, min_quality=min_quality)
    if signals is not None:
        if paths:
            raise ConfigError("give either PATHs or --signals, not both")
        if signals == "-":
            # Answer each line as it arrives: callers may be waiting on a pipe.
            for out in hw.match_signal_lines(sys.stdin, matcher, batch_size=1):
                _emit(out)
                sys.stdout.flush()
        else:
            with open(signals, encoding="utf-8-sig") as fh:
                for out in hw.match_signal_lines(fh, matcher):
                    _emit(out)
        return
    if not paths:
        raise ConfigError("give PATHs to match, or --signals FILE")
    options = hw.hash_options(dihedral=dihedral, policy=pdq_policy)
    with _progress("matching") as progress:
        task = progress.add_task("match", total=None, rate="") if progress else None

        def tick(_fs: FileSignals) -> None:
            if progress is not None and task is not None:
                progress.advance(task)

        for matched in hw.match_paths(paths, matcher, options, workers=workers, on_file=tick):
            _emit(matched.as_dict())


class _RichScanProgress:
    """Files, bytes, rate and ETA on stderr while a person watches."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.nbytes = 0

    def start(self, files: int, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.task = self.progress.add_task("scanning", total=files, rate="", size="")

    def advance(self, files: int, nbytes: int) -> None:
        self.nbytes += nbytes
        rate = self.nbytes / max(1e-6, time.monotonic() - self.started) / 1e6
        if self.task is not None:
            self.progress.update(
                self.task,
                advance=files,
                rate=f"{rate:.1f} MB/s",
                size=f"{self.nbytes / 1e6:,.0f}/{self.total_bytes / 1e6:,.0f} MB",
            )

    def phase(self, text: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=text)


@app.command()
def scan(
    ctx: typer.Context,
    evidence: Annotated[
        list[Path], typer.Argument(help="Files, folders and archives to scan (read-only).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The case directory to create.")],
    list_names: Annotated[
        list[str] | None, typer.Option("--list", "-l", help="Lists to use (default: all).")
    ] = None,
    workers: WorkersOpt = 0,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a scan that was stopped.")
    ] = False,
    no_dihedral: Annotated[
        bool, typer.Option("--no-dihedral", help="Do not match rotated/flipped copies.")
    ] = False,
    unit_files: Annotated[
        int, typer.Option("--unit-files", help="Files per work unit (units are resumed whole).")
    ] = 64,
    frame_interval: Annotated[
        float,
        typer.Option("--frame-interval", help="Seconds between hashed video frames (0: none)."),
    ] = 1.0,
    sampling: SamplingOpt = "fast",
) -> None:
    """Triage evidence: known, ignorable, and NEW media first, into a case directory."""
    hw = _hw(ctx)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[size]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        outcome = hw.scan(
            evidence,
            out,
            lists=list_names,
            workers=workers or None,
            resume=resume,
            dihedral=not no_dihedral,
            progress=_RichScanProgress(bar),
            unit_files=unit_files,
            frame_interval=frame_interval if frame_interval > 0 else None,
            sampling=_check_sampling(sampling),
        )
    for line in summary_lines(outcome):
        err.print(line)
    err.print(f"report: {outcome.report}")
    _emit(
        {
            "case_dir": str(outcome.case_dir),
            "report": str(outcome.report),
            "summary": outcome.summary.as_json(),
        }
    )


@app.command()
def verify(
    case_dir: Annotated[Path, typer.Argument(help="A case directory written by `hashwatch scan`.")],
) -> None:
    """Re-check a case's outputs against its manifest and its audit-log hash chain."""
    result = verify_case(case_dir)
    for problem in result.problems:
        err.print(f"[red]changed:[/] {problem}", highlight=False)
    if not result.ok:
        raise typer.Exit(5)
    err.print(f"{case_dir}: all outputs match the manifest; audit log chain intact")


# -- index ------------------------------------------------------------------------------------


@index_app.command("status")
def index_status(ctx: typer.Context) -> None:
    """Size and freshness of the persisted PDQ index."""
    hw = _hw(ctx)
    idx = hw.pdq_index
    _emit(
        {
            "path": str(idx.path),
            "hashes": len(idx),
            "watermark": idx.watermark,
            "database_change_seq": hw.db.change_seq(),
        }
    )


@index_app.command("rebuild")
def index_rebuild(ctx: typer.Context) -> None:
    """Rebuild the PDQ index from the database (never needed for correctness)."""
    hw = _hw(ctx)
    idx = hw.pdq_index
    idx.watermark = -1
    idx.refresh()
    err.print(f"rebuilt: {len(idx)} PDQ hashes")


from hashwatch.cli_lists import lists_app  # noqa: E402 - needs the helpers above
from hashwatch.cli_service import register  # noqa: E402 - needs the helpers above

app.add_typer(lists_app, name="lists")
register(app)


def main() -> None:
    try:
        app()
    except HashwatchError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # output piped into head & co.
        sys.exit(0)
