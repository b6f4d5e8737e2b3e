"""``hashwatch hash`` and ``hashwatch match``: signals of files, and their matches in the lists."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hashwatch.cli._common import (
    NoBorderTrimOpt,
    PathsArg,
    PolicyOpt,
    SamplingOpt,
    WorkersOpt,
    check_sampling,
    emit,
    hw,
    progress,
)
from hashwatch.errors import ConfigError

if TYPE_CHECKING:
    from hashwatch.signals.hasher import FileSignals

__all__ = ["hash_cmd", "match"]


def hash_cmd(
    ctx: typer.Context,
    paths: PathsArg,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also print the 8 dihedral PDQ hashes.")
    ] = False,
    pdq_policy: PolicyOpt = None,
    workers: WorkersOpt = 1,
    frame_interval: Annotated[
        float, typer.Option("--frame-interval", help="Seconds between hashed video frames.")
    ] = 1.0,
    sampling: SamplingOpt = "fast",
) -> None:
    """Print the signals of every file as JSON Lines (digests; PDQ for images and video frames)."""
    opened = hw(ctx)
    if frame_interval <= 0:
        raise ConfigError("--frame-interval must be above 0")
    check_sampling(sampling)
    options = opened.hash_options(
        dihedral=dihedral, policy=pdq_policy, frame_interval=frame_interval, sampling=sampling
    )
    with progress("hashing") as bar:
        task = bar.add_task("hash", total=None, rate="") if bar else None
        for fs in opened.hash_paths(paths, options, workers=workers):
            emit(fs.as_dict())
            if bar is not None and task is not None:
                bar.advance(task)


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
    no_dihedral: Annotated[
        bool,
        typer.Option("--no-dihedral", help="Do not match rotated/flipped copies (PDQ)."),
    ] = False,
    no_border_trim: NoBorderTrimOpt = False,
    min_quality: Annotated[
        int | None, typer.Option("--min-quality", help="Lowest PDQ quality matched (default 50).")
    ] = None,
    pdq_policy: PolicyOpt = None,
    workers: WorkersOpt = 1,
    local_features: Annotated[
        bool,
        typer.Option(
            "--local-features",
            help="Match pictures by local features against every list holding them, whatever "
            "the list's setting (cropped, turned, framed copies PDQ misses).",
        ),
    ] = False,
) -> None:
    """Match files (or hashes) against the hash lists; JSON Lines with the matches."""
    opened = hw(ctx)
    matcher = opened.matcher(
        list_names,
        dihedral=not no_dihedral,
        min_quality=min_quality,
        local_features=True if local_features else None,
    )
    if signals is not None:
        if paths:
            raise ConfigError("give either PATHs or --signals, not both")
        if signals == "-":
            # Answer each line as it arrives: callers may be waiting on a pipe.
            for out in opened.match_signal_lines(sys.stdin, matcher, batch_size=1):
                emit(out)
                sys.stdout.flush()
        else:
            with open(signals, encoding="utf-8-sig") as fh:
                for out in opened.match_signal_lines(fh, matcher):
                    emit(out)
        return
    if not paths:
        raise ConfigError("give PATHs to match, or --signals FILE")
    options = opened.hash_options(
        dihedral=not no_dihedral, policy=pdq_policy, border_trim=False if no_border_trim else None
    )
    with progress("matching") as bar:
        task = bar.add_task("match", total=None, rate="") if bar else None

        def tick(_fs: FileSignals) -> None:
            if bar is not None and task is not None:
                bar.advance(task)

        for matched in opened.match_paths(paths, matcher, options, workers=workers, on_file=tick):
            emit(matched.as_dict())
