"""Reviewer care: each reviewer's viewing aids, every media view audited, exposure measured.

A reviewer sees thumbnails and full-size pictures blurred and greyscale unless their settings
say otherwise; ``reveal`` shows one picture as it is. Research on these aids is mixed (a 2026
study found blur and greyscale did not reduce distress; an HCOMP 2020 study found interactive
blur reduced emotional impact without losing accuracy), so every aid is a per-reviewer setting
and exposure is measured rather than assumed away.

Every view — served or not, revealed or not — is written in one transaction as a row of
``media_views`` (what exposure is counted from) and an audit record (``media.view``, or
``media.reveal`` for a reveal), by this service, so the CLI and the HTTP API audit alike.

Minutes of exposure are counted from view timestamps: each view covers the reviewer's
``view_seconds`` after it, and overlapping views count once. A page of forty thumbnails
loaded at once is one view's worth, while a reviewer stepping through pictures one after the
other accrues the time they spent. Days are UTC days. Limits prompt a break; they do not lock
the reviewer out (the lead sees exposure per reviewer and day, :meth:`ReviewerCare.case_exposure`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, update

from hashwatch.errors import CaseNotFoundError, ConfigError, DecodeError
from hashwatch.review.cases import CaseStore
from hashwatch.review.media import MediaRead
from hashwatch.review.viewing import MAX_BLUR_STRENGTH, Picture, aided, revealed
from hashwatch.store.audit import record_audit
from hashwatch.store.care_models import MEDIA_VIEWS, REVIEWER_SETTINGS
from hashwatch.store.database import Database
from hashwatch.store.models import CASE_ITEMS, CASE_THUMBNAILS, utcnow
from hashwatch.store.user_models import USERS
from hashwatch.store.users import Actor

__all__ = [
    "BREAK_GAP",
    "CareSettings",
    "DayExposure",
    "Exposure",
    "MediaKind",
    "ReviewerCare",
    "ServedMedia",
]

# A pause this long without a view ends a stretch of viewing (``break_after_minutes``).
BREAK_GAP = timedelta(minutes=5)
MAX_LIMIT = 100_000
MAX_VIEW_SECONDS = 600
MediaKind = str  # "thumbnail" or "media"
THUMBNAIL, MEDIA = "thumbnail", "media"
_LIMITS = ("reveals_per_session", "reveals_per_day", "minutes_per_day", "break_after_minutes")


@dataclass(frozen=True)
class CareSettings:
    """One reviewer's aids and limits. A limit of None is off."""

    blur: bool = True
    blur_strength: int = 40  # thousandths of the longer side (40: a radius of 4 %)
    greyscale: bool = True
    view_seconds: int = 10  # what one view counts for in minutes of exposure
    reveals_per_session: int | None = 30
    reveals_per_day: int | None = 100
    minutes_per_day: int | None = 120
    break_after_minutes: int | None = 50  # of viewing without a 5-minute pause

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def changed(self, changes: Mapping[str, Any]) -> CareSettings:
        """These settings with ``changes`` applied, checked (ConfigError names what is wrong)."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown reviewer setting(s): {', '.join(unknown)}")
        new = replace(self, **dict(changes))
        for name in ("blur", "greyscale"):
            if not isinstance(getattr(new, name), bool):
                raise ConfigError(f"{name} must be true or false")
        _check_int("blur_strength", new.blur_strength, 1, MAX_BLUR_STRENGTH)
        _check_int("view_seconds", new.view_seconds, 1, MAX_VIEW_SECONDS)
        for name in _LIMITS:
            value = getattr(new, name)
            if value is not None:
                _check_int(name, value, 1, MAX_LIMIT)
        return new


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high} (or null)")


@dataclass(frozen=True)
class ServedMedia:
    """What a view served: a picture, or why none (``reason`` starts "not available:")."""

    item_id: int
    kind: MediaKind
    picture: Picture | None
    reason: str | None
    revealed: bool
    blurred: bool
    greyscale: bool

    @property
    def available(self) -> bool:
        return self.picture is not None

    @property
    def filename(self) -> str:
        """A safe name for the download: the item's number, never the evidence's path."""
        ext = self.picture.extension if self.picture is not None else "bin"
        return f"item-{self.item_id}-{self.kind}.{ext}"


@dataclass(frozen=True)
class Exposure:
    """A reviewer's exposure today (UTC) and whether a break prompt is due, and why."""

    day: date
    views: int
    reveals: int
    reveals_this_session: int
    minutes: float
    minutes_since_break: float
    break_due: bool
    reasons: list[str]
    settings: CareSettings

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "views": self.views,
            "reveals": self.reveals,
            "reveals_this_session": self.reveals_this_session,
            "minutes": self.minutes,
            "minutes_since_break": self.minutes_since_break,
            "break_due": self.break_due,
            "reasons": self.reasons,
            "limits": {name: getattr(self.settings, name) for name in _LIMITS},
        }


@dataclass(frozen=True)
class DayExposure:
    """One reviewer's views of one case on one UTC day."""

    reviewer: str
    day: date
    views: int
    reveals: int
    minutes: float

    def as_json(self) -> dict[str, Any]:
        return {
            "reviewer": self.reviewer,
            "day": self.day.isoformat(),
            "views": self.views,
            "reveals": self.reveals,
            "minutes": self.minutes,
        }


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


def _intervals(times: Iterable[datetime], span: timedelta) -> list[tuple[datetime, datetime]]:
    """Each view covering ``span`` after it, overlapping ones merged, in time order."""
    merged: list[tuple[datetime, datetime]] = []
    for at in sorted(times):
        if merged and at <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], at + span))
        else:
            merged.append((at, at + span))
    return merged


def _minutes(runs: Iterable[tuple[datetime, datetime]]) -> float:
    return round(sum((end - start).total_seconds() for start, end in runs) / 60, 2)


def _session_of(actor: Actor) -> str:
    return actor.session_id or f"key:{actor.key_id}"


def _person(actor: Actor) -> int:
    if actor.user_id is None:
        raise ConfigError(f"{actor.name!r} is not a person: media views belong to a reviewer")
    return actor.user_id


class ReviewerCare:
    """Reviewer settings, media views (audited) and exposure, over one database."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.cases = CaseStore(db)
        self.clock = clock  # UTC now; a seam for tests of days and breaks

    # -- settings -------------------------------------------------------------------------

    def settings(self, user_id: int) -> CareSettings:
        with self.db.read() as conn:
            return self._settings(conn, user_id)

    def settings_of(self, actor: Actor) -> CareSettings:
        """The actor's own settings (the defaults until they change one)."""
        return self.settings(_person(actor))

    @staticmethod
    def _settings(conn: Connection, user_id: int) -> CareSettings:
        row = conn.execute(
            select(REVIEWER_SETTINGS).where(REVIEWER_SETTINGS.c.user_id == user_id)
        ).first()
        if row is None:
            return CareSettings()
        return CareSettings(**{f.name: getattr(row, f.name) for f in fields(CareSettings)})

    def update_settings(self, actor: Actor, changes: Mapping[str, Any]) -> CareSettings:
        """Change the actor's own settings (the fields in ``changes``; the rest stay)."""
        user_id = _person(actor)
        with self.db.write(lock=f"reviewer_settings:{user_id}") as conn:
            old = self._settings(conn, user_id)
            new = old.changed(changes)
            values = {**new.as_json(), "updated_at": self.clock()}
            exists = conn.execute(
                select(REVIEWER_SETTINGS.c.user_id).where(REVIEWER_SETTINGS.c.user_id == user_id)
            ).first()
            if exists is None:
                conn.execute(insert(REVIEWER_SETTINGS).values(user_id=user_id, **values))
            else:
                conn.execute(
                    update(REVIEWER_SETTINGS)
                    .where(REVIEWER_SETTINGS.c.user_id == user_id)
                    .values(**values)
                )
            diff = {
                k: {"from": v, "to": new.as_json()[k]}
                for k, v in old.as_json().items()
                if new.as_json()[k] != v
            }
            record_audit(
                conn,
                actor=actor.name,
                action="reviewer.settings",
                target=f"user:{actor.name}",
                details={"changed": diff},
            )
        return new

    # -- viewing --------------------------------------------------------------------------

    def view(
        self, actor: Actor, case_ref: str, item_id: int, kind: MediaKind, *, reveal: bool = False
    ) -> ServedMedia:
        """Serve the item's thumbnail or full-size picture to ``actor`` by their settings
        (``reveal``: as it is), recording the view and its audit record. A video's full
        view is its contact sheet, never the video. A case scanned without thumbnails has
        each one made from the evidence when first asked for (:meth:`CaseStore.make_thumbnail`)
        and served like a stored one."""
        if kind not in (THUMBNAIL, MEDIA):
            raise ConfigError(f"unknown media kind {kind!r}")
        user_id = _person(actor)
        case = self.cases.get(case_ref)
        with self.db.read() as conn:
            item = conn.execute(
                select(CASE_ITEMS.c.id, CASE_ITEMS.c.media_type).where(
                    and_(CASE_ITEMS.c.id == item_id, CASE_ITEMS.c.case_id == case.id)
                )
            ).first()
            if item is None:
                raise CaseNotFoundError(f"case {case_ref!r} has no item {item_id}")
            care = self._settings(conn, user_id)
            sheet = conn.execute(
                select(CASE_THUMBNAILS.c.jpeg).where(CASE_THUMBNAILS.c.item_id == item_id)
            ).scalar()
        thumb = MediaRead(True, bytes(sheet)) if sheet is not None else None
        if thumb is None and (kind == THUMBNAIL or item.media_type == "video"):
            # None stored: a scan without thumbnails has it made from the evidence, once.
            thumb = self.cases.make_thumbnail(item_id, actor=actor.name)
        blur, grey = (False, False) if reveal else (care.blur, care.greyscale)
        picture, reason = self._picture(item_id, item.media_type, kind, thumb, blur, grey, care)
        served = ServedMedia(item_id, kind, picture, reason, reveal, blur, grey)
        self._record(actor, user_id, case.id, case.case_uid, served)
        return served

    def _picture(
        self,
        item_id: int,
        media_type: str | None,
        kind: MediaKind,
        thumb: MediaRead | None,
        blur: bool,
        grey: bool,
        care: CareSettings,
    ) -> tuple[Picture | None, str | None]:
        if kind == THUMBNAIL or media_type == "video":
            if thumb is None or thumb.data is None:
                return None, thumb.reason if thumb is not None else "not available"
            source = thumb.data
            if not (blur or grey):
                return Picture(source, "image/jpeg"), None  # the scan's own small JPEG
        else:
            if media_type not in ("image", None):
                return None, f"not available: a {media_type} item has no picture to show"
            read = self.cases.media(item_id)
            if not read.available or read.data is None:
                return None, read.reason or "not available"
            source = read.data
        try:
            if blur or grey:
                return aided(source, blur=blur, strength=care.blur_strength, greyscale=grey), None
            return revealed(source), None
        except DecodeError as exc:
            return None, f"not available: not a picture that can be shown ({exc})"

    def _record(
        self, actor: Actor, user_id: int, case_id: int, case_uid: str, served: ServedMedia
    ) -> None:
        details: dict[str, Any] = {
            "kind": served.kind,
            "available": served.available,
            "revealed": served.revealed,
            "blurred": served.blurred,
            "greyscale": served.greyscale,
            "via": "session" if actor.session_id else "key",
        }
        if served.reason:
            details["reason"] = served.reason
        with self.db.write() as conn:
            if served.available:
                conn.execute(
                    insert(MEDIA_VIEWS).values(
                        user_id=user_id,
                        session=_session_of(actor),
                        case_id=case_id,
                        item_id=served.item_id,
                        kind=served.kind,
                        revealed=served.revealed,
                        at=self.clock(),
                    )
                )
            record_audit(
                conn,
                actor=actor.name,
                action="media.reveal" if served.revealed else "media.view",
                target=f"case:{case_uid}/item:{served.item_id}",
                details=details,
            )

    # -- exposure -------------------------------------------------------------------------

    def exposure(self, actor: Actor) -> Exposure:
        """The actor's exposure today (UTC) and whether a break is due."""
        user_id = _person(actor)
        now = self.clock()
        start = _day_start(now)
        session = _session_of(actor)
        with self.db.read() as conn:
            care = self._settings(conn, user_id)
            rows = conn.execute(
                select(MEDIA_VIEWS.c.at, MEDIA_VIEWS.c.revealed, MEDIA_VIEWS.c.session).where(
                    and_(MEDIA_VIEWS.c.user_id == user_id, MEDIA_VIEWS.c.at >= start)
                )
            ).all()
            in_session = MEDIA_VIEWS.c.session == session
            if actor.session_id is None:  # a key's "session" is the day
                in_session = and_(in_session, MEDIA_VIEWS.c.at >= start)
            session_reveals = conn.execute(
                select(func.count()).where(
                    and_(MEDIA_VIEWS.c.user_id == user_id, MEDIA_VIEWS.c.revealed, in_session)
                )
            ).scalar_one()
        span = timedelta(seconds=care.view_seconds)
        runs = _intervals((_aware(r.at) for r in rows), span)
        minutes = _minutes(runs)
        stretch: list[tuple[datetime, datetime]] = []
        for run in runs:
            if stretch and run[0] - stretch[-1][1] >= BREAK_GAP:
                stretch = []
            stretch.append(run)
        if stretch and now - stretch[-1][1] >= BREAK_GAP:
            stretch = []  # the reviewer has paused since
        since_break = _minutes(stretch)
        reveals = sum(1 for r in rows if r.revealed)
        checks = (
            (care.reveals_per_session, int(session_reveals), "reveals this session"),
            (care.reveals_per_day, reveals, "reveals today"),
            (care.minutes_per_day, minutes, "minutes of media today"),
            (care.break_after_minutes, since_break, "minutes of media without a break"),
        )
        reasons = [
            f"{value:g} {what} (limit {limit})"
            for limit, value, what in checks
            if limit is not None and value >= limit
        ]
        return Exposure(
            day=start.date(),
            views=len(rows),
            reveals=reveals,
            reveals_this_session=int(session_reveals),
            minutes=minutes,
            minutes_since_break=since_break,
            break_due=bool(reasons),
            reasons=reasons,
            settings=care,
        )

    def case_exposure(self, case_ref: str) -> list[DayExposure]:
        """Every reviewer's views of one case per UTC day (for a lead's progress page),
        by day then reviewer. Minutes count each reviewer's own ``view_seconds``."""
        case = self.cases.get(case_ref)
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    MEDIA_VIEWS.c.user_id,
                    USERS.c.name,
                    MEDIA_VIEWS.c.at,
                    MEDIA_VIEWS.c.revealed,
                )
                .join(USERS, USERS.c.id == MEDIA_VIEWS.c.user_id)
                .where(MEDIA_VIEWS.c.case_id == case.id)
                .order_by(MEDIA_VIEWS.c.at)
            ).all()
            spans = {
                uid: timedelta(seconds=self._settings(conn, uid).view_seconds)
                for uid in {int(r.user_id) for r in rows}
            }
        groups: dict[tuple[date, str], list[Any]] = {}
        for r in rows:
            groups.setdefault((_aware(r.at).date(), r.name), []).append(r)
        out = []
        for (day, name), views in sorted(groups.items()):
            span = spans[int(views[0].user_id)]
            out.append(
                DayExposure(
                    reviewer=name,
                    day=day,
                    views=len(views),
                    reveals=sum(1 for v in views if v.revealed),
                    minutes=_minutes(_intervals((_aware(v.at) for v in views), span)),
                )
            )
        return out
