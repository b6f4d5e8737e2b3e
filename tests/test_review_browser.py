"""The review story in a real browser (Debian's chromium driven by Playwright).

``hashwatch review`` serves a scanned case of generated benign pictures; three reviewers sign
in in three browser contexts and categorise its clusters with the keyboard; the third vote
settles the first cluster, a three-way disagreement on the second reaches the lead, who
decides it with the mouse on the lead's page; the agency list gains the entries and a
re-scan finds the media known. On the way: a form posted without the session's token is
refused, and a press-and-hold reveal is audited. Then, on the same server: a locked account
stays locked even with the right password, one reviewer's session cannot vote with another's
token (a vote made in bob's browser is bob's), a matcher key gets 403 on the review endpoints,
and every reveal any browser made is in the audit trail, by whom and of which item.
Screenshots are kept in the test's tmp dir.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.review.consensus import ReviewStore
from hashwatch.review.votes import Target
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import KeyStore, Role
from hashwatch.store.users import SIGN_IN_REFUSED, UserStore
from tests.review_server import review_server
from tests.test_review_consensus import CASE, CHEAP, PEOPLE, _rescan, scanned

__all__ = ["scanned"]  # the scan of tests/test_review_consensus.py, used as a fixture here

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 20_000  # a generous bound for each expectation; nothing sleeps

if importlib.util.find_spec("playwright") is None:
    pytest.skip("browser tests need playwright: pip install -e '.[dev]'", allow_module_level=True)
if shutil.which(CHROMIUM) is None:
    pytest.skip(
        "browser tests need Debian's chromium: apt-get install -y chromium",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def _target(number: int) -> re.Pattern[str]:
    return re.compile(rf"/targets/cluster(%3A|:){number}(\?|$)")


def _ready(page: Page) -> None:
    """The page's script has run: its keys work from here."""
    expect(page.locator("html")).to_have_attribute("data-ready", "1", timeout=WAIT_MS)


# (user, URL) of every reveal answered to any browser of the story
REVEALED: list[tuple[str, str]] = []


def _sign_in(browser: Browser, base: str, name: str) -> Page:
    page = browser.new_context(base_url=base).new_page()
    page.set_default_timeout(WAIT_MS)
    page.on(
        "response",
        lambda r: REVEALED.append((name, r.url)) if "reveal=1" in r.url and r.ok else None,
    )
    page.goto("/review/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(f"{name}'s long passphrase")
    page.get_by_role("button", name="sign in").click()
    expect(page).to_have_url(f"{base}/review", timeout=WAIT_MS)
    return page


def _vote_with_keys(page: Page, first: int, second: int, keys: tuple[str, str]) -> None:
    page.goto(f"/review/cases/{CASE}")
    _ready(page)
    page.keyboard.press("j")
    expect(page).to_have_url(_target(first), timeout=WAIT_MS)
    _ready(page)
    page.keyboard.press(keys[0])
    expect(page).to_have_url(_target(second), timeout=WAIT_MS)
    _ready(page)
    page.keyboard.press(keys[1])
    expect(page.locator("#undo")).to_be_visible(timeout=WAIT_MS)


def test_three_reviewers_and_a_lead_review_a_case_in_the_browser(
    browser: Browser, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    evidence, case_dir = scanned
    db_url = f"sqlite:///{tmp_path / 'team.sqlite3'}"
    hw = Hashwatch(Settings(database_url=db_url, data_dir=tmp_path / "data"))
    try:
        users = UserStore(hw.db, hasher=CHEAP)
        for name, role in {**PEOPLE, "dan": "reviewer"}.items():
            users.add(name, role, f"{name}'s long passphrase", actor="setup")
        matcher = KeyStore(hw.db).create("matcher", Role.MATCHER).token
        REVEALED.clear()
        lists = ("--known-list", "agency-known", "--ignorable-list", "agency-ignorable")
        with review_server(db_url, tmp_path / "data", case_dir, "-k", "3", *lists) as started:
            base = started["url"].split("/review/")[0]
            pages = _story(browser, base, hw, tmp_path)
            _locked_account_stays_locked(browser, base, hw, tmp_path)
            _sessions_stay_apart(pages["ann"], pages["bob"], hw, tmp_path)
            _matcher_key_is_refused(browser, base, matcher)
            _every_reveal_is_audited(pages["bob"], hw)
        clustered = [i for i in hw.cases.items(CASE) if i.cluster_number is not None]
        assert hw.lists.get("agency-known").counts.get("active") == len(clustered)
        found = _rescan(hw, evidence, tmp_path / "again")
        assert {found[i.path.rsplit("/", 1)[-1]] for i in clustered} == {"known"}
        assert found["known.jpg"] == "new"  # not reviewed: the reference list is not here
    finally:
        hw.close()


def _story(browser: Browser, base: str, hw: Hashwatch, tmp: Path) -> dict[str, Page]:
    clusters = sorted({i.cluster_number for i in hw.cases.items(CASE) if i.cluster_number})
    assert len(clusters) == 2, clusters
    first, second = clusters

    ann = _sign_in(browser, base, "ann")
    ann.goto(f"/review/cases/{CASE}")
    expect(ann.get_by_role("heading", name="Known matches to confirm")).to_be_visible()
    ann.screenshot(path=str(tmp / "review-queue.png"), full_page=True)
    _ready(ann)
    ann.keyboard.press("j")
    expect(ann).to_have_url(_target(first))
    _ready(ann)
    ann.screenshot(path=str(tmp / "review-cluster.png"), full_page=True)
    _reveal_is_audited(ann, hw)
    _form_without_token_is_refused(ann, hw)

    pages = {"ann": ann}
    for name, keys in (("ann", ("1", "1")), ("bob", ("1", "2")), ("cat", ("1", "3"))):
        page = pages.setdefault(name, _sign_in(browser, base, name) if name != "ann" else ann)
        _vote_with_keys(page, first, second, keys)
    status = hw.cases.status(CASE)
    assert status.clusters_by_review.get("settled") == 1
    assert status.clusters_by_review.get("disputed") == 1

    lee = _sign_in(browser, base, "lee")
    lee.goto(f"/review/cases/{CASE}/lead")
    lee.locator("a.queue-link").first.click()
    expect(lee).to_have_url(_target(second))
    expect(lee.get_by_role("heading", name="Decide as lead")).to_be_visible()
    lee.get_by_role("button", name=re.compile(r"^category 2:")).click()
    expect(lee.get_by_text("No disputed target in this case.")).to_be_visible()
    lee.screenshot(path=str(tmp / "review-lead.png"), full_page=True)
    assert hw.cases.status(CASE).clusters_by_review.get("settled") == 2
    return pages


def _reveal_is_audited(page: Page, hw: Hashwatch) -> None:
    picture = page.locator("img.pic").first
    expect(picture).to_have_attribute("src", re.compile(r"/thumbnail$"))
    with page.expect_response(lambda r: "reveal=1" in r.url) as revealed:
        page.keyboard.down("r")
    assert revealed.value.status == 200
    expect(picture).to_have_attribute("src", re.compile(r"reveal=1&view=1$"))
    page.keyboard.up("r")
    expect(picture).to_have_attribute("src", re.compile(r"/thumbnail$"))
    button = page.get_by_role("button", name=re.compile("hold to reveal")).first
    button.hover()
    with page.expect_response(lambda r: "reveal=1" in r.url):
        page.mouse.down()
    page.mouse.up()
    expect(picture).to_have_attribute("src", re.compile(r"/thumbnail$"))
    reveals = AuditTrail(hw.db).events(action_prefix="media.reveal")
    assert len(reveals) == 2 and {e.actor for e in reveals} == {"ann"}


def _form_without_token_is_refused(page: Page, hw: Hashwatch) -> None:
    script = """() => {
      const form = document.createElement("form");
      form.method = "post";
      form.action = location.pathname + "/vote";
      const field = document.createElement("input");
      field.name = "category"; field.value = "1";
      form.appendChild(field); document.body.appendChild(form); form.submit();
    }"""
    page.evaluate(script)
    expect(page.get_by_text("This form had no valid token")).to_be_visible()
    assert not AuditTrail(hw.db).events(action_prefix="case.vote")


def _locked_account_stays_locked(browser: Browser, base: str, hw: Hashwatch, tmp: Path) -> None:
    page = browser.new_context(base_url=base).new_page()
    page.set_default_timeout(WAIT_MS)
    for attempt in range(6):  # the server locks an account after 5 wrong passwords in a row
        page.goto("/review/login")
        page.get_by_label("Name").fill("dan")
        page.get_by_label("Password").fill(f"wrong guess {attempt}")
        page.get_by_role("button", name="sign in").click()
        expect(page.get_by_role("alert")).to_have_text(SIGN_IN_REFUSED)
    assert UserStore(hw.db).get("dan").locked_until is not None
    page.goto("/review/login")
    page.get_by_label("Name").fill("dan")
    page.get_by_label("Password").fill("dan's long passphrase")
    page.get_by_role("button", name="sign in").click()
    expect(page.get_by_role("alert")).to_have_text(SIGN_IN_REFUSED)
    expect(page).to_have_url(f"{base}/review/login")
    page.screenshot(path=str(tmp / "review-locked.png"), full_page=True)
    page.goto("/review")
    expect(page).to_have_url(f"{base}/review/login")  # no session came of it
    page.context.close()


def _sessions_stay_apart(ann: Page, bob: Page, hw: Hashwatch, tmp: Path) -> None:
    """Bob's cookie with ann's token, and ann's cookie with bob's, are refused; bob's own
    vote is recorded as bob's."""
    known = next(i for i in hw.cases.items(CASE) if i.scan_status == "known")
    target = f"item:{known.id}"
    for page in (ann, bob):
        page.goto(f"/review/cases/{CASE}/targets/{target}")
        _ready(page)
    ann_token = ann.locator('meta[name="csrf-token"]').get_attribute("content")
    bob_token = bob.locator('meta[name="csrf-token"]').get_attribute("content")
    assert ann_token and bob_token and ann_token != bob_token
    form_post = """(token) => {
      const form = document.createElement("form");
      form.method = "post";
      form.action = location.pathname + "/vote";
      for (const [name, value] of [["csrf_token", token], ["category", "1"]]) {
        const field = document.createElement("input");
        field.name = name; field.value = value; form.appendChild(field);
      }
      document.body.appendChild(form); form.submit();
    }"""
    bob.evaluate(form_post, ann_token)
    expect(bob.get_by_text("This form had no valid token")).to_be_visible()
    bob.screenshot(path=str(tmp / "review-foreign-token.png"), full_page=True)
    api_put = """async ([url, token]) => (await fetch(url, {
      method: "PUT", headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
      body: JSON.stringify({category: "1"})})).status"""
    url = f"/v1/cases/{CASE}/targets/{target}/vote"
    assert ann.evaluate(api_put, [url, bob_token]) == 403
    assert bob.evaluate(api_put, [url, ann_token]) == 403
    assert hw.cases.item(known.id).review_status == "pending"
    assert not _votes_on(hw, target)

    bob.goto(f"/review/cases/{CASE}/targets/{target}")
    _ready(bob)
    bob.keyboard.press("1")
    expect(bob.locator("#undo")).to_be_visible()
    assert [e.actor for e in _votes_on(hw, target)] == ["bob"]
    (vote,) = [v for v in ReviewStore(hw.db, hw.lists).target(CASE, Target(item=known.id)).votes]
    assert vote.user == "bob"


def _votes_on(hw: Hashwatch, target: str) -> list[Any]:
    events = AuditTrail(hw.db).events(action_prefix="case.vote")
    return [e for e in events if (e.target or "").endswith(f":{target}")]


def _matcher_key_is_refused(browser: Browser, base: str, token: str) -> None:
    """A matcher's key reaches no review endpoint: 403 (from a browser context with no
    session cookie: only the key is sent)."""
    context = browser.new_context(base_url=base)
    request = context.request
    key = {"Authorization": f"Bearer {token}"}
    item = f"/v1/cases/{CASE}/items/1"
    for method, path in (
        ("GET", "/v1/cases"),
        ("GET", f"/v1/cases/{CASE}/queue"),
        ("GET", f"{item}/thumbnail?reveal=1"),
        ("GET", f"/v1/cases/{CASE}/progress"),
        ("PUT", f"/v1/cases/{CASE}/targets/cluster:1/vote"),
        ("PUT", f"/v1/cases/{CASE}/targets/cluster:1/second-look"),
    ):
        answer = request.fetch(
            path, method=method, headers=key, data={"category": "1"} if method == "PUT" else None
        )
        assert answer.status == 403, (method, path, answer.status)


def _every_reveal_is_audited(bob: Page, hw: Hashwatch) -> None:
    """Bob reveals each picture of a cluster page by holding its button; every reveal any
    browser of the story was answered is an audit record of that reviewer and item."""
    bob.goto(f"/review/cases/{CASE}/targets/cluster:1")
    _ready(bob)
    for button in bob.get_by_role("button", name=re.compile("hold to reveal")).all():
        button.hover()
        with bob.expect_response(lambda r: "reveal=1" in r.url):
            bob.mouse.down()
        bob.mouse.up()
    seen = sorted((user, re.sub(r".*/items/([0-9]+)/.*", r"\1", url)) for user, url in REVEALED)
    assert len(seen) >= 4 and {u for u, _ in seen} == {"ann", "bob"}
    audited = sorted(
        (e.actor, (e.target or "").rsplit(":", 1)[-1])
        for e in AuditTrail(hw.db).events(action_prefix="media.reveal")
    )
    assert audited == seen
