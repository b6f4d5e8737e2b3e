"""Feedback over HTTP: peers send opinions on a feed's entries, curators read them and move
false positives to a negative list. Thin: calls :class:`~hashwatch.exchange.opinions.OpinionStore`.

* ``POST /v1/feeds/{list_name}/opinions``: a peer key with a ``feed`` grant on the list (or a
  curator or admin key) sends its opinion on one entry. The opinion is recorded under the
  key's name (the peer organisation). The answer holds the peer's own opinion and the entry's
  status — never what other peers said.
* ``GET /v1/lists/{name}/opinions``: a curator reads the opinions, per entry (``key``) or per
  peer (``peer``), with counts.
* ``POST /v1/lists/{name}/move-negative``: a curator moves a reported false positive to a
  negative list (revoked here, added there, one transaction).

An unknown entry key is a 404 whose message does not repeat the key (a hash).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hashwatch.exchange.base import Opinion
from hashwatch.exchange.opinions import MAX_REASON, OpinionStore
from hashwatch.store.service import Role
from hashwatch.web.auth import Principal, require, require_feed_reader
from hashwatch.web.schemas import ListName

__all__ = ["MoveNegative", "OpinionIn", "router"]

router = APIRouter(tags=["feedback"])
Curator = Annotated[Principal, require(Role.CURATOR)]
FeedReader = Annotated[Principal, require_feed_reader()]
_KEY = Field(min_length=1, max_length=200, description="the entry's key, e.g. md5:<hex>")


class OpinionIn(BaseModel):
    """A peer's opinion of one entry of a feed."""

    model_config = ConfigDict(extra="forbid")
    key: str = _KEY
    opinion: Opinion
    reason: str | None = Field(None, max_length=MAX_REASON)

    @model_validator(mode="after")
    def _reason_for_false_positive(self) -> OpinionIn:
        if self.opinion is Opinion.FALSE_POSITIVE and not (self.reason or "").strip():
            raise ValueError("a false positive needs a reason (what the media really is)")
        return self


class MoveNegative(BaseModel):
    """Which reported false positive goes to which negative list."""

    model_config = ConfigDict(extra="forbid")
    key: str = _KEY
    to: ListName = Field(description="the negative list (created when missing)")
    reason: str | None = Field(None, max_length=MAX_REASON)


def _opinions(request: Request) -> OpinionStore:
    store: OpinionStore = request.app.state.hw.opinions
    return store


def _applied(request: Request) -> None:
    """A status change reaches this process's matcher at once (others within their poll)."""
    request.app.state.service.refresh_if_changed()


@router.post(
    "/v1/feeds/{list_name}/opinions",
    summary="Send an opinion on an entry of a feed (confirmed, false positive, disputed, seen)",
)
def send_opinion(
    request: Request, list_name: ListName, body: OpinionIn, p: FeedReader
) -> dict[str, Any]:
    receipt = _opinions(request).record(list_name, body.key, p.name, body.opinion, body.reason)
    _applied(request)
    return receipt.as_dict()


@router.get("/v1/lists/{name}/opinions", summary="Peers' opinions on a list's entries")
def list_opinions(
    request: Request,
    _p: Curator,
    name: ListName,
    peer: Annotated[str | None, Query(description="one peer's opinions only")] = None,
    key: Annotated[str | None, Query(description="one entry only (404 when unknown)")] = None,
    history: Annotated[bool, Query(description="also the opinions peers replaced")] = False,
    after: Annotated[int, Query(ge=0, le=2**62, description="entries after this entry id")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    store = _opinions(request)
    if key is not None:
        entry = store.entry(name, key, history=history)
        shown = [o for o in entry.opinions if peer is None or o.peer == peer]
        return {"list": name, "entries": [{**entry.as_dict(), "opinions": _dicts(shown)}]}
    entries = store.entries(name, peer=peer, history=history, after=after, limit=limit)
    return {
        "list": name,
        "summary": store.summary(name),
        "entries": [e.as_dict() for e in entries],
        "next": entries[-1].entry_id if len(entries) == limit else None,
    }


def _dicts(opinions: Any) -> list[dict[str, Any]]:
    return [o.as_dict() for o in opinions]


@router.post(
    "/v1/lists/{name}/move-negative",
    summary="Move a reported false positive to a negative list (revoke here, add there)",
)
def move_negative(
    request: Request, p: Curator, name: ListName, body: MoveNegative
) -> dict[str, Any]:
    move = _opinions(request).move_to_negative(
        name, body.key, body.to, reason=body.reason, actor=p.name
    )
    _applied(request)
    return move.as_dict()
