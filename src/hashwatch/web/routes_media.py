"""Media of a case for reviewers, their care settings and their exposure.

``GET /v1/cases/{case}/items/{item_id}/thumbnail`` and ``.../media`` serve a picture blurred
and greyscale by the reviewer's settings (``?reveal=1``: as it is, counted as a reveal); a
video's full view is its contact sheet. Every view is audited by
:class:`hashwatch.review.exposure.ReviewerCare`. Pictures are never cached by the browser or a
proxy (``Cache-Control: no-store``), never sniffed as another type, never allowed to run
anything (a ``Content-Security-Policy`` of nothing but the picture itself), and named by the
item's number only. When the evidence is not reachable the answer is 404 with
``"not available: <reason>"`` so that a page can show the thumbnail instead.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hashwatch.review.exposure import MEDIA, THUMBNAIL, ReviewerCare
from hashwatch.review.viewing import MAX_BLUR_STRENGTH
from hashwatch.store.users import UserRole
from hashwatch.web.auth import Principal, require

__all__ = ["SettingsChange", "router"]

router = APIRouter(prefix="/v1", tags=["review"])
Reviewer = Annotated[Principal, require(UserRole.REVIEWER)]
Lead = Annotated[Principal, require(UserRole.LEAD)]
# a case id or case number: no control characters (PostgreSQL text holds no NUL)
CaseRef = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
ItemId = Annotated[int, Path(ge=1, le=2**62)]
Reveal = Annotated[bool, Query(description="show the picture as it is (audited as a reveal)")]
Limit = int | None

# Nothing in a picture's response may run, load or be framed; the picture itself is shown.
MEDIA_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


class SettingsChange(BaseModel):
    """Fields to change; those left out keep their value. A limit of null turns it off."""

    model_config = ConfigDict(extra="forbid")
    blur: bool | None = None
    blur_strength: int | None = Field(None, ge=1, le=MAX_BLUR_STRENGTH)
    greyscale: bool | None = None
    view_seconds: int | None = Field(None, ge=1, le=600)
    reveals_per_session: Limit = Field(None, ge=1, le=100_000)
    reveals_per_day: Limit = Field(None, ge=1, le=100_000)
    minutes_per_day: Limit = Field(None, ge=1, le=100_000)
    break_after_minutes: Limit = Field(None, ge=1, le=100_000)


def _care(request: Request) -> ReviewerCare:
    return ReviewerCare(request.app.state.hw.db)


def _serve(
    request: Request, who: Principal, case: str, item_id: int, kind: str, reveal: bool
) -> Response:
    served = _care(request).view(who, case, item_id, kind, reveal=reveal)
    if served.picture is None:
        return JSONResponse({"detail": served.reason}, 404, headers=MEDIA_HEADERS)
    headers = {
        **MEDIA_HEADERS,
        "Content-Disposition": f'inline; filename="{served.filename}"',
        "X-Hashwatch-Blurred": "1" if served.blurred else "0",
        "X-Hashwatch-Greyscale": "1" if served.greyscale else "0",
    }
    return Response(served.picture.data, media_type=served.picture.media_type, headers=headers)


@router.get(
    "/cases/{case}/items/{item_id}/thumbnail",
    summary="An item's thumbnail (a video's contact sheet) by the reviewer's settings",
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "not available"}},
)
def thumbnail(
    request: Request, who: Reviewer, case: CaseRef, item_id: ItemId, reveal: Reveal = False
) -> Response:
    return _serve(request, who, case, item_id, THUMBNAIL, reveal)


@router.get(
    "/cases/{case}/items/{item_id}/media",
    summary="An item's full-size picture read from the evidence (a video's contact sheet)",
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}},
        404: {"description": "not available: the reason (show the thumbnail instead)"},
    },
)
def media(
    request: Request, who: Reviewer, case: CaseRef, item_id: ItemId, reveal: Reveal = False
) -> Response:
    return _serve(request, who, case, item_id, MEDIA, reveal)


@router.get("/me/settings", summary="Your viewing aids and exposure limits")
def get_settings(request: Request, who: Reviewer) -> dict[str, Any]:
    return _care(request).settings_of(who).as_json()


@router.put("/me/settings", summary="Change your viewing aids and exposure limits")
def put_settings(request: Request, who: Reviewer, body: SettingsChange) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return _care(request).update_settings(who, changes).as_json()


@router.get("/me/exposure", summary="Your exposure today (UTC) and whether a break is due")
def my_exposure(request: Request, who: Reviewer) -> dict[str, Any]:
    return _care(request).exposure(who).as_json()


@router.get("/cases/{case}/exposure", summary="Each reviewer's exposure to a case per day")
def case_exposure(request: Request, _lead: Lead, case: CaseRef) -> dict[str, Any]:
    days = _care(request).case_exposure(case)
    return {"case": case, "days": [d.as_json() for d in days]}
