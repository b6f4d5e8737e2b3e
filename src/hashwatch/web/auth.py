"""Who is calling: bearer API keys or a signed-in session, roles, and a per-key rate limit.

A request carries one actor (:class:`hashwatch.store.users.Actor`): a service key (matcher,
curator, admin), a key that belongs to a user (it acts as that user), or a person signed in
with the session cookie. Every check is :func:`hashwatch.store.users.allowed`. A
cookie-authenticated request that changes state (POST, PUT, PATCH, DELETE) must carry the
session's CSRF token in ``X-CSRF-Token``, else 403: a cookie is sent by the browser whichever
site asked, the header only by the service's own pages.

Keys are looked up by the SHA-256 of the presented token and cached for a second, so a
revocation reaches every process within about a second without a database query per request.
The rate limit is a token bucket held in the process: with ``--workers N`` (or N replicas)
each process has its own bucket, so a key's effective limit is up to N times the setting.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hashwatch.store.service import KeyInfo, KeyStore, Role
from hashwatch.store.users import Actor, Need, UserRole, UserStore, allowed, may_read_feed

__all__ = [
    "CSRF_HEADER",
    "PRINCIPAL_SCOPE_KEY",
    "SESSION_COOKIE",
    "ApiError",
    "Authenticator",
    "Principal",
    "RateLimiter",
    "check_role",
    "require",
    "require_feed_reader",
    "required_role",
]

# Where :class:`hashwatch.web.gate.RequestGate` leaves the caller it admitted, so the route's
# dependency neither looks the key up again nor takes a second rate-limit token.
PRINCIPAL_SCOPE_KEY = "hashwatch.principal"
ROLE_ATTRIBUTE = "__hashwatch_role__"
SESSION_COOKIE = "hashwatch_session"
CSRF_HEADER = "X-CSRF-Token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ApiError(Exception):
    """An HTTP error of the service itself (authentication, limits), with its status."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.errors = errors


# The caller of a request: the store's one actor for people and programs.
Principal = Actor


class RateLimiter:
    """Token buckets per key: ``rate`` tokens a second, holding at most ``burst``."""

    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int, rate: float, burst: float) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is free."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / rate


class Authenticator:
    """Turns a bearer token into a :class:`Principal`, or refuses with 401/429."""

    def __init__(
        self,
        keys: KeyStore,
        rate_per_s: float,
        burst: float,
        ttl_s: float = 1.0,
        *,
        share: float = 1.0,
        users: UserStore | None = None,
    ):
        self.keys = keys
        self.users = users or UserStore(keys.db)
        self.rate_per_s = rate_per_s
        self.burst = burst
        # With N worker processes on one host each holds 1/N of every key's budget, so the
        # server as a whole honours the configured rate (uvicorn spreads connections evenly).
        self.share = share
        self.ttl_s = ttl_s
        self.limiter = RateLimiter()
        self._cache: dict[str, tuple[float, KeyInfo | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, token: str) -> KeyInfo | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        info = self.keys.authenticate(token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()  # bounded: unknown tokens must not grow it forever
            self._cache[token] = (now, info)
        return info

    def admit_cached(self, token: str | None, role: Need) -> Principal | None:
        """:meth:`admit_request` for a bearer key found in the cache (no database: safe on
        the event loop); None when the key must be looked up."""
        if not token:
            return None
        with self._lock:
            hit = self._cache.get(token)
        if hit is None or time.monotonic() - hit[0] >= self.ttl_s:
            return None
        principal = self._principal_of(hit[1])
        check_role(principal, role)
        return principal

    def principal(self, token: str | None) -> Principal:
        if not token:
            raise ApiError(401, "an API key is required: Authorization: Bearer <key>")
        return self._principal_of(self.lookup(token))

    def _principal_of(self, info: KeyInfo | None) -> Principal:
        if info is None:
            raise ApiError(401, "unknown or revoked API key")
        rate = float(info.rate_per_s) if info.rate_per_s else self.rate_per_s
        burst = max(self.burst if not info.rate_per_s else 2 * rate, 1.0)
        wait = self.limiter.take(info.id, rate * self.share, max(burst * self.share, 1.0))
        if wait > 0:
            raise ApiError(
                429,
                f"rate limit of {rate:g} requests/s exceeded for key {info.name!r}",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if info.user is not None and info.user_role is not None and info.user_id is not None:
            return Principal(info.id, info.user, UserRole(info.user_role), info.user_id)
        return Principal(info.id, info.name, info.role, grants=info.grants)

    def admit(self, token: str | None, role: Need) -> Principal:
        """The caller of ``token`` if it may do what needs ``role``: 401 without a valid key,
        429 over its rate, 403 when its role is too weak."""
        principal = self.principal(token)
        check_role(principal, role)
        return principal

    def session_principal(self, cookie: str | None, method: str, csrf: str | None) -> Principal:
        """The person signed in with the session cookie ``cookie``: 401 without a live
        session, 403 for a state-changing request without the session's CSRF token."""
        session = self.users.session(cookie) if cookie else None
        if session is None:
            raise ApiError(401, "the session has ended or is unknown: sign in again")
        if method.upper() in STATE_CHANGING and not session.csrf_matches(csrf):
            raise ApiError(403, f"a missing or wrong {CSRF_HEADER} header")
        return session.actor()

    def admit_request(
        self,
        bearer: str | None,
        cookie: str | None,
        method: str,
        csrf: str | None,
        role: Need,
    ) -> Principal:
        """The caller of a request: a bearer key when one is given, else the session cookie;
        401 with neither. Then the role check (403)."""
        if bearer or not cookie:
            if not bearer:
                raise ApiError(
                    401,
                    "an API key (Authorization: Bearer <key>) or a signed-in session is required",
                )
            principal = self.principal(bearer)
        else:
            principal = self.session_principal(cookie, method, csrf)
        check_role(principal, role)
        return principal


def check_role(principal: Principal, role: Need) -> None:
    if allowed(principal, role):
        return
    kind = "a person" if isinstance(principal.role, UserRole) else "a key"
    needs = "a person who is a" if isinstance(role, UserRole) else "a key of role"
    raise ApiError(
        403,
        f"this needs {needs} {role.value}; {principal.name!r} is {kind} "
        f"of role {principal.role.value}",
    )


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hw_…`")


def require(role: Need) -> Any:
    """A dependency admitting callers allowed what needs ``role`` (401 without, 403 below):
    a key's role (matcher, curator, admin) or a person's (reviewer, lead, admin).

    The request gate reads ``role`` off the dependency and admits the caller before any of the
    body is read; the dependency then takes the gate's answer. Without the gate (an app built
    without it) it checks the key itself."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        admitted = request.scope.get(PRINCIPAL_SCOPE_KEY)
        if isinstance(admitted, Principal):
            check_role(admitted, role)
            principal = admitted
        else:
            auth: Authenticator = request.app.state.auth
            principal = auth.admit_request(
                credentials.credentials if credentials else None,
                request.cookies.get(SESSION_COOKIE),
                request.method,
                request.headers.get(CSRF_HEADER),
                role,
            )
        request.state.principal = principal
        return principal

    setattr(dependency, ROLE_ATTRIBUTE, role)
    return Depends(dependency)


def required_role(call: object) -> Need | None:
    """The role a dependency made by :func:`require` asks for (None for other callables)."""
    role = getattr(call, ROLE_ATTRIBUTE, None)
    return role if isinstance(role, Role | UserRole) else None


def _feed_reader(list_name: str, principal: Annotated[Principal, require(Role.PEER)]) -> Principal:
    if not may_read_feed(principal, list_name):
        raise ApiError(
            403,
            f"{principal.name!r} may not read the feed of {list_name!r}: it needs a curator "
            "or admin key, or a peer key granted that list's feed",
        )
    return principal


def require_feed_reader() -> Any:
    """A dependency admitting callers who may read the feed of the list in the route's
    ``{list_name}``: a curator or admin key, or a peer key with a ``feed`` grant on that list
    (:func:`hashwatch.store.users.may_read_feed`). Any key passes the gate (401/429 there);
    the grant is checked here (403)."""
    return Depends(_feed_reader)
