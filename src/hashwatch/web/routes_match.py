"""``/v1/hash`` and ``/v1/match``: thin, media kept in memory only.

``/v1/match`` takes any key: a matcher, curator or admin key matches against every list, a
peer key (another organisation) only against the lists it has a grant on, and sees what
:mod:`hashwatch.web.peer_access` lets a peer see."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hashwatch.matching.matcher import MatchResult, Signal, signals_of
from hashwatch.store.service import Role
from hashwatch.web.auth import PRINCIPAL_SCOPE_KEY, ApiError, Principal, check_role, require
from hashwatch.web.peer_access import granted_lists
from hashwatch.web.schemas import CONTENT_ID, MatchRequest
from hashwatch.web.service import MatchService
from hashwatch.web.uploads import read_body, read_media_part

__all__ = ["FastMatch", "match_json", "router"]

router = APIRouter(tags=["matching"])
T = TypeVar("T")

_MULTIPART = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"],
        }
    }
}
_MATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            **_MULTIPART,
            "application/json": {"schema": MatchRequest.model_json_schema()},
        },
    }
}
Dihedral = Annotated[
    bool,
    Query(description="Hash/try the 8 rotations and flips (PDQ); on for /v1/match by default."),
]
ContentId = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=CONTENT_ID,
        description="Your id of the uploaded content: recorded with its matches and sent in "
        "the one webhook event they make.",
    ),
]


def _service(request: Request) -> MatchService:
    service: MatchService = request.app.state.service
    return service


async def _media(request: Request) -> tuple[bytes, str]:
    limit: int = request.app.state.settings.max_upload_bytes
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise ApiError(415, "send the media as multipart/form-data with a 'file' field")
    body = await read_body(request, limit + 64 * 1024)  # room for the multipart framing
    data, filename = read_media_part(body, ctype)
    del body
    if len(data) > limit:
        raise ApiError(413, f"the upload exceeds the limit of {limit} bytes")
    return data, filename


@router.post(
    "/v1/hash",
    summary="Signals of an uploaded file (the keys `hashwatch hash` prints)",
    openapi_extra={"requestBody": {"required": True, "content": _MULTIPART}},
)
async def hash_upload(
    request: Request, _p: Annotated[Principal, require(Role.MATCHER)], dihedral: Dihedral = False
) -> dict[str, Any]:
    data, filename = await _media(request)
    fs = await run_in_threadpool(_service(request).hash_bytes, data, filename, dihedral=dihedral)
    return fs.as_dict()


@router.post(
    "/v1/match",
    summary="Match an uploaded file, or up to 1,000 signals",
    description=(
        "multipart `file`: `{signals: {<hash fields>}, matches: [...]}`. "
        'JSON `{"signals": [{"type": "pdq", "value": "..."}]}`: `{signals: [{type, value, '
        "matches}], matches: [...]}` — one result per input signal, in order, and the flat "
        "list of all matches, each with `signal`, the index of the signal it matched."
    ),
    openapi_extra=_MATCH_BODY,
)
async def match(
    request: Request,
    principal: Annotated[Principal, require(Role.PEER)],
    dihedral: Dihedral = True,
    content_id: ContentId = None,
) -> dict[str, Any]:
    service = _service(request)
    lists = granted_lists(principal)  # None: every list; a peer: its grants only
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = await read_body(request, 2 * 1024 * 1024)
        return await match_json(service, principal, body, dihedral=dihedral, content_id=content_id)
    if lists is not None:
        await run_in_threadpool(service.peers.admit, principal, [], media=True)
    data, filename = await _media(request)
    fs, result = await run_in_threadpool(
        service.match_file,
        data,
        filename,
        principal,
        dihedral=dihedral,
        content_id=content_id,
        within=lists,
    )
    del data
    if lists is not None:
        await run_in_threadpool(
            service.peers.answered, principal, [signals_of(fs)], [result], media=True
        )
    answer = {
        "signals": fs.as_dict(),
        **_present(service, result, principal, peer=lists is not None),
    }
    if content_id:
        answer["content_id"] = content_id
    return answer


async def match_json(
    service: MatchService,
    principal: Principal,
    body: bytes,
    *,
    dihedral: bool = True,
    content_id: str | None = None,
) -> dict[str, Any]:
    """The answer to a JSON ``/v1/match`` body (the route's, and :class:`FastMatch`'s)."""
    lists = granted_lists(principal)  # None: every list; a peer: its grants only
    try:
        parsed = MatchRequest.model_validate(json.loads(body or b"null"))
    except json.JSONDecodeError as exc:
        raise ApiError(422, f"malformed JSON: {exc}") from None
    except ValidationError as exc:
        raise ApiError(422, "invalid signals", errors=_errors(exc)) from None
    signals = [Signal(s.hash_type, s.value, s.quality) for s in parsed.signals]
    call_id = parsed.content_id or content_id
    if lists is not None:
        await run_in_threadpool(service.peers.admit, principal, signals, media=False)
    results = await _in_thread(
        service.match_items,
        [[s] for s in signals],
        principal,
        dihedral=dihedral,
        content_ids=[s.content_id or call_id for s in parsed.signals],
        within=lists,
    )
    if lists is not None:
        items = [[s] for s in signals]
        await run_in_threadpool(service.peers.answered, principal, items, results, media=False)
    per_signal: list[dict[str, Any]] = []
    flat: list[dict[str, Any]] = []
    for n, (signal, result) in enumerate(zip(signals, results, strict=True)):
        shown = _present(service, result, principal, peer=lists is not None)
        out = {"type": signal.hash_type.value, "value": signal.value, **shown}
        per_signal.append(out)
        flat.extend({**m, "signal": n} for m in out["matches"])
    answer: dict[str, Any] = {"signals": per_signal, "matches": flat}
    if call_id:
        answer["content_id"] = call_id
    return answer


class _MatchThreads:
    """The threads that match JSON lookups (and wait for their records' group commit).

    A lookup handed over by a C queue and answered by ``call_soon_threadsafe`` straight into
    the awaiting asyncio future: no ``concurrent.futures.Future`` (its condition variable and
    callbacks), no pure-Python semaphore of idle workers, no future chained to another.
    ~14 against ~30-100 µs of CPU a hand-off for ``loop.run_in_executor`` on a
    ``ThreadPoolExecutor`` (a trivial call, 4 concurrent callers, this machine under load).
    Threads start on demand, up to ``max_threads`` (anyio's default limit); a thread that
    finishes a call takes the next queued one. Daemon threads: at shutdown the server's
    lifespan has already closed the match recorder, which waits for the flushes under way."""

    def __init__(self, max_threads: int) -> None:
        self._max = max_threads
        self._queue: queue.SimpleQueue[
            tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]]
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0  # threads free (waiting or about to wait) minus calls queued for them
        if hasattr(os, "register_at_fork"):  # a forked child has none of the threads
            os.register_at_fork(after_in_child=self._forget_threads)

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn()`` on a matching thread; its result (or error) in the returned future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, fn))
        with self._lock:
            if self._idle:
                self._idle -= 1  # a free thread takes it
                start = False
            else:
                start = self._started < self._max
                self._started += start
        if start:
            name = f"hashwatch-match_{self._started}"
            threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        get, lock = self._queue.get, self._lock
        while True:
            loop, future, fn = get()
            try:
                result = fn()
            except BaseException as exc:  # the awaiting request raises it
                _answer(loop, future, None, exc)
            else:
                _answer(loop, future, result, None)
            del loop, future, fn
            with lock:
                self._idle += 1

    def _forget_threads(self) -> None:
        self._lock = threading.Lock()
        self._queue = queue.SimpleQueue()
        self._started = self._idle = 0


def _answer(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for the answer
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the request was cancelled; the call ran to its end all the same
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


_MATCH_THREADS = _MatchThreads(40)


async def _in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a matching thread, awaited. Should the request be cancelled
    (the client went away), the call still runs to its end: its matches are recorded."""
    return await _MATCH_THREADS.run(functools.partial(fn, *args, **kwargs))


class _RouteName:
    """What the metrics read off ``scope["route"]`` for a request the fast lane answered."""

    path = "/v1/match"


class FastMatch:
    """ASGI middleware answering the hot request, ``POST /v1/match`` with a JSON body and no
    query parameters, without FastAPI's routing and dependency resolution (a third of such a
    request's cost): the same :func:`match_json` and the same answer, the caller admitted and
    the body read by :class:`~hashwatch.web.gate.RequestGate` before it. Errors go to the
    app's exception handlers, so they read as they do from the route. Anything else (a query
    string, an upload) goes on to the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != "/v1/match"
            or scope.get("root_path")
            or scope.get("query_string")
            or not isinstance(principal, Principal)
            or not _header(scope, b"content-type").startswith("application/json")
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = _RouteName()
        app = scope["app"]
        request = Request(scope, receive)
        try:
            check_role(principal, Role.PEER)
            body = await read_body(request, 2 * 1024 * 1024)
            answer = await match_json(app.state.service, principal, body)
            response: Response = JSONResponse(answer)
        except Exception as exc:
            handler = _handler_of(app, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _handler_of(app: Any, exc: Exception) -> Any:
    """The app's exception handler for ``exc`` (by its class's MRO), or None."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def _present(
    service: MatchService, result: MatchResult, principal: Principal, *, peer: bool
) -> dict[str, Any]:
    """The result as the caller may see it: its key's disclosure; a peer's view for a peer."""
    if not peer:
        return service.present(result, principal.key_id)

    def threshold_of(name: str) -> int:
        return int(service.matcher.list_facts(name).threshold)

    return service.peers.present(result, principal.key_id, service.bands, threshold_of)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
