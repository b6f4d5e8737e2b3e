"""Admin routes of query-only sharing: peers flagged for probing, and what peers asked.

Clearing a flag is audited by the store (``peer.unflagged``) in its own transaction, with the
admin key's name as the actor; the peer's rate is restored within about a second."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from hashwatch.exchange.probing import PeerFlags
from hashwatch.exchange.query_log import PeerQueryLog
from hashwatch.store.service import Role
from hashwatch.web.auth import Principal, require

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Admin = Annotated[Principal, require(Role.ADMIN)]


def _flags(request: Request) -> PeerFlags:
    return PeerFlags(request.app.state.hw.db)


@router.get("/flags", summary="Peer keys flagged for probing (open flags; all=true: cleared too)")
def flags(request: Request, _p: Admin, all: bool = False) -> list[dict[str, Any]]:
    found = _flags(request).all() if all else _flags(request).open()
    return [f.as_dict() for f in found]


@router.delete("/flags/{name}", summary="Clear a peer key's flag: its full rate is restored")
def unflag(request: Request, p: Admin, name: str) -> dict[str, Any]:
    cleared = _flags(request).clear(name, actor=p.name)
    return {"key": name, "cleared": [f.as_dict() for f in cleared]}


@router.get(
    "/peer-queries",
    summary="What peer keys asked (signals by type, matches, lists; never a hash), newest first",
)
def peer_queries(
    request: Request,
    _p: Admin,
    key: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return PeerQueryLog(request.app.state.hw.db).recent(key, limit)
