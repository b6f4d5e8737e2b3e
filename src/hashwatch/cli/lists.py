"""``hashwatch lists ...``: import, export, show, change and add to hash lists.

Thin like the rest of the CLI (see :mod:`hashwatch.cli.main`): each command calls
:class:`hashwatch.store.lists.ListStore` and prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from hashwatch.cli._common import emit as _emit
from hashwatch.cli._common import err
from hashwatch.cli._common import hw as _hw
from hashwatch.errors import ConfigError
from hashwatch.lists.categories import scheme_codes_help
from hashwatch.lists.model import CategoryScheme, EntryStatus, ListKind
from hashwatch.signals.types import HashType, parse_hash_type

if TYPE_CHECKING:
    from hashwatch.app import Hashwatch

__all__ = ["lists_app"]

lists_app = typer.Typer(
    help="Hash lists: import, export, show, revoke, history.", no_args_is_help=True
)
ExaminerOpt = Annotated[
    str | None, typer.Option("--examiner", help="Who decides (default: login name).")
]


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
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace even when the file would withdraw more of the list's entries than "
            "HASHWATCH_MAX_WITHDRAW_SHARE allows (default 0.5: half).",
        ),
    ] = False,
    include_precategorized: Annotated[
        bool,
        typer.Option(
            "--include-precategorized",
            help="Into a known list, import a VICS file's pre-categorised records too (a hash "
            "match's category, not a person's decision); by default they are skipped.",
        ),
    ] = False,
) -> None:
    """Import a hash-list file as the list's next version (one transaction).

    A file without records is refused, and so is a replace that would withdraw most of the
    list unless --force is given. Into a known list, a VICS file's uncategorised records are
    skipped (not known material), and so are its pre-categorised ones unless
    --include-precategorized is given; the report counts both."""
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
        force=force,
        include_precategorized=include_precategorized,
    )
    if report.skipped_uncategorised or report.skipped_precategorized:
        err.print(
            f"[bold]{name}[/]: skipped {report.skipped_uncategorised} uncategorised VICS "
            "records (no Category: not known material) and "
            f"{report.skipped_precategorized} pre-categorised ones (a hash match's lead, not "
            "a decision: --include-precategorized imports them)"
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
    opinions: Annotated[
        bool,
        typer.Option(
            "--opinions",
            help="Peers' opinions on the list's entries: counts per entry and each peer's "
            "current opinion (feedback on a published list).",
        ),
    ] = False,
    peer: Annotated[
        str | None, typer.Option("--peer", help="With --opinions: one peer's opinions only.")
    ] = None,
) -> None:
    """Show lists: kind, scheme, threshold, version, entries by status, import history."""
    hw = _hw(ctx)
    if opinions or peer:
        if not name:
            raise ConfigError("--opinions shows the opinions on one list: name it")
        _show_opinions(hw, name, peer, as_json)
        return
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
    table = Table(
        "list",
        "kind",
        "scheme",
        "source",
        "PDQ threshold",
        "video % (compared/query)",
        "local features",
        "version",
        "entries",
    )
    for info in infos:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(info.counts.items())) or "empty"
        table.add_row(
            info.name,
            info.kind.value,
            info.scheme,
            info.source_org or "",
            str(info.pdq_threshold),
            f"{info.video_min_compared_pct:g} / {info.video_min_query_pct:g}",
            "on" if info.local_features else "off",
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


def _show_opinions(hw: Hashwatch, name: str, peer: str | None, as_json: bool) -> None:
    entries = hw.opinions.entries(name, peer=peer, limit=10_000)
    if as_json:
        for entry in entries:
            _emit(entry.as_dict())
        return
    if not entries:
        err.print(f"no opinions on {name}" + (f" from {peer}" if peer else ""))
        return
    table = Table("entry", "key", "status", "confirmed", "false positive", "disputed", "seen")
    table.add_column("opinions (peer: opinion, reason)", overflow="fold")
    for entry in entries:
        counts = entry.counts
        said = "; ".join(
            f"{o.peer}: {o.opinion.value}" + (f" ({o.reason})" if o.reason else "")
            for o in entry.opinions
        )
        table.add_row(
            str(entry.entry_id),
            entry.key,
            entry.status + (" (contested)" if entry.contested else ""),
            *(str(counts[o]) for o in ("confirmed", "false_positive", "disputed", "seen")),
            said,
        )
    Console().print(table)
    summary = hw.opinions.summary(name)
    err.print(
        f"{summary['entries']} entries of {name} have opinions, {summary['contested']} contested"
    )


def _set_status(
    ctx: typer.Context,
    name: str,
    hashes: list[str],
    status: EntryStatus,
    reason: str | None,
    examiner: str | None,
) -> None:
    from hashwatch.app import parse_hash_ref

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


@lists_app.command("move-negative")
def lists_move_negative(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The list holding the false positive.")],
    key: Annotated[str, typer.Argument(help="The entry: its key (e.g. md5:…) or entry:ID.")],
    to: Annotated[
        str, typer.Option("--to", help="The negative list to add it to (created if missing).")
    ],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (default: the peers who reported it)."),
    ] = None,
    examiner: ExaminerOpt = None,
) -> None:
    """Move a false positive that peers reported to a negative list: revoke the entry and
    add its hashes to the negative list, in one transaction, so the media stops matching.

    Refused unless a peer's current opinion calls the entry a false positive (see
    `lists show NAME --opinions`)."""
    move = _hw(ctx).opinions.move_to_negative(name, key, to, reason=reason, actor=examiner)
    if move.changed:
        err.print(
            f"entry {move.entry_id} of {name} revoked; its {move.hashes} hashes are entry "
            f"{move.negative_entry_id} of negative list {to} (version {move.negative_version})"
        )
    else:
        err.print(f"entry {move.entry_id} of {name} is in negative list {to} already")
    _emit(move.as_dict())


@lists_app.command("create")
def lists_create(
    ctx: typer.Context,
    name: str,
    kind: Annotated[ListKind, typer.Option("--kind", "-k")] = ListKind.KNOWN,
    scheme: Annotated[CategoryScheme, typer.Option("--scheme")] = CategoryScheme.NONE,
    source_org: Annotated[str | None, typer.Option("--source-org")] = None,
    threshold: Annotated[int, typer.Option("--threshold")] = 31,
    description: Annotated[str | None, typer.Option("--description")] = None,
    examiner: ExaminerOpt = None,
) -> None:
    """Create an empty list."""
    info = _hw(ctx).lists.create(
        name,
        kind,
        scheme=scheme,
        source_org=source_org,
        pdq_threshold=threshold,
        description=description,
        actor=examiner,
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
    video_min_compared: Annotated[
        float | None,
        typer.Option(
            "--video-min-compared",
            help="Percent of a known video's frames a video must contain to match (default 80).",
        ),
    ] = None,
    video_min_query: Annotated[
        float | None,
        typer.Option(
            "--video-min-query",
            help="Percent of a video's own frames that must match a known video (default 0).",
        ),
    ] = None,
    local_features: Annotated[
        str | None,
        typer.Option(
            "--local-features",
            help="on: store local features of media added from now on and match them "
            "(cropped, turned, framed copies); off: neither (default off).",
        ),
    ] = None,
    examiner: ExaminerOpt = None,
) -> None:
    """Change a list's kind, thresholds (PDQ, video), scheme, source, category mapping or
    local features."""
    if local_features not in (None, "on", "off"):
        raise ConfigError("--local-features takes 'on' or 'off'")
    mapping = json.loads(category_map.read_text()) if category_map else None
    info = _hw(ctx).lists.configure(
        name,
        kind=kind,
        pdq_threshold=threshold,
        scheme=scheme,
        source_org=source_org,
        category_map=mapping,
        video_min_compared_pct=video_min_compared,
        video_min_query_pct=video_min_query,
        local_features=None if local_features is None else local_features == "on",
        actor=examiner,
    )
    err.print(
        f"{info.name}: {info.kind.value}, threshold {info.pdq_threshold}, scheme {info.scheme}, "
        f"video: compared >= {info.video_min_compared_pct:g}%, "
        f"query >= {info.video_min_query_pct:g}%, "
        f"local features {'on' if info.local_features else 'off'}"
    )


@lists_app.command("add-media")
def lists_add_media(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The list (created as 'known' if missing).")],
    paths: Annotated[list[Path], typer.Argument(help="Image or video files, or folders.")],
    kind: Annotated[ListKind | None, typer.Option("--kind", "-k")] = None,
    category: Annotated[
        str | None,
        typer.Option(
            "--category",
            help=f"Category code, checked against the list's scheme ({scheme_codes_help()}).",
        ),
    ] = None,
    series: Annotated[str | None, typer.Option("--series")] = None,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    frame_interval: Annotated[
        float,
        typer.Option(
            "--frame-interval",
            help="Seconds between hashed video frames. Known videos are hashed densely so that "
            "a copy sampled once a second at other instants still finds close frames.",
        ),
    ] = 0.1,
    bt_piece_lengths: Annotated[
        list[int] | None,
        typer.Option(
            "--bt-piece-length",
            help="Also store the BitTorrent v1 pieces digest at this piece length in bytes "
            "(repeatable, e.g. 262144), so a single-file v1 torrent of the media at that "
            "piece length matches. The v2 file root is always stored.",
        ),
    ] = None,
    examiner: ExaminerOpt = None,
) -> None:
    """Hash media files into a list: digests, PDQ, video frame hashes, BitTorrent v2 root.

    BitTorrent v1 pieces digests are added at each --bt-piece-length given.

    Files on disk only: a file that cannot be added (missing, inside an archive, not an
    image or video) is named with the reason."""
    hw = _hw(ctx)
    report, problems = hw.add_media(
        name,
        paths,
        kind=kind,
        category=category,
        series=series,
        comment=comment,
        frame_interval=frame_interval,
        actor=examiner,
        bt_piece_lengths=bt_piece_lengths or (),
    )
    for problem in problems:
        err.print(f"[yellow]skipped:[/] {problem}", highlight=False)
    _emit(report.as_dict())


@lists_app.command("delete")
def lists_delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the deletion.")] = False,
    examiner: ExaminerOpt = None,
) -> None:
    """Delete a list with all its entries; its audit history is kept (`lists history`)."""
    if not yes:
        raise ConfigError(f"deleting {name!r} removes its entries: add --yes")
    _hw(ctx).lists.delete(name, actor=examiner)
    err.print(f"deleted {name} (its audit history is kept: hashwatch lists history {name})")


@lists_app.command("history")
def lists_history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The list (it may have been deleted).")],
    limit: Annotated[int, typer.Option("--limit", help="The newest N records.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The audit trail of a list: every write (create, set, import, add, revoke, dispute,
    reinstate, export, delete) with who, when and what, newest first. Never hash values."""
    from hashwatch.store.audit import AuditTrail

    events = AuditTrail(_hw(ctx).db).events(target=name, limit=limit)
    if as_json:
        for event in events:
            _emit(event.as_dict())
        return
    if not events:
        err.print(f"no audit records for {name!r}")
        return
    table = Table("at", "actor", "action", "details")
    for event in events:
        details = ", ".join(f"{k}={v}" for k, v in event.details.items() if v not in (None, 0))
        table.add_row(event.at.isoformat(timespec="seconds"), event.actor, event.action, details)
    Console().print(table)
