"""Admin routes: API keys, webhooks and their dead letters, settings, match records.

Every change is audited by the store, in the change's own transaction, with the calling key's
name as the actor (``audit_events``; see :mod:`hashwatch.store.audit`)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from hashwatch.store.service import KeyStore, MatchRecordStore, Role
from hashwatch.store.webhook_http import PinnedSender
from hashwatch.store.webhooks import WebhookStore
from hashwatch.web.auth import Principal, require
from hashwatch.web.schemas import CreateKey, CreateWebhook, UpdateKey
from hashwatch.web.webhooks import send_test_event

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["admin"])
Admin = Annotated[Principal, require(Role.ADMIN)]


def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


def _hooks(request: Request) -> WebhookStore:
    hooks: WebhookStore = request.app.state.service.webhooks
    return hooks


@router.get("/keys", summary="API keys (never their tokens)")
def list_keys(request: Request, _p: Admin) -> list[dict[str, Any]]:
    return [k.as_dict() for k in _keys(request).all()]


@router.post("/keys", status_code=201, summary="Create a key; the token is shown once")
def create_key(request: Request, p: Admin, body: CreateKey) -> dict[str, Any]:
    new = _keys(request).create(
        body.name,
        body.role,
        rate_per_s=body.rate_per_s,
        disclosure=body.disclosure,
        signals_per_window=body.signals_per_window,
        actor=p.name,
    )
    return {**new.info.as_dict(), "token": new.token}


@router.patch("/keys/{name}", summary="Change what a key's matches reveal, or its limits")
def update_key(request: Request, p: Admin, name: str, body: UpdateKey) -> dict[str, Any]:
    info = _keys(request).update(
        name,
        disclosure=body.disclosure,
        rate_per_s=body.rate_per_s,
        signals_per_window=body.signals_per_window,
        actor=p.name,
    )
    return info.as_dict()


@router.delete("/keys/{name}", summary="Revoke a key")
def revoke_key(request: Request, p: Admin, name: str) -> dict[str, Any]:
    return _keys(request).revoke(name, actor=p.name).as_dict()


@router.get("/webhooks", summary="Webhooks (never their secrets or URL credentials)")
def list_webhooks(request: Request, _p: Admin) -> list[dict[str, Any]]:
    return _hooks(request).all()


@router.post("/webhooks", status_code=201, summary="Add a webhook; its secret is shown once")
def add_webhook(request: Request, p: Admin, body: CreateWebhook) -> dict[str, Any]:
    hook, secret = _hooks(request).add(
        body.url, list_name=body.list, category=body.category, actor=p.name
    )
    return {**hook, "secret": secret}


@router.delete(
    "/webhooks/{webhook_id}",
    summary="Disable a webhook (its queued deliveries are cancelled); remove=true deletes it",
)
def disable_webhook(
    request: Request, p: Admin, webhook_id: int, remove: bool = False
) -> dict[str, Any]:
    if remove:
        return _hooks(request).remove(webhook_id, actor=p.name)
    return _hooks(request).disable(webhook_id, actor=p.name)


@router.post("/webhooks/{webhook_id}/test", summary="Send a signed test event now")
async def test_webhook(request: Request, _p: Admin, webhook_id: int) -> dict[str, Any]:
    store = _hooks(request)
    target = store.test_target(webhook_id)
    sender = PinnedSender(store.policy, timeout_s=request.app.state.settings.webhook_timeout_s)
    try:
        outcome = await run_in_threadpool(send_test_event, sender, target)
    finally:
        sender.close()
    return {"webhook_id": webhook_id, "delivered": outcome.ok, "outcome": outcome.reason}


@router.get("/webhooks/deliveries", summary="Deliveries; status=dead lists the dead letters")
def deliveries(
    request: Request,
    _p: Admin,
    status: Literal["pending", "delivered", "dead", "cancelled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return _hooks(request).deliveries(status, limit)


@router.post("/webhooks/deliveries/{delivery_id}/resend", summary="Queue a delivery again")
def resend(request: Request, p: Admin, delivery_id: int) -> dict[str, Any]:
    return _hooks(request).resend(delivery_id, actor=p.name)


@router.get(
    "/match-records",
    summary="Recent match records (time, key, list, entry, distance, content_id)",
)
def match_records(
    request: Request, _p: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return MatchRecordStore(request.app.state.hw.db).recent(limit)


@router.get("/settings", summary="The server's limits and background-job settings")
def settings(request: Request, _p: Admin) -> dict[str, Any]:
    values = dataclasses.asdict(request.app.state.settings)
    return {k: (str(v) if v is not None and k == "audit_log" else v) for k, v in values.items()}
