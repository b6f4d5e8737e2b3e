"""The review pages: server-rendered HTML over the same stores as ``/v1/cases``.

``/review/login`` signs a person in with a form (or a one-time link printed by
``hashwatch review``) and sets the session cookie of ``/v1/session``; ``/review`` lists the
cases; ``/review/cases/{case}`` is a reviewer's queue in the scan's order with the case's
progress; ``.../targets/{target}`` shows a cluster or an item with the decision form;
``/review/cases/{case}/lead`` is the lead's queue. Every form post carries the session's
CSRF token (``csrf_token``; the sign-in form a token of its own, bound to a cookie) and is
refused with 403 without it. Every answer carries a strict ``Content-Security-Policy``: the
pages run only ``/review/static/review.js``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from importlib import resources
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hashwatch.errors import HashwatchError, SignInError
from hashwatch.lists.categories import DEFAULT_CATEGORY_MAPS
from hashwatch.lists.model import CategoryScheme
from hashwatch.review.consensus import ReviewStore
from hashwatch.review.exposure import ReviewerCare
from hashwatch.review.second_look import SecondLook, SecondLooks
from hashwatch.review.votes import Target, VoteChoice
from hashwatch.store.users import SIGN_IN_REFUSED, Actor, UserRole, UserStore, allowed
from hashwatch.web.auth import SESSION_COOKIE, Authenticator
from hashwatch.web.failures import status_of
from hashwatch.web.pages import render, workspace_html
from hashwatch.web.settings import ServeSettings

__all__ = ["OneTimeLinks", "router"]

router = APIRouter(prefix="/review", include_in_schema=False)
LOGIN_COOKIE = "hashwatch_login"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
_FORM_LIMIT = 64 * 1024
# Targets on a queue page: the next ones in the scan's order (more follow as you vote).
QUEUE_PAGE = 100


class OneTimeLinks:
    """Sign-in tokens valid once, for ``ttl_s`` seconds (``hashwatch review``'s link): only
    their SHA-256 is kept, in this process."""

    def __init__(self, ttl_s: float = 300.0) -> None:
        self.ttl_s = ttl_s
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[_sha(token)] = (user, time.monotonic() + self.ttl_s)
        return token

    def redeem(self, token: str) -> str | None:
        """The user of ``token`` if it is live; it cannot be used again either way."""
        with self._lock:
            found = self._tokens.pop(_sha(token), None)
        if found is None or time.monotonic() > found[1]:
            return None
        return found[0]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def install(app: FastAPI) -> None:
    """Add the pages to ``app`` (one registration line in :func:`create_app`)."""
    from hashwatch.web.pages import workspace

    app.state.sign_in_links = OneTimeLinks()
    app.include_router(router)
    app.include_router(workspace.router)


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status, headers=PAGE_HEADERS)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303, headers=PAGE_HEADERS)


def _users(request: Request) -> UserStore:
    auth: Authenticator = request.app.state.auth
    return auth.users


def _review(request: Request) -> ReviewStore:
    hw = request.app.state.hw
    return ReviewStore(hw.db, hw.lists)


class _Signed:
    def __init__(self, actor: Actor, csrf: str) -> None:
        self.actor = actor
        self.csrf = csrf


def _signed_in(request: Request) -> _Signed | None:
    token = request.cookies.get(SESSION_COOKIE)
    session = _users(request).session(token) if token else None
    if token is None or session is None:
        return None
    return _Signed(session.actor(), UserStore.csrf_token_of(token))


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _FORM_LIMIT:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _set_session(request: Request, response: Response, token: str, lifetime: int) -> None:
    settings: ServeSettings = request.app.state.settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure or request.url.scheme == "https",
    )


def _login_form(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = _html(render.login_page(token, error), status)
    response.set_cookie(
        LOGIN_COOKIE, token, max_age=1800, path="/review/login", httponly=True, samesite="strict"
    )
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in _STATIC:
        return Response("not found", 404, media_type="text/plain")
    data = resources.files("hashwatch.web").joinpath("static", name).read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=_STATIC[name], headers=headers)


@router.get("/login")
async def login(request: Request, token: str | None = None) -> Response:
    if token is None:
        return _login_form(request)
    links: OneTimeLinks = request.app.state.sign_in_links
    users = _users(request)
    name = links.redeem(token)
    if name is None:
        return _login_form(request, "This sign-in link was used or has expired.", 401)
    new = await run_in_threadpool(lambda: users.open_session(users.get(name)))
    response = _redirect("/review")
    lifetime = int((new.info.expires_at - new.info.created_at).total_seconds())
    _set_session(request, response, new.token, lifetime)
    return response


@router.post("/login")
async def login_post(request: Request) -> Response:
    form = await _form(request)
    cookie = request.cookies.get(LOGIN_COOKIE) or ""
    given = form.get("login_token", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
        return _login_form(request, "The sign-in form had expired: please sign in again.", 403)
    users = _users(request)
    try:
        new = await run_in_threadpool(users.sign_in, form.get("name", ""), form.get("password", ""))
    except SignInError:
        return _login_form(request, SIGN_IN_REFUSED, 401)
    response = _redirect("/review")
    lifetime = int((new.info.expires_at - new.info.created_at).total_seconds())
    _set_session(request, response, new.token, lifetime)
    response.delete_cookie(LOGIN_COOKIE, path="/review/login")
    return response


def _refused() -> HTMLResponse:
    text = render.layout("Refused", "<p>This form had no valid token: reload the page.</p>")
    return _html(text, 403)


@router.post("/logout")
async def logout(request: Request) -> Response:
    who = _signed_in(request)
    form = await _form(request)
    if who is None:
        return _redirect("/review/login")
    if not hmac.compare_digest(who.csrf.encode(), form.get("csrf_token", "").encode()):
        return _refused()
    if who.actor.session_id:
        _users(request).end_session(who.actor.session_id, actor=who.actor.name)
    response = _redirect("/review/login")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _person(request: Request) -> _Signed | Response:
    who = _signed_in(request)
    if who is None or not allowed(who.actor, UserRole.REVIEWER):
        return _redirect("/review/login")
    return who


def _error_page(who: _Signed, exc: HashwatchError) -> HTMLResponse:
    body = f'<p class="error" role="alert">{render.e(exc)}</p><p><a href="/review">Cases</a></p>'
    return _html(
        render.layout("Not shown", body, user=who.actor.name, csrf=who.csrf), status_of(exc)
    )


@router.get("")
def cases(request: Request) -> Response:
    who = _person(request)
    if isinstance(who, Response):
        return who
    store = request.app.state.hw.cases
    statuses = [store.status(c.case_uid) for c in store.all()]
    return _html(render.cases_page(statuses, user=who.actor.name, csrf=who.csrf))


@router.get("/cases/{case}")
def case_queue(request: Request, case: str, last: str | None = None) -> Response:
    who = _person(request)
    if isinstance(who, Response):
        return who
    try:
        status = request.app.state.hw.cases.status(case)
        queue = _review(request).queue(case, who.actor, limit=QUEUE_PAGE)
    except HashwatchError as exc:
        return _error_page(who, exc)
    lead = allowed(who.actor, UserRole.LEAD)
    page = render.case_page(
        status,
        queue,
        user=who.actor.name,
        csrf=who.csrf,
        is_lead=lead,
        last=_target_or_none(last),
        links=workspace_html.case_links(status.case.case_uid),
        lane=workspace_html.second_look_lane(status.case.case_uid, _lane(request, case)),
        page_size=QUEUE_PAGE,
    )
    return _html(page)


def _lane(request: Request, case: str) -> list[SecondLook]:
    return SecondLooks(request.app.state.hw.db).lane(case)


@router.get("/cases/{case}/lead")
def lead_queue(request: Request, case: str) -> Response:
    who = _person(request)
    if isinstance(who, Response):
        return who
    if not allowed(who.actor, UserRole.LEAD):
        body = "<p>The lead's queue is for leads.</p>"
        return _html(render.layout("Lead queue", body, user=who.actor.name, csrf=who.csrf), 403)
    try:
        info = request.app.state.hw.cases.get(case)
        disputed = _review(request).lead_queue(case)
    except HashwatchError as exc:
        return _error_page(who, exc)
    lane = workspace_html.second_look_lane(info.case_uid, _lane(request, case))
    return _html(render.lead_page(info, disputed, user=who.actor.name, csrf=who.csrf, lane=lane))


def _target_or_none(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(Target.parse(text))
    except HashwatchError:
        return None


def _codes(request: Request, case: str) -> dict[str, str]:
    """The case's categories, code to label: its scheme, else its known list's."""
    hw = request.app.state.hw
    settings = _review(request).settings(case)
    custom: dict[str, str] = {}
    scheme = settings.scheme
    if settings.known_list:
        try:
            info = hw.lists.get(settings.known_list, with_counts=False)
        except HashwatchError:
            info = None
        if info is not None:
            custom = dict(info.category_map or {})
            if scheme is None and info.scheme != CategoryScheme.NONE.value:
                scheme = info.scheme
    if custom:
        return custom
    if scheme is None:
        return {}
    return dict(DEFAULT_CATEGORY_MAPS[CategoryScheme(scheme)])


def _show_target(
    request: Request, who: _Signed, case: str, target: str, last: str | None, error: str | None
) -> HTMLResponse:
    hw = request.app.state.hw
    review = _review(request)
    parsed = Target.parse(target)
    view = review.target(case, parsed)
    info = hw.cases.get(case)
    items = [review.item(case, i) for i in view.item_ids]
    lead = allowed(who.actor, UserRole.LEAD)
    as_lead = lead and view.state == "disputed"
    before, after, reasons = review.around(case, who.actor, parsed, as_lead=as_lead)
    prev_t = str(before) if before is not None else None
    next_t = str(after) if after is not None else None
    mine = next(
        (v.choice for v in view.votes if v.user == who.actor.name and v.superseded_by is None),
        None,
    )
    uid = info.case_uid
    marks = SecondLooks(hw.db).marks(case, parsed)
    extras = workspace_html.second_look_form(
        uid, str(parsed), marks, user=who.actor.name, csrf=who.csrf, is_lead=lead
    )
    if view.decisions:
        block = workspace_html.decisions_block(
            uid, view.decisions, csrf=who.csrf, is_lead=lead, back="target"
        )
        extras += f'<section aria-label="decisions"><h2>Decisions</h2>{block}</section>'
    notice = workspace_html.break_notice(ReviewerCare(hw.db).exposure(who.actor))
    page = render.target_page(
        info,
        view,
        items,
        reasons,
        _codes(request, case),
        user=who.actor.name,
        csrf=who.csrf,
        mine=mine,
        as_lead=as_lead,
        neighbours=(prev_t, next_t),
        last=_target_or_none(last),
        error=error,
        notice=notice,
        extras=extras,
    )
    return _html(page, 200 if error is None else 400)


@router.get("/cases/{case}/targets/{target}")
def target_page(request: Request, case: str, target: str, last: str | None = None) -> Response:
    who = _person(request)
    if isinstance(who, Response):
        return who
    try:
        return _show_target(request, who, case, target, last, None)
    except HashwatchError as exc:
        return _error_page(who, exc)


def _choice(form: dict[str, str]) -> VoteChoice:
    return VoteChoice(
        category=form.get("category") or None,
        not_relevant=form.get("not_relevant") == "1",
        series=form.get("series") or None,
        victim_identified=form.get("victim_identified") == "1",
        offender_identified=form.get("offender_identified") == "1",
        note=form.get("note") or None,
    )


async def _post(request: Request, case: str, target: str, lead: bool) -> Response:
    who = _signed_in(request)
    form = await _form(request)
    if who is None or not hmac.compare_digest(
        who.csrf.encode(), form.get("csrf_token", "").encode()
    ):
        return _refused()
    review = _review(request)
    try:
        parsed = Target.parse(target)
        if lead:
            await run_in_threadpool(review.decide, case, parsed, _choice(form), actor=who.actor)
        else:
            result = await run_in_threadpool(
                review.vote, case, parsed, _choice(form), actor=who.actor
            )
    except HashwatchError as exc:
        try:
            return _show_target(request, who, case, target, None, str(exc))
        except HashwatchError:
            return _error_page(who, exc)
    if lead or result.decision is not None:
        request.app.state.service.refresh_if_changed()
    base = f"/review/cases/{quote(case, safe='')}"
    if lead:
        return _redirect(f"{base}/lead")
    following = review.queue(case, who.actor, limit=1)
    last = f"?last={quote(str(parsed), safe='')}"
    if following:
        return _redirect(f"{base}/targets/{quote(str(following[0].target), safe='')}{last}")
    return _redirect(f"{base}{last}")


@router.post("/cases/{case}/targets/{target}/vote")
async def vote(request: Request, case: str, target: str) -> Response:
    return await _post(request, case, target, lead=False)


@router.post("/cases/{case}/targets/{target}/decision")
async def decision(request: Request, case: str, target: str) -> Response:
    return await _post(request, case, target, lead=True)
