"""The review story in a real browser (Debian's chromium driven by Playwright).

``hashwatch review`` serves a scanned case of generated benign pictures; three reviewers sign
in in three browser contexts and categorise its clusters with the keyboard; the third vote
settles the first cluster, a three-way disagreement on the second reaches the lead, who
decides it with the mouse on the lead's page; the agency list gains the entries and a
re-scan finds the media known. On the way: a form posted without the session's token is
refused, and a press-and-hold reveal is audited. Screenshots are kept in the test's tmp dir.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.store.audit import AuditTrail
from hashwatch.store.users import UserStore
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


def _sign_in(browser: Browser, base: str, name: str) -> Page:
    page = browser.new_context(base_url=base).new_page()
    page.set_default_timeout(WAIT_MS)
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
        for name, role in PEOPLE.items():
            users.add(name, role, f"{name}'s long passphrase", actor="setup")
        lists = ("--known-list", "agency-known", "--ignorable-list", "agency-ignorable")
        with review_server(db_url, tmp_path / "data", case_dir, "-k", "3", *lists) as started:
            base = started["url"].split("/review/")[0]
            _story(browser, base, hw, tmp_path)
        clustered = [i for i in hw.cases.items(CASE) if i.cluster_number is not None]
        assert hw.lists.get("agency-known").counts.get("active") == len(clustered)
        found = _rescan(hw, evidence, tmp_path / "again")
        assert {found[i.path.rsplit("/", 1)[-1]] for i in clustered} == {"known"}
        assert found["known.jpg"] == "new"  # not reviewed: the reference list is not here
    finally:
        hw.close()


def _story(browser: Browser, base: str, hw: Hashwatch, tmp: Path) -> None:
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

    for name, keys in (("ann", ("1", "1")), ("bob", ("1", "2")), ("cat", ("1", "3"))):
        page = ann if name == "ann" else _sign_in(browser, base, name)
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
