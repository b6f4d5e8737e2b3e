"""The ``hashwatch`` command: parse arguments, call :class:`hashwatch.app.Hashwatch`, print.

No logic lives here. Results go to stdout as JSON Lines (or tables for people); progress and
errors go to stderr; a :class:`HashwatchError` becomes its exit code with a one-line message.
"""

from __future__ import annotations

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
from rich.table import Table

from hashwatch import __version__
from hashwatch.app import Hashwatch, parse_hash_ref
from hashwatch.errors import ConfigError, HashwatchError
from hashwatch.lists.model import CategoryScheme, EntryStatus, ListKind
from hashwatch.report.manifest import verify_case
from hashwatch.signals.hasher import FileSignals
from hashwatch.signals.types import HashType, parse_hash_type
from hashwatch.triage import summary_lines

__all__ = ["app", "main"]

app = typer.Typer(
    help="Find known material by hash, put new material first, share hash lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
lists_app = typer.Typer(help="Hash lists: import, export, show, revoke.", no_args_is_help=True)
index_app = typer.Typer(help="The persisted PDQ index.", no_args_is_help=True)
app.add_typer(lists_app, name="lists")
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
) -> None:
    """Print the signals of every file as JSON Lines (digests; PDQ for images and video frames)."""
    hw = _hw(ctx)
    if frame_interval <= 0:
        raise ConfigError("--frame-interval must be above 0")
    options = hw.hash_options(dihedral=dihedral, policy=pdq_policy, frame_interval=frame_interval)
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


# -- lists --------------------------------------------------------------------------------------


@lists_app.command("import")
def lists_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="VICS JSON, CSV, text or NSRL RDSv3 SQLite.")],
    name: Annotated[
        str, typer.Option("--name", "-n", help="The list to import into (created if new).")
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", "-f", help="vics1, vics2, csv, text, nsrl (default: detected from content)."
        ),
    ] = None,
    kind: Annotated[
        ListKind | None,
        typer.Option("--kind", "-k", help="For a new list (default: known; NSRL: ignorable)."),
    ] = None,
    scheme: Annotated[
        CategoryScheme | None, typer.Option("--scheme", help="Category scheme of the codes.")
    ] = None,
    source_org: Annotated[
        str | None, typer.Option("--source-org", help="Organisation the list comes from.")
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option("--threshold", help="PDQ distance threshold of a new list (default 31)."),
    ] = None,
    append: Annotated[
        bool, typer.Option("--append", help="Add and update only; keep entries the file lacks.")
    ] = False,
    hash_type: Annotated[
        str | None,
        typer.Option(
            "--hash-type", help="Type of bare 64-hex hashes in text files (sha256 or pdq)."
        ),
    ] = None,
    examiner: Annotated[
        str | None, typer.Option("--examiner", help="Who imports (default: login name).")
    ] = None,
) -> None:
    """Import a hash-list file as the list's next version (one transaction)."""
    hw = _hw(ctx)
    report = hw.lists.import_file(
        name,
        file,
        fmt=fmt,
        kind=kind,
        scheme=scheme,
        source_org=source_org,
        pdq_threshold=threshold,
        mode="append" if append else "replace",
        actor=examiner,
        default_hash_type=parse_hash_type(hash_type) if hash_type else None,
    )
    if report.changed:
        err.print(
            f"[bold]{name}[/] version {report.version}: {report.records} records, "
            f"{report.added} added, {report.updated} updated, {report.withdrawn} withdrawn, "
            f"{report.reactivated} listed again, {report.unchanged} unchanged ({report.format})"
        )
    else:
        err.print(
            f"[bold]{name}[/] unchanged at version {report.version} ({report.records} records)"
        )
    _emit(report.as_dict())


@lists_app.command("export")
def lists_export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The list to export.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write ('-' for stdout).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="vics2, csv or text.")] = "vics2",
    include_inactive: Annotated[
        bool,
        typer.Option(
            "--include-inactive",
            help="Also revoked and withdrawn entries (CSV keeps their status).",
        ),
    ] = False,
) -> None:
    """Write a list to a file, on purpose: hash lists are sensitive."""
    hw = _hw(ctx)
    if str(out) == "-":
        count = hw.lists.export(name, sys.stdout.buffer, fmt, include_inactive=include_inactive)
    else:
        tmp = out.with_name(out.name + ".partial")
        count = hw.lists.export(name, tmp, fmt, include_inactive=include_inactive)
        tmp.replace(out)
    err.print(f"exported {count} entries of {name} to {out} ({fmt})")


@lists_app.command("show")
def lists_show(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A list; without it, all lists.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show lists: kind, scheme, threshold, version, entries by status, import history."""
    hw = _hw(ctx)
    infos = [hw.lists.get(name)] if name else hw.lists.all()
    if as_json:
        for info in infos:
            data = {**info.__dict__, "kind": info.kind.value}
            if name:
                data["imports"] = [
                    {k: (str(v) if k.endswith("_at") else v) for k, v in imp.items()}
                    for imp in hw.lists.imports(name)
                ]
            _emit(data)
        return
    table = Table("list", "kind", "scheme", "source", "PDQ threshold", "version", "entries")
    for info in infos:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(info.counts.items())) or "empty"
        table.add_row(
            info.name,
            info.kind.value,
            info.scheme,
            info.source_org or "",
            str(info.pdq_threshold),
            str(info.version),
            counts,
        )
    Console().print(table)
    if name:
        history = Table(
            "version", "file", "format", "by", "finished", "added", "updated", "withdrawn"
        )
        for imp in hw.lists.imports(name):
            history.add_row(
                str(imp["version"]),
                imp["file_name"],
                imp["format"],
                imp["imported_by"] or "",
                str(imp["finished_at"] or ""),
                str(imp["added"]),
                str(imp["updated"]),
                str(imp["withdrawn"]),
            )
        Console().print(history)


def _set_status(
    ctx: typer.Context,
    name: str,
    hashes: list[str],
    status: EntryStatus,
    reason: str | None,
    examiner: str | None,
) -> None:
    hw = _hw(ctx)
    parsed: list[tuple[HashType, str]] = []
    ids: list[int] = []
    for item in hashes:
        if item.startswith("entry:"):
            ids.append(int(item.split(":", 1)[1]))
        else:
            signal = parse_hash_ref(item)
            parsed.append((signal.hash_type, signal.value))
    changes = hw.lists.set_status(
        name, parsed, entry_ids=ids, status=status, actor=examiner, reason=reason
    )
    for change in changes:
        _emit(change.__dict__)
    err.print(f"{len(changes)} entries of {name} now {status.value}")


HashesArg = Annotated[
    list[str],
    typer.Argument(help="Hashes as TYPE:VALUE (e.g. md5:…, pdq:…), a bare MD5/SHA-1, or entry:ID."),
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept with the event).")]
ExaminerOpt = Annotated[
    str | None, typer.Option("--examiner", help="Who decides (default: login name).")
]


@lists_app.command("revoke")
def lists_revoke(
    ctx: typer.Context,
    name: str,
    hashes: HashesArg,
    reason: ReasonOpt = None,
    examiner: ExaminerOpt = None,
) -> None:
    """Stop matching entries; the record and its history are kept."""
    _set_status(ctx, name, hashes, EntryStatus.REVOKED, reason, examiner)


@lists_app.command("dispute")
def lists_dispute(
    ctx: typer.Context,
    name: str,
    hashes: HashesArg,
    reason: ReasonOpt = None,
    examiner: ExaminerOpt = None,
) -> None:
    """Flag entries as disputed: still matched, marked in every match."""
    _set_status(ctx, name, hashes, EntryStatus.DISPUTED, reason, examiner)


@lists_app.command("reinstate")
def lists_reinstate(
    ctx: typer.Context,
    name: str,
    hashes: HashesArg,
    reason: ReasonOpt = None,
    examiner: ExaminerOpt = None,
) -> None:
    """Make revoked or disputed entries active again."""
    _set_status(ctx, name, hashes, EntryStatus.ACTIVE, reason, examiner)


@lists_app.command("create")
def lists_create(
    ctx: typer.Context,
    name: str,
    kind: Annotated[ListKind, typer.Option("--kind", "-k")] = ListKind.KNOWN,
    scheme: Annotated[CategoryScheme, typer.Option("--scheme")] = CategoryScheme.NONE,
    source_org: Annotated[str | None, typer.Option("--source-org")] = None,
    threshold: Annotated[int, typer.Option("--threshold")] = 31,
    description: Annotated[str | None, typer.Option("--description")] = None,
) -> None:
    """Create an empty list."""
    info = _hw(ctx).lists.create(
        name,
        kind,
        scheme=scheme,
        source_org=source_org,
        pdq_threshold=threshold,
        description=description,
    )
    err.print(f"created {info.kind.value} list {info.name}")


@lists_app.command("set")
def lists_set(
    ctx: typer.Context,
    name: str,
    kind: Annotated[ListKind | None, typer.Option("--kind", "-k")] = None,
    threshold: Annotated[
        int | None, typer.Option("--threshold", help="PDQ distance threshold.")
    ] = None,
    scheme: Annotated[CategoryScheme | None, typer.Option("--scheme")] = None,
    source_org: Annotated[str | None, typer.Option("--source-org")] = None,
    category_map: Annotated[
        Path | None, typer.Option("--category-map", help="JSON file mapping raw codes to labels.")
    ] = None,
) -> None:
    """Change a list's kind, PDQ threshold, scheme, source or category mapping."""
    mapping = json.loads(category_map.read_text()) if category_map else None
    info = _hw(ctx).lists.configure(
        name,
        kind=kind,
        pdq_threshold=threshold,
        scheme=scheme,
        source_org=source_org,
        category_map=mapping,
    )
    err.print(
        f"{info.name}: {info.kind.value}, threshold {info.pdq_threshold}, scheme {info.scheme}"
    )


@lists_app.command("delete")
def lists_delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the deletion.")] = False,
) -> None:
    """Delete a list with all its entries and history."""
    if not yes:
        raise ConfigError(f"deleting {name!r} removes its entries and history: add --yes")
    _hw(ctx).lists.delete(name)
    err.print(f"deleted {name}")


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


from hashwatch.cli_service import register  # noqa: E402 - needs the helpers above

register(app)


def main() -> None:
    try:
        app()
    except HashwatchError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # output piped into head & co.
        sys.exit(0)
