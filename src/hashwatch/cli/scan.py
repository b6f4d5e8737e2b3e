"""``hashwatch scan`` and ``hashwatch verify``: triage evidence into a case directory; check it."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hashwatch.cli._common import (
    NoBorderTrimOpt,
    SamplingOpt,
    WorkersOpt,
    check_sampling,
    emit,
    err,
    hw,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["scan", "verify"]

MIB = 1 << 20  # sizes in bytes are shown in binary units, as the report shows them


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
        rate = self.nbytes / max(1e-6, time.monotonic() - self.started) / MIB
        if self.task is not None:
            self.progress.update(
                self.task,
                advance=files,
                rate=f"{rate:.1f} MiB/s",
                size=f"{self.nbytes / MIB:,.0f}/{self.total_bytes / MIB:,.0f} MiB",
            )

    def phase(self, text: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, description=text)


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
    no_border_trim: NoBorderTrimOpt = False,
    unit_files: Annotated[
        int, typer.Option("--unit-files", help="Files per work unit (units are resumed whole).")
    ] = 64,
    frame_interval: Annotated[
        float,
        typer.Option("--frame-interval", help="Seconds between hashed video frames (0: none)."),
    ] = 1.0,
    sampling: SamplingOpt = "fast",
    case_number: Annotated[
        str | None,
        typer.Option("--case-number", help="The case number (report, VICS case, manifest, audit)."),
    ] = None,
    agency: Annotated[
        str | None, typer.Option("--agency", help="The examiner's agency or organisation.")
    ] = None,
    examiner: Annotated[
        str | None,
        typer.Option("--examiner", help="Who examines (the operator's login is recorded too)."),
    ] = None,
    sign_key: Annotated[
        Path | None,
        typer.Option(
            "--sign-key",
            help="Sign manifest.json with this Ed25519 private key (PEM): manifest.json.sig.",
        ),
    ] = None,
    carve: Annotated[
        bool,
        typer.Option(
            "--carve",
            help="In disk images, also recover pictures (JPEG, PNG, GIF, MP4) from free "
            "space and file slack.",
        ),
    ] = False,
    report_thumbnails: Annotated[
        int,
        typer.Option(
            "--report-thumbnails",
            min=0,
            help="At most this many thumbnails in report.html (the top clusters first); "
            "every record is in results.jsonl and the review workspace.",
        ),
    ] = 2000,
    no_thumbnails: Annotated[
        bool,
        typer.Option(
            "--no-thumbnails",
            help="Make no thumbnails while scanning (a faster first pass: pictures decode in "
            "luma only); the review pages make them from the evidence when shown.",
        ),
    ] = False,
    salted_ed2k_max: Annotated[
        int,
        typer.Option(
            "--salted-ed2k-max",
            min=0,
            help="eMule cancelled.met records hold ED2K hashes salted with a seed: the lists' "
            "ED2K hashes are salted with each seed, up to this many (above it the records say "
            "they were not checked).",
        ),
    ] = 10_000_000,
    runner: Annotated[
        str | None,
        typer.Option(
            "--runner",
            help="Where work units run: 'local' (a process pool) or 'ray' (a Ray cluster; "
            "needs the optional extra named ray); default HASHWATCH_RUNNER, else local.",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="The Ray cluster for --runner ray (e.g. 10.0.0.5:6379; default "
            "HASHWATCH_RAY_ADDRESS, else RAY_ADDRESS, else a local Ray).",
        ),
    ] = None,
    into_db: Annotated[
        bool,
        typer.Option(
            "--into-db",
            help="Import the case into the database for review when the scan is done "
            "(as 'hashwatch cases import').",
        ),
    ] = False,
) -> None:
    """Triage evidence: known, ignorable, and NEW media first, into a case directory."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hashwatch.report.case import CaseDetails
    from hashwatch.triage import summary_lines

    case = CaseDetails.given(case_number, agency, examiner, command=["hashwatch", *sys.argv[1:]])
    key = None
    if sign_key is not None:  # cryptography is loaded only to sign
        from hashwatch.report.signing import load_private_key, sign_manifest

        key = load_private_key(sign_key)  # fail before scanning
    opened = hw(ctx)
    for warning in opened.scan_warnings(list_names):
        err.print(f"[bold red]warning:[/] {warning}", highlight=False)
    options = opened.hash_options(
        dihedral=not no_dihedral,
        border_trim=False if no_border_trim else None,
        frame_interval=frame_interval if frame_interval > 0 else None,
        sampling=check_sampling(sampling),
    )
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
        outcome = opened.scan(
            evidence,
            out,
            lists=list_names,
            workers=workers or None,
            resume=resume,
            options=options,
            progress=_RichScanProgress(bar),
            unit_files=unit_files,
            case=case,
            carve=carve,
            report_thumbnails=report_thumbnails,
            thumbnails=not no_thumbnails,
            runner=runner,
            runner_address=ray_address,
            salted_ed2k_max=salted_ed2k_max,
        )
    if key is not None:
        err.print(f"signed: {sign_manifest(outcome.case_dir, key)}")
    for line in summary_lines(outcome):
        err.print(line)
    err.print(f"report: {outcome.report}")
    result = {
        "case_dir": str(outcome.case_dir),
        "report": str(outcome.report),
        "summary": outcome.summary.as_json(),
    }
    if into_db:
        imported = opened.cases.import_case(outcome.case_dir)
        err.print(
            f"case {imported.case.case_uid} in the database: {imported.items} items, "
            f"{imported.clusters} clusters"
        )
        result["case"] = imported.case.case_uid
    emit(result)


def verify(
    case_dir: Annotated[Path, typer.Argument(help="A case directory written by `hashwatch scan`.")],
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="Also re-hash the evidence (read-only) and name every file changed, missing "
            "or added since the scan.",
        ),
    ] = False,
    evidence_paths: Annotated[
        list[Path] | None,
        typer.Option(
            "--evidence-path",
            help="Where each evidence root is now, if moved (repeatable, in the manifest's "
            "order; implies --evidence).",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The examiner's Ed25519 public key (PEM): the manifest must carry a valid "
            "signature by it.",
        ),
    ] = None,
) -> None:
    """Re-check a case's outputs against its manifest and its audit-log hash chain; check the
    manifest's signature when there is one; with --evidence, the evidence too."""
    from hashwatch.report.evidence import verify_evidence
    from hashwatch.report.manifest import verify_case
    from hashwatch.report.signing import check_signature

    result = verify_case(case_dir)
    problems = [str(problem) for problem in result.problems]
    signature = check_signature(case_dir, public_key)
    if signature.problem:
        problems.append(signature.problem)
    checked = None
    if evidence or evidence_paths:
        checked = verify_evidence(case_dir, evidence_paths or None)
        problems += [f"evidence {problem}" for problem in checked.problems]
    for problem in problems:
        err.print(f"[red]changed:[/] {problem}", highlight=False)
    if problems:
        raise typer.Exit(5)
    err.print(f"{case_dir}: all outputs match the manifest; audit log chain intact")
    if signature.signed:
        whose = "the given public key" if signature.trusted else "the key stored in the case"
        err.print(f"manifest signature valid ({whose}, {signature.key})")
    if checked is not None:
        err.print(
            f"evidence unchanged: {checked.files} files under {checked.roots} root(s) re-hashed"
        )
        for line in checked.images:
            err.print(line)
