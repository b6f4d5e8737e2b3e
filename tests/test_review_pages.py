"""The review pages over HTTP: a reviewer signs in with the form, sees the case's queue in the
scan's order with its progress, opens a cluster, votes with the decision form and is taken to
the next target; a form post without the session's token is refused; a disagreement reaches
the lead's page, where the lead decides it. Every picture is a generated benign scene (the
scan of ``tests/test_review_consensus.py``, shared here).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.review.consensus import ReviewStore
from hashwatch.review.votes import ReviewState
from hashwatch.store.audit import AuditTrail
from hashwatch.web.app import create_app
from hashwatch.web.pages import OneTimeLinks
from tests.review_server import review_server
from tests.serve_helpers import settings
from tests.test_review_consensus import CASE, _beach, imported, people, scanned

__all__ = ["scanned"]  # the module's scan, used as a fixture here


def _token(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', page)
    assert found, f"no {name} in the page"
    return found.group(1)


def _sign_in(app: FastAPI, name: str) -> tuple[TestClient, str]:
    """A browser-like client signed in with the form; returns it and the page's CSRF token."""
    client = TestClient(app, follow_redirects=False)
    form = client.get("/review/login")
    assert form.status_code == 200
    answer = client.post(
        "/review/login",
        data={
            "login_token": _token(form.text, "login_token"),
            "name": name,
            "password": f"{name}'s long passphrase",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/review"
    cases = client.get("/review")
    assert cases.status_code == 200
    return client, _token(cases.text, "csrf_token")


def _setup(hw: Hashwatch, scanned: tuple[Path, Path]) -> FastAPI:
    imported(hw, scanned[1])
    people(hw)
    return create_app(hw, settings(background=False))


def test_a_reviewer_signs_in_sees_the_queue_and_votes_with_the_form(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    hw = sqlite_hw
    app = _setup(hw, scanned)
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/review").headers["location"] == "/review/login"
    form = anonymous.get("/review/login")
    csp = form.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in form.text and "style=" not in form.text
    forged = anonymous.post(
        "/review/login",
        data={"login_token": "forged", "name": "ann", "password": "ann's long passphrase"},
    )
    assert forged.status_code == 403 and "hashwatch_session" not in forged.headers.get(
        "set-cookie", ""
    )
    form = anonymous.get("/review/login")  # a refused post gave a fresh form and cookie
    wrong = anonymous.post(
        "/review/login",
        data={"login_token": _token(form.text, "login_token"), "name": "ann", "password": "x"},
    )
    assert wrong.status_code == 401

    ann, csrf = _sign_in(app, "ann")
    case = ann.get(f"/review/cases/{CASE}")
    assert case.status_code == 200
    text = case.text
    assert "clusters: 0 settled, 2 pending, 0 voted, 0 disputed" in text
    new, known = text.index("New media"), text.index("Known matches to confirm")
    assert new < known and "a suggestion, not a decision" in text
    assert "the list says category 1 — to confirm" in text

    beach = str(_beach(hw))
    page = ann.get(f"/review/cases/{CASE}/targets/{beach}")
    assert page.status_code == 200
    assert page.text.count('class="pic"') == 2  # both members, as thumbnails
    assert "/thumbnail?reveal=1" in page.text and "Ranked here because:" in page.text
    for code in "012345":
        assert f'data-key="{code}"' in page.text
    assert 'aria-label="not relevant"' in page.text and "victim identified" in page.text

    picture = ann.get(f"/v1/cases/{CASE}/items/{hw.cases.items(CASE)[0].id}/thumbnail")
    assert picture.status_code == 200 and picture.headers["x-hashwatch-blurred"] == "1"

    action = f"/review/cases/{CASE}/targets/{beach}/vote"
    refused = ann.post(action, data={"category": "1"})
    assert refused.status_code == 403
    assert not [v for v in hw.cases.items(CASE) if v.review_status != "pending"]

    voted = ann.post(action, data={"csrf_token": csrf, "category": "1", "series": "Beach"})
    assert voted.status_code == 303
    assert voted.headers["location"].endswith(f"?last={beach.replace(':', '%3A')}")
    following = ann.get(voted.headers["location"])
    assert 'id="undo"' in following.text
    back = ann.get(f"/review/cases/{CASE}/targets/{beach}")
    assert 'aria-pressed="true" aria-label="category 1' in back.text
    assert 'value="Beach"' in back.text  # the vote to change, as it was
    votes = [e.action for e in AuditTrail(hw.db).events(action_prefix="case.vote")]
    assert votes == ["case.vote"]

    bad = ann.post(action, data={"csrf_token": csrf, "category": "banana"})
    assert bad.status_code == 400 and "banana" in bad.text and 'role="alert"' in bad.text
    assert ann.get("/review/static/review.js").headers["content-type"].startswith("text/javascript")
    assert ann.get("/review/static/other.js").status_code == 404


def test_a_disagreement_reaches_the_lead_page_and_the_lead_decides(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    hw = sqlite_hw
    app = _setup(hw, scanned)
    beach = str(_beach(hw))
    for name, code in (("ann", "1"), ("bob", "2"), ("cat", "1")):
        client, csrf = _sign_in(app, name)
        action = f"/review/cases/{CASE}/targets/{beach}/vote"
        assert client.post(action, data={"csrf_token": csrf, "category": code}).status_code == 303
    cat, _ = _sign_in(app, "cat")
    assert cat.get(f"/review/cases/{CASE}/lead").status_code == 403

    lee, csrf = _sign_in(app, "lee")
    lead = lee.get(f"/review/cases/{CASE}/lead")
    assert lead.status_code == 200 and f'data-target="{beach}"' in lead.text
    page = lee.get(f"/review/cases/{CASE}/targets/{beach}")
    assert "Decide as lead" in page.text and "bob: category 2" in page.text
    action = f"/review/cases/{CASE}/targets/{beach}/decision"
    assert lee.post(action, data={"category": "2"}).status_code == 403
    done = lee.post(action, data={"csrf_token": csrf, "category": "2", "note": "checked"})
    assert done.status_code == 303 and done.headers["location"].endswith("/lead")
    assert "No disputed target" in lee.get(done.headers["location"]).text
    status = hw.cases.status(CASE)
    assert status.clusters_by_review[ReviewState.SETTLED.value] == 1
    assert hw.lists.get("agency-known").counts.get("active") == 2


def test_a_one_time_sign_in_link_works_once(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    app = _setup(sqlite_hw, scanned)
    with TestClient(app, follow_redirects=False) as client:
        links: OneTimeLinks = app.state.sign_in_links
        token = links.issue("ann")
        first = client.get("/review/login", params={"token": token})
        assert first.status_code == 303 and "hashwatch_session=" in first.headers["set-cookie"]
        assert client.get("/review").status_code == 200
        other = httpx.Client(transport=client._transport, base_url="http://testserver")
        again = other.get("/review/login", params={"token": token})
        assert again.status_code == 401 and "used or has expired" in again.text
        expired = OneTimeLinks(ttl_s=-1.0)
        assert expired.redeem(expired.issue("ann")) is None


def test_hashwatch_review_serves_a_case_to_a_lone_investigator_by_a_one_time_link(
    tmp_path: Path, scanned: tuple[Path, Path]
) -> None:
    db_url = f"sqlite:///{tmp_path / 'alone.sqlite3'}"
    with review_server(db_url, tmp_path / "data", scanned[1]) as started:
        assert started["case_number"] == CASE and started["expires_in_s"] == 300
        link = started["url"]
        assert link.startswith("http://127.0.0.1:") and "/review/login?token=" in link
        base = link.split("/review/")[0]
        with httpx.Client(base_url=base, timeout=30) as browser:
            signed = browser.get(link)
            assert signed.status_code == 303 and signed.headers["location"] == "/review"
            page = browser.get(f"/review/cases/{CASE}")
            assert page.status_code == 200 and "New media" in page.text
            assert "Lead queue" in page.text  # a lone investigator also decides
        with httpx.Client(base_url=base, timeout=30) as other:
            assert other.get(link).status_code == 401
    alone = Hashwatch(Settings(database_url=db_url, data_dir=tmp_path / "data"))
    try:
        settings_ = ReviewStore(alone.db, alone.lists).settings(CASE)
        assert settings_.consensus_k == 1 and settings_.scheme == "US"
        assert [a.action for a in AuditTrail(alone.db).events(action_prefix="case.import")]
    finally:
        alone.close()
