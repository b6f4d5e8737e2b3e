"""The workspace pages beside the queue (added to the app by :func:`hashwatch.web.pages.install`).

``/review/me``: your viewing aids and break limits (a form over
:class:`~hashwatch.review.exposure.ReviewerCare`) and today's exposure with the break prompt;
``/review/cases/{case}/decisions``: every decision, revoked ones shown as revoked, with a
lead's revoke form (a reason is required); ``/review/cases/{case}/progress``: the case's
counts by state and each reviewer's votes and exposure per day, as inline SVG charts. The
forms of the target page post here too: splitting an item off its cluster and marking a
target for a second look. Every post carries the session's CSRF token (403 without it) and
goes through the same services as ``/v1/cases``, which audit each write with the person.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hashwatch.errors import ConfigError, HashwatchError
from hashwatch.review.exposure import ReviewerCare
from hashwatch.review.progress import progress, progress_charts
from hashwatch.review.second_look import SecondLooks
from hashwatch.review.votes import Target
from hashwatch.store.users import UserRole, allowed
from hashwatch.web import pages
from hashwatch.web.pages import workspace_html as html
from hashwatch.web.pages.render import case_url, target_url

__all__ = ["router"]

router = APIRouter(prefix="/review", include_in_schema=False)
_LIMITS = ("reveals_per_session", "reveals_per_day", "minutes_per_day", "break_after_minutes")


async def _checked(request: Request) -> tuple[Any, dict[str, str]] | Response:
    """The signed-in person and the posted form, or the refusal (no valid CSRF token)."""
    who = pages._signed_in(request)
    form = await pages._form(request)
    if who is None or not hmac.compare_digest(
        who.csrf.encode(), form.get("csrf_token", "").encode()
    ):
        return pages._refused()
    if not allowed(who.actor, UserRole.REVIEWER):
        return pages._redirect("/review/login")
    return who, form


def _care(request: Request) -> ReviewerCare:
    return ReviewerCare(request.app.state.hw.db)


def _me(request: Request, who: Any, *, saved: bool, error: str | None) -> Response:
    care = _care(request)
    page = html.me_page(
        care.settings_of(who.actor),
        care.exposure(who.actor),
        user=who.actor.name,
        csrf=who.csrf,
        saved=saved,
        error=error,
    )
    return pages._html(page, 200 if error is None else 400)


@router.get("/me")
def me(request: Request, saved: str | None = None) -> Response:
    who = pages._person(request)
    if isinstance(who, Response):
        return who
    return _me(request, who, saved=saved == "1", error=None)


def _settings_changes(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as settings changes: a checkbox left unticked is false, an empty
    limit is off; a number that is not one is refused (:class:`ConfigError`)."""
    changes: dict[str, Any] = {}
    for name in ("blur", "greyscale"):
        if f"{name}_shown" in form or name in form:
            changes[name] = form.get(name) == "1"
    for name in ("blur_strength", "view_seconds", *_LIMITS):
        if name not in form:
            continue
        text = form[name].strip()
        if not text and name in _LIMITS:
            changes[name] = None
            continue
        try:
            changes[name] = int(text)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number") from None
    return changes


@router.post("/me")
async def me_post(request: Request) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    who, form = checked
    try:
        changes = _settings_changes(form)
        await run_in_threadpool(_care(request).update_settings, who.actor, changes)
    except HashwatchError as exc:
        return _me(request, who, saved=False, error=str(exc))
    return pages._redirect("/review/me?saved=1")


@router.post("/cases/{case}/items/{item_id}/split")
async def split(request: Request, case: str, item_id: int) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    who, _ = checked
    try:
        view = await run_in_threadpool(pages._review(request).split, case, item_id, actor=who.actor)
    except HashwatchError as exc:
        return pages._error_page(who, exc)
    return pages._redirect(target_url(case, str(view.target)))


@router.post("/cases/{case}/targets/{target}/second-look")
async def second_look(request: Request, case: str, target: str) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    who, form = checked
    looks = SecondLooks(request.app.state.hw.db)
    try:
        parsed = Target.parse(target)
        if form.get("action") == "clear":
            await run_in_threadpool(looks.clear, case, parsed, actor=who.actor)
        else:
            await run_in_threadpool(
                looks.mark, case, parsed, actor=who.actor, note=form.get("note")
            )
    except HashwatchError as exc:
        return pages._error_page(who, exc)
    return pages._redirect(target_url(case, str(parsed)))


def _decisions(request: Request, who: Any, case: str, error: str | None) -> Response:
    info = request.app.state.hw.cases.get(case)
    decisions = pages._review(request).decisions(case)
    lead = allowed(who.actor, UserRole.LEAD)
    page = html.decisions_page(
        info, decisions, user=who.actor.name, csrf=who.csrf, is_lead=lead, error=error
    )
    return pages._html(page, 200 if error is None else 400)


@router.get("/cases/{case}/decisions")
def decisions(request: Request, case: str) -> Response:
    who = pages._person(request)
    if isinstance(who, Response):
        return who
    try:
        return _decisions(request, who, case, None)
    except HashwatchError as exc:
        return pages._error_page(who, exc)


@router.post("/cases/{case}/decisions/{decision_id}/revoke")
async def revoke(request: Request, case: str, decision_id: int) -> Response:
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    who, form = checked
    if not allowed(who.actor, UserRole.LEAD):
        body = "<p>Revoking a decision is for leads.</p>"
        text = pages.render.layout("Refused", body, user=who.actor.name, csrf=who.csrf)
        return pages._html(text, 403)
    review = pages._review(request)
    try:
        done = await run_in_threadpool(
            review.revoke, case, decision_id, actor=who.actor, reason=form.get("reason", "")
        )
    except HashwatchError as exc:
        try:
            return _decisions(request, who, case, str(exc))
        except HashwatchError:
            return pages._error_page(who, exc)
    request.app.state.service.refresh_if_changed()
    if form.get("back") == "target":
        return pages._redirect(target_url(case, str(done.target)))
    return pages._redirect(f"{case_url(case)}/decisions")


@router.get("/cases/{case}/progress")
def progress_page(request: Request, case: str) -> Response:
    who = pages._person(request)
    if isinstance(who, Response):
        return who
    try:
        done = progress(request.app.state.hw.db, case, who.actor)
    except HashwatchError as exc:
        return pages._error_page(who, exc)
    lead = allowed(who.actor, UserRole.LEAD)
    page = html.progress_page(
        done, progress_charts(done), user=who.actor.name, csrf=who.csrf, is_lead=lead
    )
    return pages._html(page)
