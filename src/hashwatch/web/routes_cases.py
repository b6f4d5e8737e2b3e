"""``/v1/cases``: review a case over HTTP (signed-in reviewers, leads and admins, or a key of
theirs). Thin: calls :class:`~hashwatch.review.cases.CaseStore` and
:class:`~hashwatch.review.consensus.ReviewStore`, which audit every write with the person.

A target is ``cluster:N`` (a cluster of near-duplicate new media, by its number in the case)
or ``item:ID``. ``PUT .../targets/{target}/vote`` records the caller's vote or changes it
(the earlier version is kept). Answers carry no hash values: an item is shown with its path,
type, scan status, rank, reasons and matches (list, category, distance), and its picture is
a separate image endpoint (``.../items/{id}/thumbnail``, ``.../media``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from hashwatch.review.cases import CaseStore
from hashwatch.review.consensus import ReviewStore
from hashwatch.review.progress import progress
from hashwatch.review.second_look import SecondLooks
from hashwatch.review.votes import MAX_NOTE, Target, VoteChoice
from hashwatch.store.users import UserRole
from hashwatch.web.auth import Principal, require

__all__ = ["Revocation", "SecondLookBody", "VoteBody", "router"]

router = APIRouter(prefix="/v1/cases", tags=["cases"])
Reviewer = Annotated[Principal, require(UserRole.REVIEWER)]
Lead = Annotated[Principal, require(UserRole.LEAD)]
# No control characters: PostgreSQL refuses NUL in text, and no case number holds one.
CaseRef = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
TargetRef = Annotated[
    str, Path(pattern=r"^(cluster|item):[0-9]{1,18}$", description="cluster:NUMBER or item:ID")
]
ItemId = Annotated[int, Path(ge=1, le=2**62)]
Number = Annotated[int, Path(ge=0, le=2**31)]
# An item as shown to a reviewer: no digest of the file (it may be a list's hash value).
_SHOWN = frozenset(
    {
        "id",
        "root",
        "path",
        "size",
        "media_type",
        "scan_status",
        "cluster_number",
        "rank",
        "priority",
        "reasons",
        "exif",
        "matches",
        "error",
        "review_status",
        "p2p",  # a P2P client record's facts (client, name, dates, ...); None for files
    }
)


class VoteBody(BaseModel):
    """A category of the case's scheme, or ``not_relevant``; flags and a note."""

    model_config = ConfigDict(extra="forbid")
    category: str | None = Field(None, max_length=64)
    not_relevant: bool = False
    series: str | None = Field(None, max_length=500)
    victim_identified: bool = False
    offender_identified: bool = False
    note: str | None = Field(None, max_length=10_000)

    def choice(self) -> VoteChoice:
        return VoteChoice(**self.model_dump())


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=10_000)


class SecondLookBody(BaseModel):
    """An optional note saying what to look at again."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=MAX_NOTE)


def _cases(request: Request) -> CaseStore:
    store: CaseStore = request.app.state.hw.cases
    return store


def _review(request: Request) -> ReviewStore:
    hw = request.app.state.hw
    return ReviewStore(hw.db, hw.lists)


def _applied(request: Request) -> None:
    """A decision or revocation changed a list: this process matches with it at once."""
    request.app.state.service.refresh_if_changed()


def _item(request: Request, case: str, item_id: int) -> dict[str, Any]:
    item = _review(request).item(case, item_id)
    shown = {k: v for k, v in item.as_json().items() if k in _SHOWN}
    base = f"/v1/cases/{case}/items/{item_id}"
    return shown | {"thumbnail": f"{base}/thumbnail", "media": f"{base}/media"}


@router.get("", summary="Every case, the latest imported first")
def all_cases(request: Request, _who: Reviewer) -> list[dict[str, Any]]:
    return [c.as_json() for c in _cases(request).all()]


@router.get("/{case}", summary="A case: its details, review settings and counts by state")
def case_status(request: Request, _who: Reviewer, case: CaseRef) -> dict[str, Any]:
    status = _cases(request).status(case).as_json()
    return status | {"review": _review(request).settings(case).as_json()}


@router.get("/{case}/queue", summary="What you review next, in the scan's priority order")
def my_queue(
    request: Request,
    who: Reviewer,
    case: CaseRef,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[dict[str, Any]]:
    return [e.as_json() for e in _review(request).queue(case, who, limit=limit)]


@router.get("/{case}/lead-queue", summary="Disputed targets, for a lead to decide")
def lead_queue(request: Request, _who: Lead, case: CaseRef) -> list[dict[str, Any]]:
    return [e.as_json() for e in _review(request).lead_queue(case)]


@router.get("/{case}/items/{item_id}", summary="An item: what the scan found (no hash values)")
def item(request: Request, _who: Reviewer, case: CaseRef, item_id: ItemId) -> dict[str, Any]:
    return _item(request, case, item_id)


@router.get("/{case}/clusters/{number}", summary="A cluster: its reasons, members and votes")
def cluster(request: Request, _who: Reviewer, case: CaseRef, number: Number) -> dict[str, Any]:
    view = _review(request).target(case, Target(cluster=number))
    return view.as_json() | {"items": [_item(request, case, i) for i in view.item_ids]}


@router.get("/{case}/targets/{target}", summary="A target's state, votes and decisions")
def target(request: Request, _who: Reviewer, case: CaseRef, target: TargetRef) -> dict[str, Any]:
    return _review(request).target(case, Target.parse(target)).as_json()


@router.put("/{case}/targets/{target}/vote", summary="Vote on a target, or change your vote")
def vote(
    request: Request, who: Reviewer, case: CaseRef, target: TargetRef, body: VoteBody
) -> dict[str, Any]:
    result = _review(request).vote(case, Target.parse(target), body.choice(), actor=who)
    if result.decision is not None:
        _applied(request)
    return result.as_json()


@router.post("/{case}/items/{item_id}/split", summary="Split an item off its cluster")
def split(request: Request, who: Reviewer, case: CaseRef, item_id: ItemId) -> dict[str, Any]:
    return _review(request).split(case, item_id, actor=who).as_json()


@router.post("/{case}/targets/{target}/decision", summary="A lead settles a target")
def decide(
    request: Request, who: Lead, case: CaseRef, target: TargetRef, body: VoteBody
) -> dict[str, Any]:
    decision = _review(request).decide(case, Target.parse(target), body.choice(), actor=who)
    _applied(request)
    return decision.as_json()


@router.get("/{case}/decisions", summary="Every decision with the votes it was made on")
def decisions(request: Request, _who: Reviewer, case: CaseRef) -> list[dict[str, Any]]:
    return [d.as_json() for d in _review(request).decisions(case)]


@router.post(
    "/{case}/decisions/{decision_id}/revoke",
    summary="A lead revokes a decision and the list entries it created",
)
def revoke(
    request: Request,
    who: Lead,
    case: CaseRef,
    decision_id: Annotated[int, Path(ge=1, le=2**62)],
    body: Revocation,
) -> dict[str, Any]:
    decision = _review(request).revoke(case, decision_id, actor=who, reason=body.reason)
    _applied(request)
    return decision.as_json()


@router.get("/{case}/second-look", summary="Targets marked for a second look, in rank order")
def second_look_lane(request: Request, _who: Reviewer, case: CaseRef) -> list[dict[str, Any]]:
    return [e.as_json() for e in SecondLooks(request.app.state.hw.db).lane(case)]


@router.put(
    "/{case}/targets/{target}/second-look",
    summary="Mark a target for a second look (your mark; again: changes its note)",
)
def mark_second_look(
    request: Request, who: Reviewer, case: CaseRef, target: TargetRef, body: SecondLookBody
) -> dict[str, Any]:
    looks = SecondLooks(request.app.state.hw.db)
    return looks.mark(case, Target.parse(target), actor=who, note=body.note).as_json()


@router.delete(
    "/{case}/targets/{target}/second-look",
    summary="Clear your second-look mark on a target (a lead: every mark on it)",
)
def clear_second_look(
    request: Request, who: Reviewer, case: CaseRef, target: TargetRef
) -> dict[str, Any]:
    cleared = SecondLooks(request.app.state.hw.db).clear(case, Target.parse(target), actor=who)
    return {"target": target, "cleared": cleared}


@router.get(
    "/{case}/progress",
    summary="Progress: counts by review state; votes and exposure per reviewer and day",
)
def case_progress(request: Request, who: Reviewer, case: CaseRef) -> dict[str, Any]:
    return progress(request.app.state.hw.db, case, who).as_json()
