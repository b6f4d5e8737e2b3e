"""A review team's story: votes on a case's clusters and items settle them into the agency's lists.

One generated tree (two near-duplicate pictures, another new picture, a picture a list knows)
is scanned once; each test imports the case into SQLite and PostgreSQL, signs reviewers in and
votes. Three agreeing reviewers settle a cluster on the third vote and a re-scan of the same
evidence finds its members known; a disagreement goes to the lead, whose decision settles it
with every vote kept; revoking a decision makes the media new again. Every picture is a
generated benign scene.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import ConfigError, ReviewConflictError
from hashwatch.lists.model import ListKind
from hashwatch.review.consensus import ReviewStore
from hashwatch.review.votes import ReviewState, Target, VoteChoice
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import Role
from hashwatch.store.users import Actor, UserRole, UserStore
from hashwatch.web.app import create_app
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene
from tests.scanned_case import scan_case
from tests.serve_helpers import make_key, settings

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process

CASE = "2026-0310"
KNOWN = "agency-known"
IGNORABLE = "agency-ignorable"
PEOPLE = {"ann": "reviewer", "bob": "reviewer", "cat": "reviewer", "lee": "lead"}
CHEAP = PasswordHasher(1, 8 * 1024, 1)  # the store's logic under test, not argon2's cost


def _evidence(root: Path) -> Path:
    (root / "DCIM").mkdir(parents=True)
    (root / "DCIM" / "beach.jpg").write_bytes(jpeg_bytes(scene(70)))
    (root / "DCIM" / "beach-small.jpg").write_bytes(jpeg_bytes(scene(70).resize((320, 240)), 70))
    (root / "DCIM" / "garden.jpg").write_bytes(jpeg_bytes(scene(71)))
    (root / "known.jpg").write_bytes(jpeg_bytes(scene(0)))
    return root


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(evidence, case directory) of one scan, shared by the tests of this file."""
    yield scan_case(tmp_path_factory.mktemp("review"), _evidence, CASE, "reference")


def people(hw: Hashwatch) -> dict[str, Actor]:
    users = UserStore(hw.db, hasher=CHEAP)
    out = {}
    for name, role in PEOPLE.items():
        info = users.add(name, role, f"{name}'s long passphrase", actor="setup")
        out[name] = Actor(0, name, UserRole(role), user_id=info.id)
    return out


def imported(hw: Hashwatch, case_dir: Path, k: int = 3) -> ReviewStore:
    hw.cases.import_case(case_dir, consensus_k=k, actor="examiner")
    review = ReviewStore(hw.db, hw.lists)
    review.configure(CASE, actor="lee", scheme="US", known_list=KNOWN, ignorable_list=IGNORABLE)
    return review


def _by_name(hw: Hashwatch) -> dict[str, int]:
    return {i.path.rsplit("/", 1)[-1]: i.id for i in hw.cases.items(CASE)}


def _beach(hw: Hashwatch) -> Target:
    item = hw.cases.item(_by_name(hw)["beach.jpg"])
    assert item.cluster_number is not None
    return Target(cluster=item.cluster_number)


def _rescan(hw: Hashwatch, evidence: Path, out: Path) -> dict[str, str]:
    hw.scan([evidence], out, workers=1)
    lines = (out / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return {r["path"].rsplit("/", 1)[-1]: r["status"] for r in records}


def test_three_agreeing_reviewers_settle_a_cluster_into_the_known_list(
    hw: Hashwatch, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    evidence, case_dir = scanned
    review = imported(hw, case_dir)
    who = people(hw)
    beach = _beach(hw)
    assert review.queue(CASE, who["ann"])[0].target == beach

    one = review.vote(CASE, beach, VoteChoice("1", series="Beach"), actor=who["ann"])
    two = review.vote(CASE, beach, VoteChoice("1"), actor=who["bob"])
    assert (one.state, two.state) == (ReviewState.VOTED, ReviewState.VOTED)
    assert hw.cases.status(CASE).clusters_by_review["voted"] == 1
    assert str(beach) not in {str(e.target) for e in review.queue(CASE, who["ann"])}
    assert str(beach) in {str(e.target) for e in review.queue(CASE, who["cat"])}

    three = review.vote(CASE, beach, VoteChoice("1", victim_identified=True), actor=who["cat"])
    assert three.state is ReviewState.SETTLED
    decision = three.decision
    assert decision is not None and decision.how == "consensus" and decision.list_error is None
    assert decision.choice.category == "1" and decision.choice.series == "Beach"
    assert decision.choice.victim_identified
    assert sorted(v.user for v in decision.votes) == ["ann", "bob", "cat"]
    assert len(decision.entry_ids) == 2  # both members of the cluster
    status = hw.cases.status(CASE)
    assert status.clusters_by_review["settled"] == 1 and status.items_by_review["settled"] == 2
    assert str(beach) not in {str(e.target) for e in review.queue(CASE, who["cat"])}

    info = hw.lists.get(KNOWN)
    assert info.kind is ListKind.KNOWN and info.counts.get("active") == 2
    with pytest.raises(ReviewConflictError, match="settled"):
        review.vote(CASE, beach, VoteChoice("2"), actor=who["lee"])

    found = _rescan(hw, evidence, tmp_path / "again")
    assert found["beach.jpg"] == found["beach-small.jpg"] == "known"
    assert found["garden.jpg"] == "new"
    actions = [e.action for e in AuditTrail(hw.db).events(action_prefix="case.")]
    assert actions.count("case.vote") == 3 and "case.decision" in actions
    assert "case.decision.entries" in actions


def test_a_disagreement_goes_to_the_lead_whose_decision_keeps_every_vote(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    _, case_dir = scanned
    review = imported(hw, case_dir)
    who = people(hw)
    beach = _beach(hw)
    review.vote(CASE, beach, VoteChoice("1"), actor=who["ann"])
    review.vote(CASE, beach, VoteChoice("2"), actor=who["bob"])
    third = review.vote(CASE, beach, VoteChoice("1"), actor=who["cat"])
    assert third.state is ReviewState.DISPUTED and third.decision is None
    assert [str(e.target) for e in review.lead_queue(CASE)] == [str(beach)]
    assert hw.cases.status(CASE).clusters_by_review["disputed"] == 1
    with pytest.raises(ConfigError, match="lead"):
        review.decide(CASE, beach, VoteChoice("1"), actor=who["ann"])

    decision = review.decide(CASE, beach, VoteChoice("2", note="checked"), actor=who["lee"])
    assert decision.how == "lead" and decision.decided_by == "lee"
    assert sorted((v.user, v.choice.category) for v in decision.votes) == [
        ("ann", "1"),
        ("bob", "2"),
        ("cat", "1"),
    ]
    assert review.lead_queue(CASE) == []
    assert hw.lists.get(KNOWN).counts.get("active") == 2
    (listed,) = review.decisions(CASE)
    assert listed.id == decision.id and len(listed.votes) == 3


def test_a_reviewer_changes_their_vote_and_the_history_is_kept(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    _, case_dir = scanned
    review = imported(hw, case_dir)
    who = people(hw)
    beach = _beach(hw)
    first = review.vote(CASE, beach, VoteChoice("2"), actor=who["ann"])
    second = review.vote(CASE, beach, VoteChoice("1", note="looked again"), actor=who["ann"])
    view = review.target(CASE, beach)
    assert [(v.id, v.choice.category, v.superseded_by) for v in view.votes] == [
        (first.vote.id, "2", second.vote.id),
        (second.vote.id, "1", None),
    ]
    assert view.state == "voted"  # one reviewer, one current vote
    actions = [e.action for e in AuditTrail(hw.db).events(action_prefix="case.vote")]
    assert sorted(actions) == ["case.vote", "case.vote.changed"]


def test_a_banana_is_not_a_category_and_a_vote_needs_one(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    _, case_dir = scanned
    review = imported(hw, case_dir)
    who = people(hw)
    beach = _beach(hw)
    with pytest.raises(ConfigError, match="banana"):
        review.vote(CASE, beach, VoteChoice("banana"), actor=who["ann"])
    with pytest.raises(ConfigError, match="category or 'not relevant'"):
        review.vote(CASE, beach, VoteChoice(), actor=who["ann"])
    with pytest.raises(ConfigError, match="not both"):
        review.vote(CASE, beach, VoteChoice("1", not_relevant=True), actor=who["ann"])
    assert review.target(CASE, beach).votes == []
    assert hw.cases.status(CASE).clusters_by_review == {"pending": 2}


def test_revoking_a_decision_revokes_its_entries_and_the_media_is_new_again(
    hw: Hashwatch, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    evidence, case_dir = scanned
    review = imported(hw, case_dir, k=1)
    who = people(hw)
    beach = _beach(hw)
    settled = review.vote(CASE, beach, VoteChoice("1"), actor=who["ann"])  # K=1: at once
    assert settled.state is ReviewState.SETTLED and settled.decision is not None
    assert _rescan(hw, evidence, tmp_path / "a")["beach.jpg"] == "known"
    with pytest.raises(ConfigError, match="lead"):
        review.revoke(CASE, settled.decision.id, actor=who["ann"], reason="wrong")

    revoked = review.revoke(CASE, settled.decision.id, actor=who["lee"], reason="misread")
    assert revoked.revoked_by == "lee" and revoked.revoked_reason == "misread"
    assert hw.lists.get(KNOWN).counts.get("revoked") == 2
    assert _rescan(hw, evidence, tmp_path / "b")["beach.jpg"] == "new"
    assert review.target(CASE, beach).state == "disputed"  # back to the lead
    assert [str(e.target) for e in review.lead_queue(CASE)] == [str(beach)]

    again = review.decide(CASE, beach, VoteChoice("3"), actor=who["lee"])
    assert again.entry_ids == revoked.entry_ids  # the same entries, active again
    assert hw.lists.get(KNOWN).counts.get("active") == 2
    assert len(review.decisions(CASE)) == 2


def test_not_relevant_goes_to_the_ignorable_list_and_an_item_can_be_split_off(
    hw: Hashwatch, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    evidence, case_dir = scanned
    review = imported(hw, case_dir, k=1)
    who = people(hw)
    ids = _by_name(hw)
    beach = _beach(hw)
    with pytest.raises(ReviewConflictError, match="vote on the cluster"):
        review.vote(CASE, Target(item=ids["beach-small.jpg"]), VoteChoice("1"), actor=who["ann"])
    split = review.split(CASE, ids["beach-small.jpg"], actor=who["ann"])
    assert split.target == Target(item=ids["beach-small.jpg"]) and split.state == "pending"
    assert review.target(CASE, beach).item_ids == [ids["beach.jpg"]]

    done = review.vote(CASE, beach, VoteChoice(not_relevant=True), actor=who["bob"])
    assert done.decision is not None and done.decision.list_name == IGNORABLE
    assert len(done.decision.entry_ids) == 1  # the split-off item is not in it
    assert hw.lists.get(IGNORABLE).kind is ListKind.IGNORABLE
    found = _rescan(hw, evidence, tmp_path / "again")
    assert found["beach.jpg"] == "ignorable" and found["garden.jpg"] == "new"
    assert hw.cases.item(ids["beach-small.jpg"]).review_status == "pending"


def test_the_queue_puts_new_clusters_first_then_known_matches_to_confirm(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    _, case_dir = scanned
    review = imported(sqlite_hw, case_dir)
    who = people(sqlite_hw)
    queue = review.queue(CASE, who["ann"])
    assert [e.target.cluster is not None for e in queue] == [True, True, False]
    known = queue[-1]
    assert known.scan_status == "known" and known.list_category == "1"
    assert known.state == "pending"  # a list's category is a suggestion, never a decision


def test_a_decision_without_a_list_says_so_and_entries_follow_once_one_is_set(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    _, case_dir = scanned
    sqlite_hw.cases.import_case(case_dir, consensus_k=1)
    review = ReviewStore(sqlite_hw.db, sqlite_hw.lists)
    who = people(sqlite_hw)
    beach = _beach(sqlite_hw)
    with pytest.raises(ConfigError, match="no category scheme"):
        review.vote(CASE, beach, VoteChoice("1"), actor=who["ann"])
    review.configure(CASE, actor="lee", scheme="US")
    result = review.vote(CASE, beach, VoteChoice("1"), actor=who["ann"])
    assert result.state is ReviewState.SETTLED and result.decision is not None
    assert result.decision.list_error is not None and "--known-list" in result.decision.list_error
    review.configure(CASE, actor="lee", known_list=KNOWN)
    applied = review.apply_entries(result.decision.id, actor="lee")
    assert applied.list_error is None and len(applied.entry_ids) == 2


# -- over HTTP --------------------------------------------------------------------------------


def _signed_in(app: FastAPI, name: str) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(app)
    answer = client.post(
        "/v1/session", json={"name": name, "password": f"{name}'s long passphrase"}
    )
    assert answer.status_code == 200, answer.text
    return client, {"X-CSRF-Token": answer.json()["csrf_token"]}


def test_reviewers_settle_a_cluster_over_http_and_only_people_may_review(
    hw: Hashwatch, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    evidence, case_dir = scanned
    imported(hw, case_dir)
    people(hw)
    beach = str(_beach(hw))
    app = create_app(hw, settings(background=False))
    matcher = make_key(hw, Role.MATCHER)
    vote = f"/v1/cases/{CASE}/targets/{beach}/vote"
    with TestClient(app) as anon:
        assert anon.get("/v1/cases").status_code == 401
        assert anon.put(vote, json={"category": "1"}).status_code == 401
        assert anon.get("/v1/cases", headers=matcher).status_code == 403
        assert anon.put(vote, json={"category": "1"}, headers=matcher).status_code == 403
    ann, ann_csrf = _signed_in(app, "ann")
    bob, bob_csrf = _signed_in(app, "bob")
    cat, cat_csrf = _signed_in(app, "cat")
    with ann, bob, cat:
        (case,) = ann.get("/v1/cases").json()
        assert case["case_number"] == CASE
        assert ann.get(f"/v1/cases/{CASE}/queue").json()[0]["target"] == beach
        # ann's session with bob's CSRF token cannot vote, as ann or as bob
        assert ann.put(vote, json={"category": "1"}, headers=bob_csrf).status_code == 403
        banana = ann.put(vote, json={"category": "banana"}, headers=ann_csrf)
        assert banana.status_code == 400 and "banana" in banana.json()["detail"]
        assert ann.put(vote, json={"category": "2"}, headers=ann_csrf).json()["state"] == "voted"
        changed = ann.put(vote, json={"category": "1"}, headers=ann_csrf).json()
        assert changed["vote"]["user"] == "ann" and changed["vote"]["category"] == "1"
        assert bob.put(vote, json={"category": "1"}, headers=bob_csrf).json()["state"] == "voted"
        settled = cat.put(vote, json={"category": "1"}, headers=cat_csrf).json()
        assert settled["state"] == "settled"
        assert settled["decision"]["how"] == "consensus"
        assert len(settled["decision"]["entry_ids"]) == 2
        status = ann.get(f"/v1/cases/{CASE}").json()
        assert status["clusters_by_review"]["settled"] == 1
        assert status["review"]["known_list"] == KNOWN
        view = ann.get(f"/v1/cases/{CASE}/targets/{beach}").json()
        assert [(v["user"], v["superseded_by"] is None) for v in view["votes"]] == [
            ("ann", False),
            ("ann", True),
            ("bob", True),
            ("cat", True),
        ]
        number = beach.split(":")[1]
        cluster = ann.get(f"/v1/cases/{CASE}/clusters/{number}").json()
        assert {i["review_status"] for i in cluster["items"]} == {"settled"}
        assert all("sha256" not in i and "digests" not in i for i in cluster["items"])
        assert cluster["items"][0]["thumbnail"].endswith("/thumbnail")
        again = ann.put(vote, json={"category": "2"}, headers=ann_csrf)
        assert again.status_code == 409
        assert ann.get(f"/v1/cases/{CASE}/lead-queue").status_code == 403
        assert ann.get(f"/v1/cases/{CASE}/items/999999").status_code == 404
    found = _rescan(hw, evidence, tmp_path / "again")
    assert found["beach.jpg"] == "known"


def test_a_lead_decides_and_revokes_over_http(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    hw = sqlite_hw
    _, case_dir = scanned
    imported(hw, case_dir, k=2)
    people(hw)
    beach = str(_beach(hw))
    app = create_app(hw, settings(background=False))
    ann, ann_csrf = _signed_in(app, "ann")
    bob, bob_csrf = _signed_in(app, "bob")
    lee, lee_csrf = _signed_in(app, "lee")
    with ann, bob, lee:
        ann.put(f"/v1/cases/{CASE}/targets/{beach}/vote", json={"category": "1"}, headers=ann_csrf)
        disputed = bob.put(
            f"/v1/cases/{CASE}/targets/{beach}/vote",
            json={"not_relevant": True},
            headers=bob_csrf,
        ).json()
        assert disputed["state"] == "disputed"
        assert [t["target"] for t in lee.get(f"/v1/cases/{CASE}/lead-queue").json()] == [beach]
        decide = f"/v1/cases/{CASE}/targets/{beach}/decision"
        assert ann.post(decide, json={"category": "1"}, headers=ann_csrf).status_code == 403
        decision = lee.post(decide, json={"category": "1"}, headers=lee_csrf).json()
        assert decision["how"] == "lead" and len(decision["votes"]) == 2
        revoke = f"/v1/cases/{CASE}/decisions/{decision['id']}/revoke"
        assert lee.post(revoke, json={"reason": ""}, headers=lee_csrf).status_code == 422
        revoked = lee.post(revoke, json={"reason": "misread"}, headers=lee_csrf).json()
        assert revoked["revoked_by"] == "lee"
        assert lee.post(revoke, json={"reason": "again"}, headers=lee_csrf).status_code == 409
        (listed,) = ann.get(f"/v1/cases/{CASE}/decisions").json()
        assert listed["revoked_reason"] == "misread"
    assert hw.lists.get(KNOWN).counts.get("revoked") == 2


# -- the command line -------------------------------------------------------------------------


def test_cli_sets_a_cases_lists_and_shows_its_decisions_with_their_votes(
    run: Run, scanned: tuple[Path, Path], tmp_path: Path
) -> None:
    _, case_dir = scanned
    assert run("cases", "import", str(case_dir), "-k", "1").returncode == 0
    refused = run("cases", "set", CASE, "--scheme", "banana")
    assert refused.returncode == 2 and "no category scheme 'banana'" in refused.stderr
    assert run("cases", "set", CASE, "--scheme", "US", "--actor", "lee").returncode == 0
    hw = Hashwatch(
        Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "data")
    )
    try:
        who = people(hw)
        result = ReviewStore(hw.db, hw.lists).vote(
            CASE, _beach(hw), VoteChoice("1", series="Beach"), actor=who["ann"]
        )
        assert result.decision is not None and result.decision.list_error  # no known list yet
    finally:
        hw.close()
    done = run("cases", "set", CASE, "--known-list", KNOWN, "--consensus", "2", "--actor", "lee")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["consensus_k"] == 2
    assert f"2 entries in {KNOWN}" in done.stderr  # the earlier decision's entries, added now
    listed = run("cases", "decisions", CASE)
    (decision,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert decision["how"] == "consensus" and decision["list"] == KNOWN
    assert decision["list_error"] is None and len(decision["entry_ids"]) == 2
    assert [(v["user"], v["category"]) for v in decision["votes"]] == [("ann", "1")]


def test_a_case_reference_with_a_control_character_is_refused_not_a_server_error(
    hw: Hashwatch,
) -> None:
    people(hw)
    key = make_key(hw, Role.MATCHER, user="ann")
    with TestClient(create_app(hw, settings(background=False))) as client:
        for path in ("/v1/cases/a%00b", "/v1/cases/a%00b/queue", "/v1/cases/a%00b/decisions"):
            assert client.get(path, headers=key).status_code == 422
        assert client.get("/v1/cases/no-such-case", headers=key).status_code == 404
