"""Signing in and out: ``POST /v1/session`` opens a server-side session and sets its cookie,
``GET /v1/session`` says who is signed in, ``DELETE /v1/session`` signs out.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page
sends it) and ``Secure`` when the request came over TLS or ``cookie_secure`` is set. The
answer of a sign-in carries the session's CSRF token, which every state-changing request made
with the cookie must send back in ``X-CSRF-Token``. Accounts, lockout and sessions live in
:class:`hashwatch.store.users.UserStore`, which audits every sign-in and sign-out.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from hashwatch.errors import SignInError
from hashwatch.store.users import SIGN_IN_REFUSED, UserRole, UserStore
from hashwatch.web.auth import SESSION_COOKIE, ApiError, Principal, require
from hashwatch.web.settings import ServeSettings

__all__ = ["SignIn", "router"]

router = APIRouter(prefix="/v1", tags=["people"])
Person = Annotated[Principal, require(UserRole.REVIEWER)]


class SignIn(BaseModel):
    """A user's name and password (never logged, never echoed back)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


def _users(request: Request) -> UserStore:
    users: UserStore = request.app.state.auth.users
    return users


def _secure(request: Request) -> bool:
    settings: ServeSettings = request.app.state.settings
    return settings.cookie_secure or request.url.scheme == "https"


@router.post("/session", summary="Sign in: sets the session cookie, returns the CSRF token")
async def sign_in(request: Request, response: Response, body: SignIn) -> dict[str, Any]:
    users = _users(request)
    try:
        new = await run_in_threadpool(users.sign_in, body.name, body.password)
    except SignInError:
        raise ApiError(401, SIGN_IN_REFUSED) from None
    lifetime = int((new.info.expires_at - new.info.created_at).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        max_age=lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return {
        "user": new.info.user.name,
        "role": new.info.user.role.value,
        "csrf_token": new.csrf_token,
        "expires_at": new.info.expires_at.isoformat(),
    }


@router.get("/session", summary="Who is signed in (a person's session or a person's key)")
def who_am_i(request: Request, person: Person) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "user": person.name,
        "role": person.role.value,
        "via": "session" if person.session_id else "key",
    }
    token = request.cookies.get(SESSION_COOKIE)
    if person.session_id and token:
        answer["csrf_token"] = UserStore.csrf_token_of(token)
    return answer


@router.delete("/session", summary="Sign out: ends the session and clears its cookie")
def sign_out(request: Request, response: Response, person: Person) -> dict[str, Any]:
    ended = False
    if person.session_id:
        ended = _users(request).end_session(person.session_id, actor=person.name)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return {"signed_out": ended}
