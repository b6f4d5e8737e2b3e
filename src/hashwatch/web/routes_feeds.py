"""Published feeds over HTTP (docs/exchange.md, "Publishing"; the wire format is fixed there).

* ``GET /v1/feeds``: the feeds the caller may read, each with its size and latest checkpoint.
* ``GET /v1/feeds/{list_name}/checkpoint``: the latest signed checkpoint.
* ``GET /v1/feeds/{list_name}/records?after=&limit=&known_size=``: a page of records (the
  exact texts that were hashed) with the checkpoint and the two consistency proofs a
  subscriber verifies it by; 409 when ``after`` or ``known_size`` is beyond the signed size.
* ``GET /v1/feeds/{list_name}/consistency?first=&second=``: a consistency proof.

A curator or admin key, or a peer key with a ``feed`` grant on the list, may read a feed
(:func:`~hashwatch.web.auth.require_feed_reader`); a ``query`` grant is not enough. Each feed
is caught up with its list before it is answered, so every writer of the list reaches it with
no hook. The signing key comes from ``HASHWATCH_SIGNING_KEY`` (``serve --signing-key``) or
``<data dir>/exchange/signing-key.pem``; without it every feed request is a 503 that says so.
Each page read is audited: who read which range of which feed.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from hashwatch.errors import ExchangeError, ListNotFoundError
from hashwatch.exchange.feed import DEFAULT_PAGE, MAX_PAGE, FeedInfo, FeedRangeError, FeedStore
from hashwatch.exchange.feed_keys import SIGNING_KEY_ENV, default_key_path, load_publisher_key
from hashwatch.exchange.feed_log import FeedPublisher
from hashwatch.store.service import GrantAccess, Role
from hashwatch.store.users import may_read_feed
from hashwatch.web.auth import ApiError, Principal, require, require_feed_reader
from hashwatch.web.schemas import ListName

__all__ = ["router"]

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])
FeedReader = Annotated[Principal, require_feed_reader()]
AnyKey = Annotated[Principal, require(Role.PEER)]
_BIG = 2**62
_lock = threading.Lock()


def _store(request: Request) -> FeedStore:
    return FeedStore(request.app.state.hw.db)


def _publisher(request: Request) -> FeedPublisher:
    """The app's publisher, its key loaded once (503 while there is no usable key)."""
    state = request.app.state
    with _lock:
        publisher: FeedPublisher | None = getattr(state, "feed_publisher", None)
        if publisher is None:
            env = os.environ.get(SIGNING_KEY_ENV)
            path = Path(env) if env else default_key_path(state.hw.settings.data_dir)
            try:
                key = load_publisher_key(path)
            except ExchangeError as exc:
                raise ApiError(503, f"feeds are not served: {exc}") from None
            publisher = FeedPublisher(state.hw.db, key)
            state.feed_publisher = publisher
    return publisher


def _feed(request: Request, list_name: str) -> FeedInfo:
    """The published feed of ``list_name``, caught up with its list (404 when unpublished)."""
    publisher = _publisher(request)
    publisher.catch_up(list_name)  # nothing (one cheap read) when the list has not changed
    try:
        info = _store(request).get(list_name)
    except ListNotFoundError:
        raise ApiError(404, f"no published feed of {list_name!r}") from None
    if not info.active:
        raise ApiError(404, f"no published feed of {list_name!r}")
    return info


@router.get("", summary="The feeds this key may read, with their sizes and latest checkpoints")
def list_feeds(request: Request, p: AnyKey) -> dict[str, Any]:
    if p.role is Role.PEER and not any(a == GrantAccess.FEED.value for a in p.grants.values()):
        # A query-only peer may match, never read: not even which feeds exist.
        raise ApiError(403, "this key may match against its lists but read no feed")
    readable = [
        f for f in _store(request).all(published_only=True) if may_read_feed(p, f.list_name)
    ]
    out = []
    for found in readable:
        info = _feed(request, found.list_name)
        out.append(
            {
                "list": info.list_name,
                "origin": info.origin,
                "size": info.size,
                "checkpoint": info.checkpoint,
            }
        )
    return {"feeds": out}


@router.get("/{list_name}/checkpoint", summary="The feed's latest signed checkpoint")
def checkpoint(request: Request, list_name: ListName, _p: FeedReader) -> dict[str, Any]:
    info = _feed(request, list_name)
    return {"origin": info.origin, "size": info.size, "checkpoint": info.checkpoint}


@router.get(
    "/{list_name}/records",
    summary="A page of the feed's records with the checkpoint and proofs that verify it",
)
def records(
    request: Request,
    list_name: ListName,
    p: FeedReader,
    after: Annotated[int, Query(ge=0, le=_BIG, description="records already held")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="records wanted")] = DEFAULT_PAGE,
    known_size: Annotated[
        int, Query(ge=0, le=_BIG, description="the size of the checkpoint verified before")
    ] = 0,
) -> JSONResponse:
    info = _feed(request, list_name)
    store = _store(request)
    try:
        page = store.page(info, after, limit, known_size)
    except FeedRangeError as exc:
        raise ApiError(409, str(exc)) from None
    store.record_read(info, page, actor=p.name)
    # Already JSON-ready (strings, numbers, lists): sent as is, not walked by FastAPI's encoder.
    return JSONResponse(page.as_json())


@router.get("/{list_name}/consistency", summary="A consistency proof between two feed sizes")
def consistency(
    request: Request,
    list_name: ListName,
    _p: FeedReader,
    first: Annotated[int, Query(ge=0, le=_BIG)],
    second: Annotated[int, Query(ge=0, le=_BIG)],
) -> dict[str, Any]:
    info = _feed(request, list_name)
    if first > second:
        raise ApiError(422, "first must not exceed second")
    try:
        proof = _store(request).consistency(info, first, second)
    except FeedRangeError as exc:
        raise ApiError(409, str(exc)) from None
    return {"first": first, "second": second, "proof": [_b64(h) for h in proof]}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
