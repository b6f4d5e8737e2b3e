"""Admin routes: API keys, webhooks and their dead letters, settings, match records."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from hashwatch.store.service import KeyStore, MatchRecordStore, Role
from hashwatch.store.webhooks import WebhookStore
from hashwatch.web.auth import Principal, require
from hashwatch.web.schemas import CreateKey, CreateWebhook

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["admin"])
Admin = Annotated[Principal, require(Role.ADMIN)]


def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


def _hooks(request: Request) -> WebhookStore:
    hooks: WebhookStore = request.app.state.service.webhooks
    return hooks


def _audit(request: Request, event: str, **details: Any) -> None:
    request.app.state.audit.append(event, **details)


@router.get("/keys", summary="API keys (never their tokens)")
def list_keys(request: Request, _p: Admin) -> list[dict[str, Any]]:
    return [k.as_dict() for k in _keys(request).all()]


@router.post("/keys", status_code=201, summary="Create a key; the token is shown once")
def create_key(request: Request, p: Admin, body: CreateKey) -> dict[str, Any]:
    new = _keys(request).create(body.name, body.role, rate_per_s=body.rate_per_s)
    _audit(request, "key.created", key=p.name, name=new.info.name, role=new.info.role.value)
    return {**new.info.as_dict(), "token": new.token}


@router.delete("/keys/{name}", summary="Revoke a key")
def revoke_key(request: Request, p: Admin, name: str) -> dict[str, Any]:
    info = _keys(request).revoke(name)
    _audit(request, "key.revoked", key=p.name, name=name)
    return info.as_dict()


@router.get("/webhooks", summary="Webhooks (never their secrets)")
def list_webhooks(request: Request, _p: Admin) -> list[dict[str, Any]]:
    return _hooks(request).all()


@router.post("/webhooks", status_code=201, summary="Add a webhook; its secret is shown once")
def add_webhook(request: Request, p: Admin, body: CreateWebhook) -> dict[str, Any]:
    hook, secret = _hooks(request).add(body.url, list_name=body.list, category=body.category)
    _audit(request, "webhook.added", key=p.name, webhook=hook["id"], list=body.list)
    return {**hook, "secret": secret}


@router.delete("/webhooks/{webhook_id}", summary="Disable a webhook")
def disable_webhook(request: Request, p: Admin, webhook_id: int) -> dict[str, Any]:
    hook = _hooks(request).disable(webhook_id)
    _audit(request, "webhook.disabled", key=p.name, webhook=webhook_id)
    return hook


@router.get("/webhooks/deliveries", summary="Deliveries; status=dead lists the dead letters")
def deliveries(
    request: Request,
    _p: Admin,
    status: Literal["pending", "delivered", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return _hooks(request).deliveries(status, limit)


@router.post("/webhooks/deliveries/{delivery_id}/resend", summary="Queue a delivery again")
def resend(request: Request, p: Admin, delivery_id: int) -> dict[str, Any]:
    out = _hooks(request).resend(delivery_id)
    _audit(request, "webhook.resent", key=p.name, delivery=delivery_id)
    return out


@router.get("/match-records", summary="Recent match records (time, key, list, entry, distance)")
def match_records(
    request: Request, _p: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return MatchRecordStore(request.app.state.hw.db).recent(limit)


@router.get("/settings", summary="The server's limits and background-job settings")
def settings(request: Request, _p: Admin) -> dict[str, Any]:
    values = dataclasses.asdict(request.app.state.settings)
    return {k: (str(v) if v is not None and k == "audit_log" else v) for k, v in values.items()}
