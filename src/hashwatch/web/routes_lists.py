"""``/v1/lists``: curate hash lists over HTTP (curator keys). Thin: calls :class:`ListStore`.

A list file uploaded for import is streamed into ``<data dir>/spool`` within its byte budget
(the importer reads a path and streams it); uploaded *media* never touches disk. Every write
is audited by the store, in the write's own transaction, with the key's name as the actor:
the audit names the key, the list and counts — never the hashes.
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO, Literal, cast

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from hashwatch.lists.model import EntryRecord, ListKind, VideoFrameHash
from hashwatch.signals.types import parse_hash_type
from hashwatch.store.lists import HashListInfo, ListStore
from hashwatch.store.service import Role
from hashwatch.web.auth import Principal, require
from hashwatch.web.gate import takes_list_file
from hashwatch.web.schemas import (
    STATUS_ACTIONS,
    CreateList,
    EntryStatusChange,
    ListName,
    NewEntries,
    UpdateList,
    jsonable,
)
from hashwatch.web.spool import Spool
from hashwatch.web.uploads import receive_file_part

__all__ = ["router"]

router = APIRouter(prefix="/v1/lists", tags=["lists"])
_LIST_FILE = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"],
        }
    }
}
Curator = Annotated[Principal, require(Role.CURATOR)]


def _store(request: Request) -> ListStore:
    store: ListStore = request.app.state.hw.lists
    return store


def _upload_name(filename: str) -> str:
    """The client's file name, fit to show: its last path segment, without control or
    format characters, at most 200 characters; "the uploaded file" when nothing is left."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    if not clean or clean in ("upload", ".", ".."):  # "upload": the part named no file
        return "the uploaded file"
    return clean[:200]


def _applied(request: Request) -> None:
    """Apply a list write (audited by the store) to this process's matcher at once; other
    processes catch up within their poll interval."""
    request.app.state.service.refresh_if_changed()


def _info(info: HashListInfo) -> dict[str, Any]:
    return {**jsonable(info.__dict__), "kind": info.kind.value}


@router.get("", summary="All lists with their settings and entry counts")
def all_lists(request: Request, _p: Curator) -> list[dict[str, Any]]:
    return [_info(i) for i in _store(request).all()]


@router.post("", status_code=201, summary="Create an empty list")
def create_list(request: Request, p: Curator, body: CreateList) -> dict[str, Any]:
    info = _store(request).create(
        body.name,
        body.kind,
        scheme=body.scheme,
        source_org=body.source_org,
        pdq_threshold=body.pdq_threshold,
        description=body.description,
        actor=p.name,
    )
    _applied(request)
    return _info(info)


@router.get("/{name}", summary="One list, with its import history")
def get_list(request: Request, _p: Curator, name: str) -> dict[str, Any]:
    store = _store(request)
    return {**_info(store.get(name)), "imports": jsonable(store.imports(name))}


@router.patch("/{name}", summary="Change a list's threshold, kind, scheme or category map")
def update_list(request: Request, p: Curator, name: str, body: UpdateList) -> dict[str, Any]:
    info = _store(request).configure(
        name,
        kind=body.kind,
        pdq_threshold=body.pdq_threshold,
        source_org=body.source_org,
        scheme=body.scheme,
        description=body.description,
        category_map=body.category_map,
        video_min_compared_pct=body.video_min_compared_pct,
        video_min_query_pct=body.video_min_query_pct,
        actor=p.name,
    )
    _applied(request)
    return _info(info)


@router.post(
    "/{name}/import",
    summary="Import a list file (VICS, CSV, text, NSRL RDSv3)",
    dependencies=[takes_list_file()],
    openapi_extra={"requestBody": {"required": True, "content": _LIST_FILE}},
)
async def import_list(
    request: Request,
    p: Curator,
    name: ListName,
    format: Annotated[str | None, Query(description="default: detected")] = None,
    mode: Literal["replace", "append"] = "replace",
    kind: ListKind | None = None,
    hash_type: Annotated[str | None, Query(description="type of bare 64-hex hashes")] = None,
    force: Annotated[
        bool, Query(description="replace even when it withdraws most of the list")
    ] = False,
) -> dict[str, Any]:
    limit: int = request.app.state.settings.max_list_upload_bytes
    htype = parse_hash_type(hash_type) if hash_type else None
    spool: Spool = request.app.state.spool
    with spool.file() as (out, path):  # <data dir>/spool, removed when the import ends
        filename = await receive_file_part(request, out, limit)
        out.close()
        # Messages and the import record name the client's file, never the spool path.
        report = await run_in_threadpool(
            _store(request).import_file,
            name,
            str(path),
            fmt=format,
            kind=kind,
            mode=mode,
            actor=p.name,
            default_hash_type=htype,
            force=force,
            display_name=_upload_name(filename),
        )
    result = report.as_dict()  # "file": the client's name, as shown
    _applied(request)
    return result


@router.get("/{name}/export", summary="Export a list (sensitive: audited)")
def export_list(
    request: Request,
    p: Curator,
    name: str,
    format: Literal["vics2", "csv", "text", "vpdq"] = "vics2",
    include_inactive: bool = False,
) -> StreamingResponse:
    store = _store(request)
    store.get(name)  # 404 before streaming starts
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - closed by chunks()
    store.export(
        name, cast(BinaryIO, spool), format, include_inactive=include_inactive, actor=p.name
    )
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(1 << 20):
                yield block

    media = {
        "vics2": "application/json",
        "csv": "text/csv",
        "text": "text/plain",
        "vpdq": "text/plain",
    }[format]
    disposition = f'attachment; filename="{name}.{format}"'.encode("ascii", "replace").decode()
    return StreamingResponse(
        chunks(), media_type=media, headers={"Content-Disposition": disposition}
    )


@router.post("/{name}/entries", status_code=201, summary="Add entries (append, one transaction)")
def add_entries(request: Request, p: Curator, name: str, body: NewEntries) -> dict[str, Any]:
    store = _store(request)
    info = store.get(name, with_counts=False)  # the kind is all it needs
    records = [
        EntryRecord(
            hashes=tuple((s.hash_type, s.value) for s in e.hashes),
            category=e.category,
            series=e.series,
            tags=tuple(e.tags),
            comment=e.comment,
            source=f"api entry {n}",
            frames=tuple(VideoFrameHash(f.frame, f.timestamp, f.pdq, f.quality) for f in e.frames),
        )
        for n, e in enumerate(body.entries, start=1)
    ]
    report = store.add_records(
        name, records, source=f"api ({len(records)} entries)", actor=p.name, kind=info.kind
    )
    _applied(request)
    return {k: v for k, v in report.as_dict().items() if k != "file"}


@router.post(
    "/{name}/entries/{action}",
    summary="Revoke, dispute or reinstate entries named by hash or id",
)
def change_entries(
    request: Request,
    p: Curator,
    name: str,
    action: Literal["revoke", "dispute", "reinstate"],
    body: EntryStatusChange,
) -> dict[str, Any]:
    status = STATUS_ACTIONS[action]
    changes = _store(request).set_status(
        name,
        [(s.hash_type, s.value) for s in body.hashes],
        entry_ids=body.entry_ids,
        status=status,
        actor=p.name,
        reason=body.reason,
    )
    _applied(request)
    return {
        "changed": [
            {"entry_id": c.entry_id, "old_status": c.old_status, "new_status": c.new_status}
            for c in changes
        ]
    }
