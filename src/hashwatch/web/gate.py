"""The service's front door: who is calling, and how much they may send, before any body is read.

FastAPI reads a route's body before it resolves the route's dependencies, so a key checked in a
dependency is checked after a large body has been taken in. :class:`RequestGate` is a plain ASGI
middleware in front of the routes that, for each request:

1. finds the route and the role it requires (read off its :func:`~hashwatch.web.auth.require`
   dependency) and admits the caller from the ``Authorization`` header or the session cookie
   (with the ``X-CSRF-Token`` header on a state-changing request) — 401, 403 or 429 without
   touching the body;
2. picks the body's cap by what the route takes — a media upload (``max_upload_bytes``), a
   list file (``max_list_upload_bytes``, for routes that declare :func:`takes_list_file`), or
   JSON (``json_limit``) — and refuses a declared ``Content-Length`` above it with 413 at once;
3. reads a JSON body itself, up to its cap, and refuses with 422 what the JSON parser would
   choke on (invalid UTF-8, nesting too deep, a number of thousands of digits), then hands the
   route the bytes it read; any other body is counted as the route streams it and stopped with
   413 at the cap;
4. refuses a multipart boundary over 256 characters (RFC 2046 allows 70) with 422.

A database that does not answer while the key is looked up is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from http.cookies import CookieError, SimpleCookie
from typing import Any

import fastapi.routing
from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from python_multipart.multipart import parse_options_header
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashwatch.store.users import Need
from hashwatch.web.auth import (
    PRINCIPAL_SCOPE_KEY,
    SESSION_COOKIE,
    ApiError,
    Authenticator,
    required_role,
)
from hashwatch.web.failures import Outage, database_failure, is_database_error
from hashwatch.web.settings import ServeSettings

__all__ = ["MAX_BOUNDARY", "MULTIPART_FRAMING", "BodyKind", "RequestGate", "takes_list_file"]

MAX_BOUNDARY = 256  # characters of a multipart boundary (RFC 2046: 70)
MULTIPART_FRAMING = 64 * 1024  # room for part headers and boundaries around an upload
_LIST_FILE_ATTRIBUTE = "__hashwatch_list_file__"


class BodyKind(Enum):
    JSON = "json"
    MEDIA = "media"
    LIST_FILE = "list-file"


def _list_file_marker() -> None:
    """Marks a route whose multipart body is a list file (capped by ``max_list_upload_bytes``)."""


setattr(_list_file_marker, _LIST_FILE_ATTRIBUTE, True)


def takes_list_file() -> Any:
    """A route dependency declaring that the route's multipart body is a list file."""
    return Depends(_list_file_marker)


@dataclass(frozen=True)
class _Policy:
    role: Need | None
    kind: BodyKind


_OPEN = _Policy(None, BodyKind.JSON)


def _calls(dependant: Any) -> list[Callable[..., Any]]:
    out: list[Callable[..., Any]] = []
    for dep in dependant.dependencies:
        if dep.call is not None:
            out.append(dep.call)
        out.extend(_calls(dep))
    return out


def _policy_of(route: APIRoute) -> _Policy:
    calls = _calls(route.dependant)
    roles = [r for r in (required_role(c) for c in calls) if r is not None]
    role = max(roles, key=lambda r: r.rank) if roles else None
    if any(getattr(c, _LIST_FILE_ATTRIBUTE, False) for c in calls):
        return _Policy(role, BodyKind.LIST_FILE)
    content = ((route.openapi_extra or {}).get("requestBody") or {}).get("content") or {}
    if "multipart/form-data" in content:
        return _Policy(role, BodyKind.MEDIA)
    return _Policy(role, BodyKind.JSON)


class _BodyTooLarge(Exception):
    pass


class _ResponseReplaced(Exception):
    pass


def _json_like(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "" or media == "application/json" or media.endswith("+json")


def check_json(body: bytes) -> None:
    """Refuse with 422 a JSON body the parser cannot take (never echoing it back)."""
    try:
        json.loads(body)
    except RecursionError:
        raise ApiError(422, "the JSON body is nested too deeply") from None
    except UnicodeDecodeError:
        raise ApiError(422, "the JSON body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            422, f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except ValueError:  # int() beyond sys.get_int_max_str_digits()
        raise ApiError(422, "a number in the JSON body has too many digits") from None


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _bearer_token(scope: Scope) -> str | None:
    scheme, _, token = _header(scope, b"authorization").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _session_cookie(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def _route_table(routes: Any) -> list[tuple[re.Pattern[str], set[str], _Policy]]:
    """Every API route of the app, flattened: its path pattern, methods and policy. FastAPI
    keeps included routers as nested objects since 0.120; ``iter_route_contexts`` flattens
    them, older versions hold the routes themselves."""
    table: list[tuple[re.Pattern[str], set[str], _Policy]] = []
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    contexts = list(iter_contexts(routes)) if iter_contexts is not None else list(routes)
    for context in contexts:
        route = getattr(context, "original_route", context)
        if not isinstance(route, APIRoute):
            continue
        methods = set(context.methods or ())
        table.append((context.path_regex, methods, _policy_of(route)))
    return table


class RequestGate:
    """ASGI middleware admitting callers and bounding bodies before the routes run (see the
    module's description). Reads ``auth``, ``settings`` and ``outage`` from ``app.state``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], set[str], _Policy]] | None = None

    def _policy(self, scope: Scope) -> _Policy:
        if self._table is None:
            self._table = _route_table(scope["app"].routes)
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        for pattern, methods, policy in self._table:
            if (not methods or scope["method"] in methods) and pattern.match(path):
                return policy
        return _OPEN

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        settings: ServeSettings = state.settings
        try:
            policy = self._policy(scope)
            if policy.role is not None:
                auth: Authenticator = state.auth
                bearer = _bearer_token(scope)
                # A key verified in the last second is admitted here; else a worker thread
                # looks it up (a database query must not block the event loop).
                cached = auth.admit_cached(bearer, policy.role)
                scope[PRINCIPAL_SCOPE_KEY] = cached or await run_in_threadpool(
                    auth.admit_request,
                    bearer,
                    _session_cookie(scope),
                    scope["method"],
                    _header(scope, b"x-csrf-token") or None,
                    policy.role,
                )
            receive = await self._bounded(scope, receive, policy, settings)
        except ApiError as exc:
            await _answer(scope, send, exc.status, exc.message, exc.headers)
            return
        except Exception as exc:
            if not is_database_error(exc):
                raise
            failure = database_failure(exc)
            if failure.outage:
                outage: Outage = state.outage
                outage.failed(exc, "authentication")
            headers = {"Retry-After": str(settings.retry_after_s)} if failure.outage else {}
            await _answer(scope, send, failure.status, failure.message, headers)
            return
        await self._run(scope, receive, send)

    async def _bounded(
        self, scope: Scope, receive: Receive, policy: _Policy, settings: ServeSettings
    ) -> Receive:
        ctype = _header(scope, b"content-type")
        multipart = ctype.lower().startswith("multipart/")
        if multipart:
            _media, params = parse_options_header(ctype)
            boundary = params.get(b"boundary") or b""
            if len(boundary) > MAX_BOUNDARY:
                raise ApiError(422, f"the multipart boundary is over {MAX_BOUNDARY} characters")
        if multipart and policy.kind is BodyKind.LIST_FILE:
            limit = settings.max_list_upload_bytes + MULTIPART_FRAMING
        elif multipart and policy.kind is BodyKind.MEDIA:
            limit = settings.max_upload_bytes + MULTIPART_FRAMING
        else:
            limit = settings.json_limit
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the request body exceeds the limit of {limit} bytes")
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return _counting(receive, limit)
        if not multipart and _json_like(ctype):
            body = await _read_all(receive, limit)
            if body:
                check_json(body)
            return _replay(body, receive)
        return _counting(receive, limit)

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        too_large = False

        async def counted_receive() -> Message:
            nonlocal too_large
            try:
                return await receive()
            except _BodyTooLarge:
                too_large = True
                raise

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if too_large:  # a route turned the stopped body into its own error
                    await _answer(scope, send, 413, "the request body exceeds its limit", {})
                    started = True
                    raise _ResponseReplaced
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception as exc:
            if _only(exc, _ResponseReplaced):
                return
            if not _only(exc, _BodyTooLarge) or started:
                raise
            await _answer(scope, send, 413, "the request body exceeds its limit", {})


def _only(exc: BaseException, cls: type[Exception]) -> bool:
    """Whether ``exc`` is ``cls``, or a group (from a task group) of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only(e, cls) for e in exc.exceptions)
    return isinstance(exc, cls)


def _counting(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise _BodyTooLarge
        return message

    return counted


async def _read_all(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the route sees an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(
    scope: Scope, send: Send, status: int, detail: str, headers: dict[str, str]
) -> None:
    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    await response(scope, no_body, send)
