"""Peers over HTTP: subscriptions, a sync on demand, and the quarantine of ``review`` peers.

JSON for admins (``/v1/peers``) and one server-rendered page for leads
(``/review/peers/{name}/quarantine``) in the review workspace's style: the entries a peer
sent that wait for a decision — hash types, category (theirs and ours), provenance; there is
no media to show — with accept and reject. Logic lives in :class:`hashwatch.exchange.sync.Syncer`;
every decision is audited there with the caller as the actor. Tokens never leave: a peer
shows the first characters of ours.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from hashwatch.errors import HashwatchError
from hashwatch.exchange.sync import QuarantinedEntry, Syncer
from hashwatch.store.service import Role
from hashwatch.store.users import UserRole, UserStore
from hashwatch.web.auth import SESSION_COOKIE, ApiError, Authenticator, Principal, require
from hashwatch.web.pages.render import e, layout, q

__all__ = ["pages", "router"]

router = APIRouter(prefix="/v1/peers", tags=["peers"])
pages = APIRouter(prefix="/review/peers", include_in_schema=False)
Admin = Annotated[Principal, require(Role.ADMIN)]
_MAX_KEYS = 1000


class Decision(BaseModel):
    """Entries to accept or reject: their keys, or ``all``."""

    keys: list[str] | None = Field(default=None, max_length=_MAX_KEYS)
    all: bool = False


def _syncer(request: Request) -> Syncer:
    return Syncer(request.app.state.hw.db)


def _keys(body: Decision) -> list[str] | None:
    if body.all == bool(body.keys):
        raise ApiError(422, "give either keys or all=true")
    return None if body.all else body.keys


@router.get("", summary="Peers we subscribe to, with each subscription's state")
def list_peers(request: Request, _p: Admin) -> list[dict[str, Any]]:
    return [p.as_dict() for p in request.app.state.hw.peers.all()]


@router.post("/{name}/sync", summary="Sync one peer now (verified, one transaction a page)")
def sync_peer(request: Request, _p: Admin, name: str) -> list[dict[str, Any]]:
    reports = _syncer(request).sync(name, raise_errors=False)
    return [r.as_dict() for r in reports]


@router.get("/{name}/quarantine", summary="Entries of a review peer waiting for a decision")
def quarantine(
    request: Request,
    _p: Admin,
    name: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    return [x.as_dict() for x in _syncer(request).quarantine(name, limit=limit, offset=offset)]


@router.post("/{name}/quarantine/accept", summary="Accept waiting entries into our list")
def accept(request: Request, p: Admin, name: str, body: Decision) -> dict[str, int]:
    return _syncer(request).accept(name, _keys(body), actor=p.name)


@router.post("/{name}/quarantine/reject", summary="Reject waiting entries")
def reject(request: Request, p: Admin, name: str, body: Decision) -> dict[str, int]:
    return _syncer(request).reject(name, _keys(body), actor=p.name)


# -- the lead's page ---------------------------------------------------------------------


def _lead(request: Request, method: str, csrf: str | None = None) -> tuple[str, str] | None:
    """(name, CSRF token) of the signed-in lead or admin; None when not signed in."""
    auth: Authenticator = request.app.state.auth
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        principal = auth.session_principal(cookie, method, csrf)
    except ApiError as exc:
        if exc.status == 401:  # no live session: sign in first
            return None
        raise  # a forged or stale form (403)
    if not isinstance(principal.role, UserRole):
        return None
    if not principal.role.allows(UserRole.LEAD):
        raise ApiError(403, "the quarantine is reviewed by a lead")
    return principal.name, UserStore.csrf_token_of(cookie)


def _row(entry: QuarantinedEntry, csrf: str, name: str) -> str:
    prov = entry.as_dict()["provenance"]
    theirs = f"{entry.entry.category or '—'} ({entry.entry.scheme or 'no scheme'})"
    ours = "unmapped" if entry.unmapped else (entry.category or "—")
    where = ", ".join(f"{k}: {v}" for k, v in prov.items() if v is not None)
    form = (
        f'<form method="post" action="/review/peers/{q(name)}/quarantine" class="inline">'
        f'<input type="hidden" name="csrf_token" value="{e(csrf)}">'
        f'<input type="hidden" name="key" value="{e(entry.key)}">'
        f'<button name="decision" value="accept" aria-label="accept {e(entry.key)}">Accept'
        f'</button> <button name="decision" value="reject" aria-label="reject {e(entry.key)}">'
        "Reject</button></form>"
    )
    return (
        f"<tr><td>{e(entry.remote_list)} → {e(entry.local_list)}</td><td>{e(entry.seq)}</td>"
        f"<td>{e(', '.join(entry.hash_types))}</td><td>{e(theirs)}</td><td>{e(ours)}</td>"
        f"<td>{'disputed' if entry.entry.disputed else ''}</td><td>{e(where)}</td>"
        f"<td>{form}</td></tr>"
    )


def quarantine_page(name: str, entries: list[QuarantinedEntry], user: str, csrf: str) -> str:
    rows = "".join(_row(x, csrf, name) for x in entries)
    every = (
        f'<form method="post" action="/review/peers/{q(name)}/quarantine">'
        f'<input type="hidden" name="csrf_token" value="{e(csrf)}">'
        '<button name="decision" value="accept-all">Accept all</button> '
        '<button name="decision" value="reject-all">Reject all</button></form>'
    )
    body = (
        f"<p>{len(entries)} entries from peer {e(name)} wait for a decision. Accepted entries "
        "enter our list and match from then on; rejected ones come back if the peer changes "
        "them. Revocations by the peer apply without review.</p>"
        + (every if entries else "")
        + '<table><thead><tr><th scope="col">List</th><th scope="col">Peer record</th>'
        '<th scope="col">Hash types</th><th scope="col">Their category</th>'
        '<th scope="col">Ours</th><th scope="col">Status</th><th scope="col">Provenance</th>'
        f'<th scope="col">Decision</th></tr></thead><tbody>{rows}</tbody></table>'
    )
    return layout(f"Quarantine: {name}", body, user=user, csrf=csrf)


@pages.get("/{name}/quarantine")
def quarantine_view(request: Request, name: str) -> Response:
    who = _lead(request, "GET")
    if who is None:
        return RedirectResponse("/review/login", status_code=303)
    try:
        entries = _syncer(request).quarantine(name, limit=500)
    except HashwatchError as exc:
        return HTMLResponse(layout("Quarantine", f"<p>{e(exc)}</p>", user=who[0]), 404)
    return HTMLResponse(quarantine_page(name, entries, who[0], who[1]))


@pages.post("/{name}/quarantine")
async def quarantine_decide(request: Request, name: str) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    who = _lead(request, "POST", form.get("csrf_token"))
    if who is None:
        return RedirectResponse("/review/login", status_code=303)
    decision = form.get("decision", "")
    keys = None if decision.endswith("-all") else [form.get("key", "")]
    syncer = _syncer(request)
    decide = syncer.accept if decision.startswith("accept") else syncer.reject
    from fastapi.concurrency import run_in_threadpool

    await run_in_threadpool(decide, name, keys, actor=who[0])
    return RedirectResponse(f"/review/peers/{q(name)}/quarantine", status_code=303)
