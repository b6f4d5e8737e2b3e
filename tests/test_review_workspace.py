"""The workspace around the queue: a reviewer's settings and exposure page with its break
prompt; splitting an item off its cluster, marking a target for a second look and a lead
revoking a decision, all from the pages; the second-look lane and progress over the JSON
API; a decision's failed list step retried by the next decision and by
``hashwatch cases apply``. The scan of ``tests/test_review_consensus.py`` (generated benign
pictures) is shared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.review.consensus import ReviewStore
from hashwatch.review.exposure import ReviewerCare
from hashwatch.review.second_look import SecondLooks
from hashwatch.review.votes import Target, VoteChoice
from hashwatch.store.audit import AuditTrail
from hashwatch.store.users import Actor, UserStore
from hashwatch.web.app import create_app
from tests.inprocess_cli import Run
from tests.serve_helpers import settings
from tests.test_review_consensus import (
    CASE,
    IGNORABLE,
    KNOWN,
    _beach,
    _by_name,
    imported,
    people,
    run,
    scanned,
)
from tests.test_review_pages import _setup, _sign_in

__all__ = ["run", "scanned"]  # fixtures of tests/test_review_consensus.py, used here


def _garden(hw: Hashwatch) -> Target:
    """The cluster of the one garden picture (a cluster of one)."""
    number = hw.cases.item(_by_name(hw)["garden.jpg"]).cluster_number
    assert number is not None
    return Target(cluster=number)


def _actions(hw: Hashwatch, prefix: str) -> list[str]:
    return [e.action for e in AuditTrail(hw.db).events(action_prefix=prefix)]


def test_a_reviewer_changes_their_viewing_aids_and_sees_the_break_prompt(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    hw = sqlite_hw
    app = _setup(hw, scanned)
    ann, csrf = _sign_in(app, "ann")
    page = ann.get("/review/me")
    assert page.status_code == 200
    assert re.search(r'name="blur" value="1" checked', page.text)
    assert "Pictures shown</th><td>0<" in page.text and "Time for a break" not in page.text
    assert 'href="/review/me"' in ann.get("/review").text  # linked from every page

    wanted = {
        "greyscale": "1",
        "greyscale_shown": "1",
        "blur_shown": "1",  # blur unticked
        "blur_strength": "60",
        "view_seconds": "20",
        "reveals_per_session": "1",
        "reveals_per_day": "",  # off
        "minutes_per_day": "120",
        "break_after_minutes": "50",
    }
    assert ann.post("/review/me", data=wanted).status_code == 403
    assert _actions(hw, "reviewer.settings") == []
    saved = ann.post("/review/me", data=wanted | {"csrf_token": csrf})
    assert saved.status_code == 303 and saved.headers["location"] == "/review/me?saved=1"
    who = _actor(hw, "ann")
    now = ReviewerCare(hw.db).settings_of(who)
    assert (now.blur, now.greyscale, now.blur_strength, now.view_seconds) == (False, True, 60, 20)
    assert (now.reveals_per_session, now.reveals_per_day) == (1, None)
    assert _actions(hw, "reviewer.settings") == ["reviewer.settings"]
    shown = ann.get("/review/me?saved=1").text
    assert "Your settings are saved." in shown and not re.search(r'name="blur" value="1" c', shown)

    bad = ann.post("/review/me", data=wanted | {"csrf_token": csrf, "view_seconds": "many"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text and "view_seconds" in bad.text
    bad = ann.post("/review/me", data=wanted | {"csrf_token": csrf, "blur_strength": "500"})
    assert bad.status_code == 400 and "blur_strength" in bad.text

    item = hw.cases.items(CASE)[0].id
    shown_picture = ann.get(f"/v1/cases/{CASE}/items/{item}/thumbnail?reveal=1")
    assert shown_picture.status_code == 200
    after = ann.get("/review/me").text
    assert "Reveals this session</th><td>1<" in after
    assert 'id="break-prompt"' in after and "1 reveals this session (limit 1)" in after
    target = ann.get(f"/review/cases/{CASE}/targets/{_beach(hw)}").text
    assert 'id="break-prompt"' in target  # the prompt follows the reviewer to the next picture


def _actor(hw: Hashwatch, name: str) -> Actor:
    info = UserStore(hw.db).get(name)
    return Actor(0, name, info.role, user_id=info.id)


def test_split_second_look_and_revoke_from_the_pages(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    hw = sqlite_hw
    app = _setup(hw, scanned)
    beach = str(_beach(hw))
    names = _by_name(hw)
    small = names["beach-small.jpg"]
    ann, ann_csrf = _sign_in(app, "ann")
    page = ann.get(f"/review/cases/{CASE}/targets/{beach}").text
    assert page.count('class="split"') == 2  # a split button on each member
    assert f'aria-label="split item {small} off its cluster, to decide it alone"' in page
    assert 'data-key="x"' in page and 'data-key="f"' in page

    action = f"/review/cases/{CASE}/items/{small}/split"
    assert ann.post(action, data={}).status_code == 403
    assert hw.cases.item(small).cluster_number is not None and _actions(hw, "case.split") == []
    split = ann.post(action, data={"csrf_token": ann_csrf})
    assert split.status_code == 303 and split.headers["location"].endswith(f"item%3A{small}")
    assert _actions(hw, "case.split") == ["case.split"]
    alone = ann.get(split.headers["location"]).text
    assert "Your vote" in alone and 'class="split"' not in alone
    again = ann.post(action, data={"csrf_token": ann_csrf})
    assert again.status_code == 409 and "in no cluster" in again.text

    look = f"/review/cases/{CASE}/targets/{beach}/second-look"
    assert ann.post(look, data={"note": "the sign"}).status_code == 403
    marked = ann.post(look, data={"csrf_token": ann_csrf, "note": "check the sign"})
    assert marked.status_code == 303
    bob, bob_csrf = _sign_in(app, "bob")
    queue = bob.get(f"/review/cases/{CASE}").text
    lane = queue[queue.index("Needs a second look") :]
    assert f'data-target="{beach}"' in lane and "ann: check the sign" in lane
    # bob clears his own mark only (he has none); a lead clears every mark
    bob.post(look, data={"csrf_token": bob_csrf, "action": "clear"})
    assert [m.marked_by for m in SecondLooks(hw.db).marks(CASE, Target.parse(beach))] == ["ann"]
    lee, lee_csrf = _sign_in(app, "lee")
    assert "Needs a second look" in lee.get(f"/review/cases/{CASE}/lead").text
    lee.post(look, data={"csrf_token": lee_csrf, "action": "clear"})
    assert SecondLooks(hw.db).lane(CASE) == []
    assert "Needs a second look</h2>" not in bob.get(f"/review/cases/{CASE}").text
    assert sorted(_actions(hw, "case.second_look")) == [
        "case.second_look",
        "case.second_look.cleared",
    ]

    review = ReviewStore(hw.db, hw.lists)
    decided = review.decide(CASE, Target.parse(beach), VoteChoice("1"), actor=_actor(hw, "lee"))
    assert hw.lists.get(KNOWN).counts.get("active") == 1  # the member left after the split
    listed = ann.get(f"/review/cases/{CASE}/decisions").text
    assert f'data-decision="{decided.id}"' in listed and "Revoke</button>" not in listed
    revoke = f"/review/cases/{CASE}/decisions/{decided.id}/revoke"
    refused = ann.post(revoke, data={"csrf_token": ann_csrf, "reason": "mine"})
    assert refused.status_code == 403
    lead_view = lee.get(f"/review/cases/{CASE}/decisions").text
    assert f'aria-label="revoke decision {decided.id} and its list entries"' in lead_view
    no_reason = lee.post(revoke, data={"csrf_token": lee_csrf, "reason": " "})
    assert no_reason.status_code == 400 and "say why" in no_reason.text
    assert lee.post(revoke, data={"reason": "misread"}).status_code == 403
    done = lee.post(revoke, data={"csrf_token": lee_csrf, "reason": "misread", "back": "target"})
    assert done.status_code == 303 and done.headers["location"].endswith(beach.replace(":", "%3A"))
    shown = lee.get(done.headers["location"]).text
    assert "revoked by lee" in shown and "misread" in shown and 'class="decision revoked"' in shown
    assert "Decide as lead" in shown  # back in the lead's queue
    assert hw.lists.get(KNOWN).counts.get("active", 0) == 0
    assert _actions(hw, "case.decision.revoked") == ["case.decision.revoked"]


def _api(app: FastAPI, name: str) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(app)
    signed = client.post(
        "/v1/session", json={"name": name, "password": f"{name}'s long passphrase"}
    )
    assert signed.status_code == 200
    return client, {"X-CSRF-Token": signed.json()["csrf_token"]}


def test_second_look_lane_and_progress_over_the_api(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    imported(hw, scanned[1])
    people(hw)
    app = create_app(hw, settings(background=False))
    beach = str(_beach(hw))
    garden = str(_garden(hw))
    ann, ann_h = _api(app, "ann")
    bob, bob_h = _api(app, "bob")
    lee, lee_h = _api(app, "lee")
    mark = f"/v1/cases/{CASE}/targets/{garden}/second-look"
    assert ann.put(mark, json={"note": "blurry"}).status_code == 403  # no CSRF token
    answer = ann.put(mark, json={"note": "blurry"}, headers=ann_h)
    assert answer.status_code == 200 and answer.json()["marks"][0]["note"] == "blurry"
    assert bob.put(mark, json={}, headers=bob_h).status_code == 200
    assert ann.put(mark, json={"note": "very blurry"}, headers=ann_h).status_code == 200
    assert ann.put(mark, json={"other": 1}, headers=ann_h).status_code == 422
    missing = f"/v1/cases/{CASE}/targets/cluster:999/second-look"
    assert ann.put(missing, json={}, headers=ann_h).status_code == 404
    (entry,) = bob.get(f"/v1/cases/{CASE}/second-look").json()
    assert entry["target"] == garden and entry["state"] == "pending"
    assert [(m["marked_by"], m["note"]) for m in entry["marks"]] == [
        ("ann", "very blurry"),
        ("bob", None),
    ]
    assert bob.delete(mark, headers=bob_h).json() == {"target": garden, "cleared": 1}
    assert len(ann.get(f"/v1/cases/{CASE}/second-look").json()[0]["marks"]) == 1
    assert lee.delete(mark, headers=lee_h).json()["cleared"] == 1
    assert ann.get(f"/v1/cases/{CASE}/second-look").json() == []

    for client, headers, code in ((ann, ann_h, "1"), (bob, bob_h, "1"), (lee, lee_h, "2")):
        vote = f"/v1/cases/{CASE}/targets/{beach}/vote"
        assert client.put(vote, json={"category": code}, headers=headers).status_code == 200
    item = _by_name(hw)["beach.jpg"]
    assert ann.get(f"/v1/cases/{CASE}/items/{item}/thumbnail?reveal=1").status_code == 200
    mine = ann.get(f"/v1/cases/{CASE}/progress").json()
    assert mine["clusters_by_review"] == {"settled": 0, "pending": 1, "voted": 0, "disputed": 1}
    assert [r["reviewer"] for r in mine["reviewers"]] == ["ann"]  # a reviewer sees their own
    (ann_row,) = mine["reviewers"]
    assert ann_row["votes"] == 1 and ann_row["reveals"] == 1 and ann_row["minutes"] > 0
    assert ann_row["days"][0]["votes"] == 1 and ann_row["days"][0]["views"] == 1
    every = lee.get(f"/v1/cases/{CASE}/progress").json()
    assert [r["reviewer"] for r in every["reviewers"]] == ["ann", "bob", "lee"]
    assert every["second_look"] == 0 and every["list_steps_pending"] == 0

    page = lee.get(f"/review/cases/{CASE}/progress")
    assert (
        page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    )
    text = page.text
    # the case's two; votes of each reviewer; ann's reveals and seconds of media
    assert text.count("<svg") == 2 + 3 + 2 and "ann: seconds of media per day" in text
    assert 'role="img"' in text and "<desc" in text and "disputed: 1" in text
    assert "Clusters by review state" in text and "ann: reveals per day" in text
    assert "http://" not in text and "https://" not in text  # nothing from elsewhere
    own = ann.get(f"/review/cases/{CASE}/progress").text
    assert "ann: votes cast per day" in own and "bob:" not in own


def test_a_failed_list_step_is_retried_by_the_next_decision(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    hw.cases.import_case(scanned[1], consensus_k=1, actor="examiner")
    review = ReviewStore(hw.db, hw.lists)
    review.configure(CASE, actor="lee", scheme="US", ignorable_list=IGNORABLE)  # no known list
    who = people(hw)
    first = review.vote(CASE, _beach(hw), VoteChoice("1"), actor=who["ann"])
    assert first.decision is not None and "no known list" in (first.decision.list_error or "")
    assert hw.cases.status(CASE).list_steps_pending == 1
    review.configure(CASE, actor="lee", known_list=KNOWN)
    assert hw.cases.status(CASE).list_steps_pending == 1  # choosing a list adds nothing by itself

    garden = _garden(hw)
    second = review.vote(CASE, garden, VoteChoice("2"), actor=who["ann"])
    assert second.decision is not None and second.decision.list_error is None
    assert hw.cases.status(CASE).list_steps_pending == 0
    retried = review.decision(first.decision.id)
    assert retried.list_error is None and len(retried.entry_ids) == 2
    assert hw.lists.get(KNOWN).counts.get("active") == 3
    assert _actions(hw, "case.decision.list_failed") == ["case.decision.list_failed"]
    assert _actions(hw, "case.decision.entries") == ["case.decision.entries"] * 2


def test_cases_apply_retries_pending_list_steps_and_status_counts_them(
    run: Run, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    assert run("cases", "import", str(scanned[1]), "-k", "1").returncode == 0
    assert run("cases", "set", CASE, "--scheme", "US", "--actor", "lee").returncode == 0
    hw = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "data")
    )
    try:
        review = ReviewStore(hw.db, hw.lists)
        who = people(hw)
        review.vote(CASE, _beach(hw), VoteChoice("1"), actor=who["ann"])
        garden = _garden(hw)
        review.vote(CASE, garden, VoteChoice(not_relevant=True), actor=who["ann"])
        status = run("cases", "status", CASE)
        assert json.loads(status.stdout)["list_steps_pending"] == 2
        assert "2 list step(s) pending" in status.stderr
        still = run("cases", "apply", CASE)
        assert still.returncode == 1 and "0 of 2 pending list step(s) done" in still.stderr
        review.configure(CASE, actor="lee", known_list=KNOWN, ignorable_list=IGNORABLE)
    finally:
        hw.close()
    done = run("cases", "apply", CASE, "--actor", "lee")
    assert done.returncode == 0, done.stderr
    assert "2 of 2 pending list step(s) done" in done.stderr
    decisions = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(d["list"] for d in decisions) == [IGNORABLE, KNOWN]
    assert json.loads(run("cases", "status", CASE).stdout)["list_steps_pending"] == 0
    assert run("cases", "apply", CASE).stderr.strip().endswith("0 of 0 pending list step(s) done")


def test_a_second_look_note_with_a_nul_character_is_refused_not_a_server_error(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    imported(hw, scanned[1])
    people(hw)
    ann, ann_h = _api(create_app(hw, settings(background=False)), "ann")
    mark = f"/v1/cases/{CASE}/targets/{_beach(hw)}/second-look"
    refused = ann.put(mark, json={"note": "a\x00b"}, headers=ann_h)
    assert refused.status_code == 400 and "NUL" in refused.text
    assert SecondLooks(hw.db).lane(CASE) == []
