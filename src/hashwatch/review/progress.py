"""A case's review progress, per case and per reviewer, and its charts.

Per case: items and clusters by review state (settled, pending, voted, disputed), the targets
marked for a second look and the decisions whose list step is pending. Per reviewer and UTC
day: votes cast (every version: a changed vote counts again), media views, reveals and
minutes of media (:meth:`~hashwatch.review.exposure.ReviewerCare.case_exposure`). A reviewer
sees their own row; a lead or admin sees every reviewer's.

The charts are inline SVG made by the report's chart helper
(:func:`hashwatch.report.charts.bar_chart`): no script, no network, each with its numbers
written beside the bars and a text alternative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from hashwatch.report.charts import PALETTE, bar_chart
from hashwatch.review.cases import CaseStatus, CaseStore
from hashwatch.review.exposure import ReviewerCare
from hashwatch.review.second_look import SecondLooks
from hashwatch.store.database import Database
from hashwatch.store.models import CASE_VOTES
from hashwatch.store.user_models import UserRole
from hashwatch.store.users import Actor, allowed

__all__ = [
    "STATES",
    "CaseProgress",
    "ReviewerDay",
    "ReviewerProgress",
    "progress",
    "progress_charts",
]

STATES = ("settled", "pending", "voted", "disputed")
# A state keeps its colour in every chart (Okabe-Ito, colour-blind safe).
STATE_COLOURS = (PALETTE[2], PALETTE[6], PALETTE[0], PALETTE[1])


@dataclass(frozen=True)
class ReviewerDay:
    day: date
    votes: int = 0
    views: int = 0
    reveals: int = 0
    minutes: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "votes": self.votes,
            "views": self.views,
            "reveals": self.reveals,
            "minutes": self.minutes,
        }


@dataclass(frozen=True)
class ReviewerProgress:
    reviewer: str
    votes: int  # every vote cast on the case, changes included
    targets_voted: int  # targets with a current vote of theirs
    days: list[ReviewerDay] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "votes": self.votes,
            "targets_voted": self.targets_voted,
            "reveals": sum(d.reveals for d in self.days),
            "minutes": round(sum(d.minutes for d in self.days), 2),
            "days": [d.as_json() for d in self.days],
        }


@dataclass(frozen=True)
class CaseProgress:
    status: CaseStatus
    second_look: int
    reviewers: list[ReviewerProgress]

    def as_json(self) -> dict[str, Any]:
        s = self.status
        return {
            "case": s.case.case_uid,
            "case_number": s.case.case_number,
            "items": s.items,
            "clusters": s.clusters,
            "items_by_review": {k: s.items_by_review.get(k, 0) for k in STATES},
            "clusters_by_review": {k: s.clusters_by_review.get(k, 0) for k in STATES},
            "second_look": self.second_look,
            "list_steps_pending": s.list_steps_pending,
            "reviewers": [r.as_json() for r in self.reviewers],
        }


def _day(at: datetime) -> date:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date()


def progress(db: Database, ref: str, actor: Actor) -> CaseProgress:
    """The case's progress as ``actor`` may see it: every reviewer's for a lead or admin,
    their own otherwise."""
    cases = CaseStore(db)
    status = cases.status(ref)
    everyone = allowed(actor, UserRole.LEAD)
    with db.read() as conn:
        rows = conn.execute(
            select(CASE_VOTES.c.user_name, CASE_VOTES.c.at, CASE_VOTES.c.superseded_by).where(
                CASE_VOTES.c.case_id == status.case.id
            )
        ).all()
    votes: dict[str, dict[date, int]] = {}
    current: dict[str, int] = {}
    for r in rows:
        per_day = votes.setdefault(r.user_name, {})
        per_day[_day(r.at)] = per_day.get(_day(r.at), 0) + 1
        if r.superseded_by is None:
            current[r.user_name] = current.get(r.user_name, 0) + 1
    seen: dict[str, dict[date, ReviewerDay]] = {}
    for name, counts in votes.items():
        seen[name] = {d: ReviewerDay(d, votes=n) for d, n in counts.items()}
    for exp in ReviewerCare(db).case_exposure(status.case.case_uid):
        days = seen.setdefault(exp.reviewer, {})
        was = days.get(exp.day, ReviewerDay(exp.day))
        days[exp.day] = ReviewerDay(exp.day, was.votes, exp.views, exp.reveals, exp.minutes)
    reviewers = [
        ReviewerProgress(
            name,
            sum(votes.get(name, {}).values()),
            current.get(name, 0),
            [days[d] for d in sorted(days)],
        )
        for name, days in sorted(seen.items())
        if everyone or name == actor.name
    ]
    if not everyone and not reviewers:
        reviewers = [ReviewerProgress(actor.name, 0, 0, [])]
    lane = SecondLooks(db).count(status.case.case_uid)
    return CaseProgress(status, lane, reviewers)


def progress_charts(done: CaseProgress) -> dict[str, str]:
    """Inline SVG charts of ``done``: ``case`` (clusters and items by state) and, per
    reviewer, ``<name>`` (votes, reveals and minutes per day). Names are escaped by the
    chart helper."""
    s = done.status
    out = {
        "clusters": bar_chart(
            [(k, s.clusters_by_review.get(k, 0)) for k in STATES],
            title="Clusters by review state",
            chart_id="chart-clusters",
            colors=STATE_COLOURS,
        ),
        "items": bar_chart(
            [(k, s.items_by_review.get(k, 0)) for k in STATES],
            title="Items by review state",
            chart_id="chart-items",
            colors=STATE_COLOURS,
        ),
    }
    for n, r in enumerate(done.reviewers):
        parts = []
        # Whole minutes hide a short day's viewing: below ten minutes a day, seconds.
        seconds = max((d.minutes for d in r.days), default=0.0) < 10
        for what, title, colour in (
            ("votes", "votes cast per day", PALETTE[0]),
            ("reveals", "reveals per day", PALETTE[1]),
            ("minutes", f"{'seconds' if seconds else 'minutes'} of media per day", PALETTE[4]),
        ):
            scale = 60 if what == "minutes" and seconds else 1
            values = [(d.day.isoformat(), round(getattr(d, what) * scale)) for d in r.days]
            parts.append(
                bar_chart(
                    values,
                    title=f"{r.reviewer}: {title}",
                    chart_id=f"chart-r{n}-{what}",
                    colors=[colour],
                    max_bars=31,
                )
            )
        out[f"reviewer:{r.reviewer}"] = "".join(parts)
    return out
