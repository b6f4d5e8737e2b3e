"""A case scanned without thumbnails (``hashwatch scan --no-thumbnails``) is reviewed as one
scanned with them: each thumbnail is made from the evidence the first time a reviewer's page
asks for it, stored once, and served through the same care (blur, greyscale, exposure).

One generated tree (three benign pictures, a zip holding two more, a short generated clip, a
note) is scanned twice, with thumbnails and without; each test imports both cases into its
own database and looks at them over HTTP with a reviewer's key. The thumbnails the scan with
thumbnails made are the reference: the ones made on demand must be the same bytes."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

import hashwatch.review.media as media
from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.report.review_data import read_thumbnails
from hashwatch.review.exposure import ReviewerCare
from hashwatch.review.media import MediaRead
from hashwatch.store.audit import AuditEvent, AuditTrail
from hashwatch.store.service import KeyStore, Role
from hashwatch.store.users import UserRole, UserStore
from hashwatch.web.app import create_app
from tests.clips import write_clip
from tests.media import jpeg_bytes, scene
from tests.serve_helpers import bearer, settings

CHEAP = PasswordHasher(1, 8 * 1024, 1)  # argon2id at a test's cost


@dataclass(frozen=True)
class Scanned:
    evidence: Path
    with_thumbs: Path  # the case directory of the scan that made thumbnails
    without: Path  # the case directory of the scan with --no-thumbnails
    reference: dict[str, bytes]  # the first scan's thumbnail of each item, by file name


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    tmp = tmp_path_factory.mktemp("on-demand")
    evidence = tmp / "seized"
    evidence.mkdir()
    (evidence / "beach.jpg").write_bytes(jpeg_bytes(scene(80)))
    (evidence / "field.jpg").write_bytes(jpeg_bytes(scene(81, (480, 640))))
    (evidence / "hills.png").write_bytes(_png(82))
    with zipfile.ZipFile(evidence / "album.zip", "w") as archive:
        archive.writestr("trip/lake.jpg", jpeg_bytes(scene(83)))
        archive.writestr("trip/road.jpg", jpeg_bytes(scene(84)))
    write_clip(evidence / "clip.mp4", [85, 86])
    (evidence / "note.txt").write_text("a benign note\n")
    app = Hashwatch(Settings(database_url=f"sqlite:///{tmp / 'scan.sqlite3'}", data_dir=tmp))
    try:
        app.scan([evidence], tmp / "with", workers=1)
        app.scan([evidence], tmp / "without", workers=1, thumbnails=False)
    finally:
        app.close()
    assert (tmp / "without" / "thumbnails.jsonl").read_bytes() == b""
    reference = {
        _name(path): jpeg for _, path, jpeg in read_thumbnails(tmp / "with" / "thumbnails.jsonl")
    }
    assert set(reference) == {
        "beach.jpg",
        "field.jpg",
        "hills.png",
        "lake.jpg",
        "road.jpg",
        "clip.mp4",
    }
    return Scanned(evidence, tmp / "with", tmp / "without", reference)


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    scene(seed).save(buf, "PNG")
    return buf.getvalue()


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


@dataclass
class Desk:
    hw: Hashwatch
    client: TestClient
    ann: dict[str, str]  # a reviewer's key
    cases: dict[str, str]  # "with" / "without": the case id
    items: dict[tuple[str, str], int]  # (case, file name): item id

    def get(self, case: str, name: str, reveal: bool = False) -> Response:
        url = f"/v1/cases/{self.cases[case]}/items/{self.items[case, name]}/thumbnail"
        answer: Response = self.client.get(url + ("?reveal=1" if reveal else ""), headers=self.ann)
        return answer


def _desk(hw: Hashwatch, scanned: Scanned) -> Iterator[Desk]:
    cases, items = {}, {}
    for label, case_dir in (("with", scanned.with_thumbs), ("without", scanned.without)):
        done = hw.cases.import_case(case_dir, actor="examiner")
        cases[label] = done.case.case_uid
        for item in hw.cases.items(done.case.case_uid):
            items[label, _name(item.path)] = item.id
    UserStore(hw.db, hasher=CHEAP).add("ann", UserRole.REVIEWER, "ann's long passphrase")
    ann = bearer(KeyStore(hw.db).create("ann-key", Role.MATCHER, user="ann").token)
    app = create_app(hw, settings(background=False))
    with TestClient(app) as client:
        yield Desk(hw, client, ann, cases, items)


@pytest.fixture
def desk(sqlite_hw: Hashwatch, scanned: Scanned) -> Iterator[Desk]:
    yield from _desk(sqlite_hw, scanned)


@pytest.fixture
def counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The evidence items read, in order (the review's reader, counted)."""
    reads: list[str] = []
    real = media.read_evidence_item

    def counting(path: str, sha256: str | None, **kw: object) -> MediaRead:
        reads.append(_name(path))
        return real(path, sha256, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(media, "read_evidence_item", counting)
    return reads


def _thumbnail_events(hw: Hashwatch) -> list[AuditEvent]:
    return list(AuditTrail(hw.db).events(action_prefix="case.thumbnail", limit=100))


def test_a_reviewer_gets_the_thumbnail_the_scan_would_have_made(
    desk: Desk, scanned: Scanned
) -> None:
    for name in ("beach.jpg", "field.jpg", "hills.png", "lake.jpg", "clip.mp4"):
        shown = desk.get("without", name, reveal=True)
        assert shown.status_code == 200, (name, shown.text)
        assert shown.headers["content-type"] == "image/jpeg"
        assert shown.content == scanned.reference[name], name
        assert desk.hw.cases.thumbnail(desk.items["without", name]) == scanned.reference[name]
    with Image.open(io.BytesIO(scanned.reference["beach.jpg"])) as landscape:
        assert landscape.size == (160, 120)
    with Image.open(io.BytesIO(scanned.reference["field.jpg"])) as portrait:
        assert portrait.size == (120, 160)
    events = _thumbnail_events(desk.hw)
    assert len(events) == 5
    assert {e.actor for e in events} == {"ann"}
    lake = desk.items["without", "lake.jpg"]
    assert any((e.target or "").endswith(f"/item:{lake}") for e in events)
    assert desk.hw.cases.status(desk.cases["without"]).thumbnails == 5


def test_a_thumbnail_is_made_once_and_the_evidence_is_not_read_again(
    desk: Desk, counted_reads: list[str]
) -> None:
    first = desk.get("without", "road.jpg")
    assert first.status_code == 200
    assert counted_reads == ["road.jpg"]  # an archive member, read in place
    again = desk.get("without", "road.jpg")
    revealed = desk.get("without", "road.jpg", reveal=True)
    assert again.status_code == revealed.status_code == 200
    assert again.content == first.content
    assert counted_reads == ["road.jpg"]
    assert len(_thumbnail_events(desk.hw)) == 1

    # Items the scan with thumbnails made none for stay as they were: nothing is read.
    note = desk.get("with", "note.txt")
    assert note.status_code == 404
    assert note.json() == {"detail": "not available: the scan made no thumbnail for this item"}
    assert desk.get("without", "note.txt").status_code == 404
    assert counted_reads == ["road.jpg"]


def test_a_made_thumbnail_is_blurred_and_counted_like_a_stored_one(desk: Desk) -> None:
    stored = desk.get("with", "beach.jpg")
    made = desk.get("without", "beach.jpg")
    for shown in (stored, made):
        assert shown.status_code == 200
        assert shown.headers["x-hashwatch-blurred"] == "1"
        assert shown.headers["x-hashwatch-greyscale"] == "1"
        assert shown.headers["cache-control"] == "no-store"
    assert made.content == stored.content
    exposure = desk.client.get("/v1/me/exposure", headers=desk.ann).json()
    assert exposure["views"] == 2 and exposure["reveals"] == 0
    views = AuditTrail(desk.hw.db).events(action_prefix="media.view", limit=10)
    assert len(list(views)) == 2


def test_evidence_moved_away_is_not_available_and_made_once_it_is_back(
    desk: Desk, scanned: Scanned
) -> None:
    away = scanned.evidence.with_name("seized-elsewhere")
    scanned.evidence.rename(away)
    try:
        gone = desk.get("without", "hills.png")
        lake = desk.get("without", "lake.jpg")
    finally:
        away.rename(scanned.evidence)
    assert gone.status_code == lake.status_code == 404
    reason = "not available: the evidence file is not reachable at its recorded path"
    assert gone.json() == lake.json() == {"detail": reason}
    assert desk.hw.cases.thumbnail(desk.items["without", "hills.png"]) is None
    assert _thumbnail_events(desk.hw) == []

    back = desk.get("without", "hills.png", reveal=True)
    assert back.status_code == 200
    assert back.content == scanned.reference["hills.png"]


def test_a_video_file_s_sheet_is_made_from_the_file_without_holding_it_whole(
    desk: Desk, scanned: Scanned, counted_reads: list[str]
) -> None:
    clip = scanned.evidence / "clip.mp4"
    original = clip.read_bytes()
    clip.write_bytes(original + b"changed")
    try:
        changed = desk.get("without", "clip.mp4")
    finally:
        clip.write_bytes(original)
    assert changed.status_code == 404
    assert changed.json() == {
        "detail": "not available: the evidence changed since the scan (SHA-256 differs)"
    }
    shown = desk.get("without", "clip.mp4", reveal=True)
    assert shown.status_code == 200
    assert shown.content == scanned.reference["clip.mp4"]
    # Checked and decoded from the open file: the whole-item reader was never used.
    assert "clip.mp4" not in counted_reads


@pytest.fixture
def both_desk(hw: Hashwatch, scanned: Scanned) -> Iterator[Desk]:
    yield from _desk(hw, scanned)


def test_two_requests_at_once_both_succeed_and_store_one_thumbnail(
    both_desk: Desk, scanned: Scanned, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = both_desk
    # Both requests read the evidence before either stores: the store must take one.
    together = threading.Barrier(2, timeout=60)
    real = media.read_evidence_item

    def reading(path: str, sha256: str | None, **kw: object) -> MediaRead:
        together.wait()
        return real(path, sha256, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(media, "read_evidence_item", reading)
    cases = ReviewerCare(desk.hw.db).cases
    item = desk.items["without", "field.jpg"]
    results: list[bytes | None] = []
    errors: list[Exception] = []

    def ask() -> None:
        try:
            made = cases.make_thumbnail(item, actor="ann")
            results.append(made.data)
        except Exception as exc:  # the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and results == [scanned.reference["field.jpg"]] * 2
    assert len(_thumbnail_events(desk.hw)) == 1
    assert desk.get("without", "field.jpg", reveal=True).status_code == 200
