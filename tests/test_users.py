"""People: accounts, sign-in sessions, CSRF, lockout, idle timeout, and keys that act as a user.

The review routes come later; here a reviewer-only route is added to the app in the test (as
a review route will be declared: ``require(UserRole.REVIEWER)``), so the gate's handling of
sessions, CSRF and roles is exercised on a state-changing request with a body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import KeyStore, Role
from hashwatch.store.users import UserPolicy, UserRole, UserStore
from hashwatch.web.app import create_app
from hashwatch.web.auth import SESSION_COOKIE, Principal, require
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.serve_helpers import bearer, make_key, settings
from tests.test_serve_intake import MiB, Sent, call, endless

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process

PASSWORDS = {"ann": "ann's long passphrase", "bob": "bob's other passphrase"}


def _app(hw: Hashwatch, **changes: Any) -> FastAPI:
    app = create_app(hw, settings(background=False, **changes))

    @app.post("/v1/test-review-action")
    def review_action(
        who: Annotated[Principal, require(UserRole.REVIEWER)], body: dict[str, Any]
    ) -> dict[str, Any]:
        return {"actor": who.name, "role": who.role.value, "body": body}

    return app


@pytest.fixture
def people(hw: Hashwatch) -> Iterator[FastAPI]:
    users = UserStore(hw.db)
    users.add("ann", UserRole.REVIEWER, PASSWORDS["ann"], actor="setup")
    users.add("bob", UserRole.LEAD, PASSWORDS["bob"], actor="setup")
    yield _app(hw, login_max_failures=3)


def _sign_in(client: TestClient, name: str) -> str:
    answer = client.post("/v1/session", json={"name": name, "password": PASSWORDS[name]})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["csrf_token"]
    return token


def test_sign_in_sets_a_strict_cookie_and_csrf_guards_every_change(
    hw: Hashwatch, people: FastAPI
) -> None:
    with TestClient(people) as ann:
        answer = ann.post("/v1/session", json={"name": "ann", "password": PASSWORDS["ann"]})
        assert answer.status_code == 200
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags
        csrf = answer.json()["csrf_token"]
        assert ann.get("/v1/session").json() == {
            "user": "ann",
            "role": "reviewer",
            "via": "session",
            "csrf_token": csrf,
        }
        action = "/v1/test-review-action"
        assert ann.post(action, json={"x": 1}).status_code == 403  # no token
        assert (
            ann.post(action, json={"x": 1}, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
        )
        done = ann.post(action, json={"x": 1}, headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200 and done.json()["actor"] == "ann"
        assert ann.delete("/v1/session").status_code == 403  # signing out is a change too
        assert ann.delete("/v1/session", headers={"X-CSRF-Token": csrf}).json() == {
            "signed_out": True
        }
        ann.cookies.set(SESSION_COOKIE, cookie.split(";")[0].split("=", 1)[1])
        assert ann.get("/v1/session").status_code == 401  # the old cookie is dead server-side
    with TestClient(people, base_url="https://testserver") as tls:
        answer = tls.post("/v1/session", json={"name": "bob", "password": PASSWORDS["bob"]})
        assert "secure" in {p.strip().lower() for p in answer.headers["set-cookie"].split(";")}


def test_one_users_session_cannot_act_as_another(people: FastAPI) -> None:
    with TestClient(people) as ann, TestClient(people) as bob:
        ann_csrf, bob_csrf = _sign_in(ann, "ann"), _sign_in(bob, "bob")
        action = "/v1/test-review-action"
        # ann's cookie with bob's token: refused, and bob's session is unharmed
        assert ann.post(action, json={}, headers={"X-CSRF-Token": bob_csrf}).status_code == 403
        assert (
            ann.post(action, json={}, headers={"X-CSRF-Token": ann_csrf}).json()["actor"] == "ann"
        )
        assert bob.post(action, json={}, headers={"X-CSRF-Token": bob_csrf}).json() == {
            "actor": "bob",
            "role": "lead",
            "body": {},
        }
        assert ann.delete("/v1/session", headers={"X-CSRF-Token": ann_csrf}).status_code == 200
        assert bob.get("/v1/session").json()["user"] == "bob"


def test_repeated_failures_lock_the_account_even_against_the_right_password(
    hw: Hashwatch, people: FastAPI
) -> None:
    with TestClient(people) as client:
        for _ in range(3):
            wrong = client.post("/v1/session", json={"name": "ann", "password": "not it at all"})
            assert wrong.status_code == 401
        right = client.post("/v1/session", json={"name": "ann", "password": PASSWORDS["ann"]})
        unknown = client.post("/v1/session", json={"name": "nobody", "password": "whatever1"})
        # one answer for every reason: a guesser learns nothing about names or locks
        assert right.status_code == unknown.status_code == 401
        assert right.json() == unknown.json()
        assert SESSION_COOKIE not in right.headers.get("set-cookie", "")
        assert UserStore(hw.db).get("ann").locked_until is not None
        UserStore(hw.db).unlock("ann", actor="admin-person")
        assert (
            client.post(
                "/v1/session", json={"name": "ann", "password": PASSWORDS["ann"]}
            ).status_code
            == 200
        )
    events = AuditTrail(hw.db).events(target="user:ann")
    reasons = [e.details.get("reason") for e in events if e.action == "user.sign_in_refused"]
    assert reasons.count("wrong password") == 3 and reasons.count("locked") == 1
    assert {"user.locked", "user.unlocked", "user.signed_in"} <= {e.action for e in events}
    assert {e.actor for e in events if e.action == "user.sign_in_refused"} == {"anonymous"}


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_lockout_expires_and_idle_or_old_sessions_end(hw: Hashwatch) -> None:
    clock = Clock(datetime(2026, 1, 5, 9, 0, tzinfo=datetime.now().astimezone().tzinfo))
    policy = UserPolicy(
        max_failures=2, lockout_s=600, session_idle_s=1800, session_lifetime_s=8 * 3600
    )
    # the store's timers under test, not argon2's cost: a cheap hasher of the same kind
    users = UserStore(hw.db, policy, clock=clock, hasher=PasswordHasher(1, 8 * 1024, 1))
    users.add("cat", "reviewer", "cat's passphrase!")
    for _ in range(2):
        with pytest.raises(Exception, match="unknown name or wrong password"):
            users.authenticate("cat", "wrong guess here")
    clock.now += timedelta(seconds=599)
    with pytest.raises(Exception, match="unknown name or wrong password"):
        users.authenticate("cat", "cat's passphrase!")
    clock.now += timedelta(seconds=2)
    session = users.sign_in("cat", "cat's passphrase!")
    # used every 20 minutes: alive; then 30 idle minutes end it
    for _ in range(3):
        clock.now += timedelta(minutes=20)
        assert users.session(session.token) is not None
    clock.now += timedelta(minutes=30)
    assert users.session(session.token) is None
    # in use all along, a session still ends at its absolute lifetime
    second = users.sign_in("cat", "cat's passphrase!")
    for _ in range(8 * 3):
        clock.now += timedelta(minutes=20)
        alive = users.session(second.token)
    assert alive is None
    ends = [e.details["reason"] for e in AuditTrail(hw.db).events(action_prefix="session.expired")]
    assert ends == ["lifetime", "idle"]


def test_a_disabled_users_session_and_keys_stop_working_and_old_keys_are_unchanged(
    hw: Hashwatch, people: FastAPI
) -> None:
    ann_key = KeyStore(hw.db).create("ann-automation", Role.MATCHER, user="ann").token
    matcher, curator = make_key(hw, Role.MATCHER), make_key(hw, Role.CURATOR)
    admin = make_key(hw, Role.ADMIN)
    with TestClient(people) as ann, TestClient(people) as robot:
        csrf = _sign_in(ann, "ann")
        # the user's key acts as the user: no CSRF for a bearer key, the actor is ann
        done = robot.post("/v1/test-review-action", json={"v": 2}, headers=bearer(ann_key))
        assert done.json() == {"actor": "ann", "role": "reviewer", "body": {"v": 2}}
        assert robot.get("/v1/session", headers=bearer(ann_key)).json() == {
            "user": "ann",
            "role": "reviewer",
            "via": "key",
        }
        # a matcher key is not a reviewer; a reviewer (key or session) is no service key
        assert robot.post("/v1/test-review-action", json={}, headers=matcher).status_code == 403
        assert robot.get("/v1/lists", headers=bearer(ann_key)).status_code == 403
        assert ann.get("/v1/lists").status_code == 403
        # the service keys work as before
        assert robot.get("/v1/session", headers=matcher).status_code == 403
        assert robot.get("/v1/lists", headers=curator).status_code == 200
        assert robot.get("/v1/lists", headers=matcher).status_code == 403
        assert robot.get("/v1/keys", headers=admin).status_code == 200
        listed = {k["name"]: k["user"] for k in robot.get("/v1/keys", headers=admin).json()}
        assert listed["ann-automation"] == "ann" and listed["matcher-test"] is None

        UserStore(hw.db).disable("ann", actor="admin-person")
        assert (
            ann.post("/v1/test-review-action", json={}, headers={"X-CSRF-Token": csrf}).status_code
            == 401
        )
        assert KeyStore(hw.db).authenticate(ann_key) is None
        assert (
            ann.post("/v1/session", json={"name": "ann", "password": PASSWORDS["ann"]}).status_code
            == 401
        )


def test_an_unauthenticated_or_forged_request_is_refused_before_its_body_is_read(
    hw: Hashwatch, people: FastAPI
) -> None:
    with TestClient(people) as ann:
        _sign_in(ann, "ann")
        cookie = f"{SESSION_COOKIE}={ann.cookies[SESSION_COOKIE]}"
    json_ct = {"Content-Type": "application/json"}
    cases = [
        ({**json_ct}, 401),
        ({**json_ct, "Cookie": f"{SESSION_COOKIE}=forged"}, 401),
        ({**json_ct, "Cookie": cookie}, 403),  # no CSRF token
        ({**json_ct, "Cookie": cookie, "X-CSRF-Token": "wrong"}, 403),
        ({**json_ct, **make_key(hw, Role.ADMIN, "an-admin-key")}, 403),
    ]
    for headers, expected in cases:
        sent = Sent()
        status, _h, body = call(
            people, "POST", "/v1/test-review-action", headers, endless(b"[" * MiB, 50 * MiB), sent
        )
        assert (status, sent.taken) == (expected, 0), (headers, body)


def test_audit_records_every_change_and_never_a_secret(hw: Hashwatch, people: FastAPI) -> None:
    key = KeyStore(hw.db).create("bob-key", Role.MATCHER, user="bob")
    with TestClient(people) as bob:
        csrf = _sign_in(bob, "bob")
        bob.delete("/v1/session", headers={"X-CSRF-Token": csrf})
        bob.post("/v1/session", json={"name": "bob", "password": "a wrong one"})
    UserStore(hw.db).set_password("bob", "bob's newer passphrase", actor="bob")
    events = AuditTrail(hw.db).events(limit=1000)
    actions = [e.action for e in events]
    for expected in (
        "user.created",
        "key.created",
        "session.opened",
        "session.ended",
        "user.sign_in_refused",
        "user.password_set",
        "user.signed_in",
    ):
        assert expected in actions, expected
    text = json.dumps([e.as_dict() for e in events])
    for secret in (*PASSWORDS.values(), "a wrong one", "bob's newer passphrase", key.token, csrf):
        assert secret not in text


def test_cli_manages_accounts_and_keys_acting_as_a_user(run: Run) -> None:
    added = run(
        "users", "add", "dee", "--role", "lead", "--password-stdin", stdin="dee's long passphrase\n"
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "lead"
    assert (
        run(
            "users", "add", "eve", "--role", "reviewer", "--password-stdin", stdin="short\n"
        ).returncode
        == 2
    )
    key = run("keys", "create", "--user", "dee", "--name", "dee-bot")
    assert key.returncode == 0 and key.stdout.strip().startswith("hw_")
    assert "lead dee's key dee-bot" in key.stderr
    assert run("keys", "create", "--user", "nobody").returncode == 4
    assert run("keys", "create", "--user", "dee", "--role", "admin").returncode == 2
    assert json.loads(run("users", "disable", "dee").stdout)["disabled"] is True
    listed = [json.loads(line) for line in run("users", "list").stdout.splitlines()]
    assert [(u["name"], u["disabled"]) for u in listed] == [("dee", True)]
    assert "password" not in run("users", "list").stdout
    assert json.loads(run("users", "enable", "dee").stdout)["disabled"] is False
    assert run("users", "unlock", "dee").returncode == 0
    changed = run("users", "passwd", "dee", "--password-stdin", stdin="dee's next passphrase\n")
    assert changed.returncode == 0 and "sessions have ended" in changed.stderr


def test_the_cli_role_names_are_the_stores() -> None:
    import typing

    from hashwatch.cli.users import UserRoleName

    assert set(typing.get_args(UserRoleName)) == {role.value for role in UserRole}
