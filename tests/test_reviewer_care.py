"""A reviewer's care: pictures blurred and greyscale by default, a reveal shows one as it is,
every view audited, per-reviewer settings, exposure counted and a break prompted.

One generated tree (two benign scenes as PNG, a short generated clip, a note) is scanned
once; each test imports the case into its own database (SQLite, and PostgreSQL where the
store's queries matter) and looks at it as reviewers do, over HTTP with their keys or a
signed-in session."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.review.cases import CaseItem
from hashwatch.review.exposure import ReviewerCare
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import KeyStore, Role
from hashwatch.store.users import Actor, UserRole, UserStore
from hashwatch.web.app import create_app
from tests.clips import write_clip
from tests.media import scene
from tests.serve_helpers import bearer, make_key, settings
from tests.test_serve_intake import MiB, Sent, call, endless

CHEAP = PasswordHasher(1, 8 * 1024, 1)  # argon2id at a test's cost
PASSWORD = "ann's long passphrase"


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(evidence, case directory) of one scan shared by this file's tests."""
    tmp = tmp_path_factory.mktemp("care")
    evidence = tmp / "seized"
    evidence.mkdir()
    (evidence / "beach.png").write_bytes(_png(70))
    (evidence / "field.png").write_bytes(_png(71))
    write_clip(evidence / "clip.mp4", [72, 73])
    (evidence / "note.txt").write_text("a benign note\n")
    app = Hashwatch(Settings(database_url=f"sqlite:///{tmp / 'scan.sqlite3'}", data_dir=tmp))
    try:
        app.scan([evidence], tmp / "case", workers=1)
    finally:
        app.close()
    yield evidence, tmp / "case"


@dataclass
class Desk:
    """A case in the database, its reviewers' keys, and the service."""

    hw: Hashwatch
    app: FastAPI
    client: TestClient
    case: str
    items: dict[str, CaseItem]
    ann: dict[str, str]  # a reviewer's key
    lee: dict[str, str]  # a lead's key

    def url(self, name: str, what: str, reveal: bool = False) -> str:
        item = self.items[name]
        return f"/v1/cases/{self.case}/items/{item.id}/{what}" + ("?reveal=1" if reveal else "")


@pytest.fixture
def desk(hw: Hashwatch, scanned: tuple[Path, Path]) -> Iterator[Desk]:
    done = hw.cases.import_case(scanned[1], actor="examiner")
    users = UserStore(hw.db, hasher=CHEAP)
    users.add("ann", UserRole.REVIEWER, PASSWORD, actor="setup")
    users.add("lee", UserRole.LEAD, "lee's long passphrase", actor="setup")
    keys = KeyStore(hw.db)
    ann = bearer(keys.create("ann-key", Role.MATCHER, user="ann").token)
    lee = bearer(keys.create("lee-key", Role.MATCHER, user="lee").token)
    items = {i.path.rsplit("/", 1)[-1]: i for i in hw.cases.items(done.case.case_uid)}
    app = create_app(hw, settings(background=False))
    app.state.auth.users.hasher = CHEAP
    with TestClient(app) as client:
        yield Desk(hw, app, client, done.case.case_uid, items, ann, lee)


def _pixels(data: bytes) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _is_greyscale(data: bytes) -> bool:
    rgb = _pixels(data)
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _media_events(hw: Hashwatch) -> list[Any]:
    return list(reversed(AuditTrail(hw.db).events(action_prefix="media.", limit=1000)))


def test_a_reviewer_sees_blurred_greyscale_pictures_and_a_reveal_shows_the_original(
    desk: Desk, scanned: tuple[Path, Path]
) -> None:
    original = _pixels((scanned[0] / "beach.png").read_bytes())
    stored_thumb = desk.hw.cases.thumbnail(desk.items["beach.png"].id)
    assert stored_thumb is not None

    thumb = desk.client.get(desk.url("beach.png", "thumbnail"), headers=desk.ann)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content != stored_thumb and _is_greyscale(thumb.content)
    assert thumb.headers["cache-control"] == "no-store"
    assert thumb.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in thumb.headers["content-security-policy"]
    item_id = desk.items["beach.png"].id
    assert thumb.headers["content-disposition"] == (
        f'inline; filename="item-{item_id}-thumbnail.jpg"'
    )

    full = desk.client.get(desk.url("beach.png", "media"), headers=desk.ann)
    assert full.status_code == 200 and _is_greyscale(full.content)
    shown = _pixels(full.content)
    assert shown.shape == original.shape
    # blurred: the shapes' sharp edges (steps between neighbouring pixels) are smoothed away
    grey = np.asarray(Image.fromarray(original.astype(np.uint8)).convert("L"), dtype=np.int16)
    assert np.abs(np.diff(shown[..., 0], axis=1)).max() < np.abs(np.diff(grey, axis=1)).max() / 4

    revealed = desk.client.get(desk.url("beach.png", "media", reveal=True), headers=desk.ann)
    assert revealed.status_code == 200 and revealed.headers["content-type"] == "image/png"
    assert np.array_equal(_pixels(revealed.content), original)  # the original pixels
    assert (
        desk.client.get(desk.url("beach.png", "thumbnail", reveal=True), headers=desk.ann).content
        == stored_thumb
    )

    events = _media_events(desk.hw)
    assert [e.action for e in events] == [
        "media.view",
        "media.view",
        "media.reveal",
        "media.reveal",
    ]
    assert {e.actor for e in events} == {"ann"}
    assert {e.target for e in events} == {f"case:{desk.case}/item:{item_id}"}
    assert [e.details["kind"] for e in events] == ["thumbnail", "media", "media", "thumbnail"]
    assert events[0].details["blurred"] and events[0].details["greyscale"]
    assert not events[2].details["blurred"] and events[2].details["via"] == "key"
    text = json.dumps([e.as_dict() for e in events])
    item = desk.hw.cases.item(item_id)
    assert item.sha256 and item.sha256 not in text


def test_a_video_is_shown_as_its_contact_sheet_and_a_note_has_no_picture(desk: Desk) -> None:
    sheet = desk.hw.cases.thumbnail(desk.items["clip.mp4"].id)
    assert sheet is not None
    blurred = desk.client.get(desk.url("clip.mp4", "media"), headers=desk.ann)
    assert blurred.status_code == 200 and _is_greyscale(blurred.content)
    shown = desk.client.get(desk.url("clip.mp4", "media", reveal=True), headers=desk.ann)
    assert shown.headers["content-type"] == "image/jpeg"
    assert shown.content == sheet  # the scan's contact sheet, never the video
    note = desk.client.get(desk.url("note.txt", "media"), headers=desk.ann)
    assert note.status_code == 404 and note.json()["detail"].startswith("not available:")


def test_missing_evidence_is_404_not_available_and_the_thumbnail_still_shows(
    desk: Desk, scanned: tuple[Path, Path]
) -> None:
    picture = scanned[0] / "field.png"
    aside = picture.with_name("field.png.aside")
    picture.rename(aside)
    try:
        gone = desk.client.get(desk.url("field.png", "media", reveal=True), headers=desk.ann)
    finally:
        aside.rename(picture)
    assert gone.status_code == 404 and gone.headers["cache-control"] == "no-store"
    assert gone.json() == {
        "detail": "not available: the evidence file is not reachable at its recorded path"
    }
    assert desk.client.get(desk.url("field.png", "thumbnail"), headers=desk.ann).status_code == 200
    refused, shown = _media_events(desk.hw)
    assert refused.action == "media.reveal" and refused.details["available"] is False
    assert shown.details["available"] is True
    # only what was shown counts as exposure
    assert desk.client.get("/v1/me/exposure", headers=desk.ann).json()["views"] == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_only_reviewers_see_media_and_a_refusal_reads_no_body(desk: Desk) -> None:
    path = desk.url("beach.png", "thumbnail")
    assert desk.client.get(path).status_code == 401
    assert desk.client.get(path, headers=make_key(desk.hw, Role.MATCHER)).status_code == 403
    assert desk.client.get(path, headers=make_key(desk.hw, Role.ADMIN)).status_code == 403
    assert desk.client.get("/v1/me/exposure").status_code == 401
    assert _media_events(desk.hw) == []
    json_ct = {"Content-Type": "application/json"}
    for headers, expected in (
        (json_ct, 401),
        ({**json_ct, **make_key(desk.hw, Role.MATCHER, "another")}, 403),
    ):
        sent = Sent()
        status, _h, body = call(
            desk.app, "PUT", "/v1/me/settings", headers, endless(b"{" * MiB, 50 * MiB), sent
        )
        assert (status, sent.taken) == (expected, 0), body
    # a reviewer is not a lead: the case's exposure is the lead's
    exposure = f"/v1/cases/{desk.case}/exposure"
    assert desk.client.get(exposure, headers=desk.ann).status_code == 403
    assert desk.client.get(exposure, headers=desk.lee).status_code == 200


def test_settings_round_trip_need_csrf_with_a_session_and_apply(
    desk: Desk, scanned: tuple[Path, Path]
) -> None:
    client = desk.client
    signed = client.post("/v1/session", json={"name": "ann", "password": PASSWORD})
    assert signed.status_code == 200
    csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
    defaults = client.get("/v1/me/settings").json()
    assert defaults["blur"] is True and defaults["greyscale"] is True
    change = {"blur": False, "greyscale": False, "reveals_per_day": None}
    assert client.put("/v1/me/settings", json=change).status_code == 403  # no CSRF token
    assert client.put("/v1/me/settings", json={"blur_strength": 0}, headers=csrf).status_code == 422
    assert client.put("/v1/me/settings", json={"colour": 1}, headers=csrf).status_code == 422
    saved = client.put("/v1/me/settings", json=change, headers=csrf)
    assert saved.status_code == 200
    assert saved.json() == {**defaults, **change}
    assert client.get("/v1/me/settings").json() == saved.json()
    assert client.get("/v1/me/settings", headers=desk.lee).json() == defaults  # ann's alone

    # blur and greyscale off: the original colours without a reveal
    full = client.get(desk.url("beach.png", "media"))
    original = _pixels((scanned[0] / "beach.png").read_bytes())
    assert full.status_code == 200 and np.array_equal(_pixels(full.content), original)
    # greyscale alone: the picture's detail, in grey
    client.put("/v1/me/settings", json={"greyscale": True}, headers=csrf)
    grey = client.get(desk.url("beach.png", "media"))
    assert _is_greyscale(grey.content) and grey.headers["x-hashwatch-blurred"] == "0"
    events = _media_events(desk.hw)
    assert [e.action for e in events] == ["media.view", "media.view"]
    assert events[0].details["via"] == "session"
    (change_event, _) = AuditTrail(desk.hw.db).events(action_prefix="reviewer.", limit=10)
    assert change_event.actor == "ann" and change_event.details["changed"]["greyscale"] == {
        "from": False,
        "to": True,
    }


def test_exposure_counts_reveals_and_prompts_a_break(desk: Desk) -> None:
    client = desk.client
    set_limit = client.put("/v1/me/settings", json={"reveals_per_session": 2}, headers=desk.ann)
    assert set_limit.status_code == 200
    start = client.get("/v1/me/exposure", headers=desk.ann).json()
    assert (start["views"], start["reveals"], start["break_due"]) == (0, 0, False)
    assert start["day"] == datetime.now(UTC).date().isoformat()
    client.get(desk.url("beach.png", "thumbnail"), headers=desk.ann)
    client.get(desk.url("beach.png", "media", reveal=True), headers=desk.ann)
    one = client.get("/v1/me/exposure", headers=desk.ann).json()
    assert (one["views"], one["reveals"], one["break_due"]) == (2, 1, False)
    assert 0 < one["minutes"] < 1  # two views within seconds: about one view's 10 s
    client.get(desk.url("field.png", "media", reveal=True), headers=desk.ann)
    due = client.get("/v1/me/exposure", headers=desk.ann).json()
    assert due["reveals_this_session"] == 2 and due["break_due"] is True
    assert due["reasons"] == ["2 reveals this session (limit 2)"]
    assert client.get("/v1/me/exposure", headers=desk.lee).json()["break_due"] is False

    per_day = client.get(f"/v1/cases/{desk.case}/exposure", headers=desk.lee).json()
    assert per_day["days"] == [
        {
            "reviewer": "ann",
            "day": due["day"],
            "views": 3,
            "reveals": 2,
            "minutes": due["minutes"],
        }
    ]


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_minutes_come_from_view_times_and_a_pause_ends_a_stretch(desk: Desk) -> None:
    ann = UserStore(desk.hw.db).get("ann")
    actor = Actor(0, "ann", UserRole.REVIEWER, ann.id, session_id="s" * 64)
    clock = Clock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    care = ReviewerCare(desk.hw.db, clock=clock)
    care.update_settings(actor, {"view_seconds": 30, "break_after_minutes": 3})
    item = desk.items["beach.png"].id
    for _ in range(12):  # a view every 20 s for 4 minutes: each covers 30 s, overlaps once
        care.view(actor, desk.case, item, "thumbnail")
        clock.now += timedelta(seconds=20)
    busy = care.exposure(actor)
    assert busy.views == 12 and busy.minutes == pytest.approx((11 * 20 + 30) / 60, abs=0.01)
    assert busy.break_due and busy.reasons == ["4.17 minutes of media without a break (limit 3)"]
    clock.now += timedelta(minutes=6)  # a pause of 5 minutes after the last view ends
    rested = care.exposure(actor)
    assert not rested.break_due and rested.minutes == busy.minutes
    assert rested.minutes_since_break == 0
    clock.now += timedelta(days=1)  # a new day starts at zero
    assert care.exposure(actor).views == 0
    days = care.case_exposure(desk.case)
    assert [(d.reviewer, d.day.isoformat(), d.views) for d in days] == [("ann", "2026-12-07", 12)]


def test_an_unknown_case_or_another_cases_item_is_404(desk: Desk) -> None:
    item = desk.items["beach.png"].id
    for case, item_id, status in (
        ("no-such-case", item, 404),
        ("²", item, 404),
        (desk.case, 10**9, 404),
        ("x\x00y", item, 422),  # no case name holds a control character
    ):
        path = f"/v1/cases/{quote(case)}/items/{item_id}/media"
        answer = desk.client.get(path, headers=desk.ann)
        assert answer.status_code == status, (case, answer.text)
    assert desk.client.get("/v1/cases/%C2%B2/exposure", headers=desk.lee).status_code == 404
    assert _media_events(desk.hw) == []  # nothing was viewed
