"""What a match reveals: an attacker holding a matcher key and a near copy of a listed picture
sends its PDQ hash and its 256 one-bit variants in one request. With exact distances the answer
gives the list's hash away bit by bit; banded and hidden answers do not, the probe is flagged,
and a key's signal budget caps how much it may ask. The list's hash is random, generated."""

from __future__ import annotations

import random
from typing import Any

from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.store.audit import AuditTrail
from hashwatch.store.service import Role
from tests.serve_helpers import client, make_key


def _flip(value: int, bit: int) -> int:
    return value ^ (1 << bit)


def _hex(value: int) -> str:
    return f"{value:064x}"


def _listed_and_near(seed: int) -> tuple[int, int]:
    """A list's PDQ hash (random) and a query 5 bits away from it, as a near copy gives."""
    rng = random.Random(seed)
    listed = rng.getrandbits(256)
    near = listed
    for bit in rng.sample(range(256), 5):
        near = _flip(near, bit)
    return listed, near


def _bit_probe(c: TestClient, key: dict[str, str], near: int) -> tuple[int | None, list[Any]]:
    """The attack: the near query and its 256 one-bit variants in one request of 257 signals.
    Returns the hash it infers (None if the answers do not tell) and the per-signal answers."""
    signals = [{"type": "pdq", "value": _hex(near)}] + [
        {"type": "pdq", "value": _hex(_flip(near, bit))} for bit in range(256)
    ]
    r = c.post("/v1/match", headers=key, json={"signals": signals})
    assert r.status_code == 200, r.text
    answers = [
        (s["matches"][0].get("distance"), s["matches"][0].get("distance_band"))
        if s["matches"]
        else None
        for s in r.json()["signals"]
    ]
    base = answers[0]
    if base is None or base[0] is None:
        return None, answers
    guess = near
    for bit, answer in enumerate(answers[1:]):
        if answer is None or answer[0] is None:
            return None, answers
        if answer[0] < base[0]:  # flipping this bit brought the query closer: it differed
            guess = _flip(guess, bit)
    return guess, answers


def _setup(hw: Hashwatch, listed: int) -> None:
    hw.lists.create("agency")
    curator = make_key(hw, Role.CURATOR, "curator")
    with client(hw) as c:
        entry = {"entries": [{"hashes": [{"type": "pdq", "value": _hex(listed)}]}]}
        assert c.post("/v1/lists/agency/entries", headers=curator, json=entry).status_code == 201


def test_exact_distances_give_the_list_hash_away_banded_and_hidden_do_not(
    sqlite_hw: Hashwatch,
) -> None:
    listed, near = _listed_and_near(1)
    _setup(sqlite_hw, listed)
    exact = make_key(sqlite_hw, Role.MATCHER, "exact", disclosure="exact")
    banded = make_key(sqlite_hw, Role.MATCHER, "banded", disclosure="banded")
    hidden = make_key(sqlite_hw, Role.MATCHER, "hidden", disclosure="hidden")
    default = make_key(sqlite_hw, Role.MATCHER, "default")  # the server's default: banded
    with client(sqlite_hw) as c:
        # The documented risk of `exact`: one request recovers the list's hash.
        recovered, _ = _bit_probe(c, exact, near)
        assert recovered == listed
        for key in (banded, hidden, default):
            recovered, answers = _bit_probe(c, key, near)
            assert recovered is None
            # Every answer is the same: the request told the attacker nothing bit by bit.
            assert len(set(answers)) == 1 and answers[0] is not None
        _, banded_answers = _bit_probe(c, banded, near)
        assert banded_answers[0] == (None, "0-8")
        _, hidden_answers = _bit_probe(c, hidden, near)
        assert hidden_answers[0] == (None, None)
    # Each key's probe was flagged once, in the database's audit trail and the metrics.
    flagged = [e for e in AuditTrail(sqlite_hw.db).events() if e.action == "key.probe_flagged"]
    assert sorted(e.actor for e in flagged) == ["banded", "default", "exact", "hidden"]
    assert all(e.details["near_identical_queries"] >= 32 for e in flagged)
    assert _hex(listed) not in str([e.details for e in flagged])


def test_the_disclosure_of_a_key_is_chosen_by_the_admin(sqlite_hw: Hashwatch) -> None:
    listed, near = _listed_and_near(2)
    _setup(sqlite_hw, listed)
    admin = make_key(sqlite_hw, Role.ADMIN, "ops")
    with client(sqlite_hw) as c:
        made = c.post(
            "/v1/keys", headers=admin, json={"name": "platform", "role": "matcher"}
        ).json()
        assert made["disclosure"] is None  # the server's default applies
        platform = {"Authorization": f"Bearer {made['token']}"}
        one = {"signals": [{"type": "pdq", "value": _hex(near)}]}
        [m] = c.post("/v1/match", headers=platform, json=one).json()["matches"]
        assert m["distance_band"] == "0-8" and "distance" not in m
        patched = c.patch("/v1/keys/platform", headers=admin, json={"disclosure": "exact"})
        assert patched.status_code == 200 and patched.json()["disclosure"] == "exact"
        c.app.state.service._key_cache.clear()  # type: ignore[attr-defined]  # skip the 1 s cache
        [m] = c.post("/v1/match", headers=platform, json=one).json()["matches"]
        assert m["distance"] == 5
        bad = c.patch("/v1/keys/platform", headers=admin, json={"disclosure": "everything"})
        assert bad.status_code == 422
    actions = [(e.actor, e.action) for e in AuditTrail(sqlite_hw.db).events()]
    assert ("ops", "key.updated") in actions and ("ops", "key.created") in actions


def test_a_key_over_its_signal_budget_gets_429_with_retry_after(sqlite_hw: Hashwatch) -> None:
    sqlite_hw.lists.create("agency")
    capped = make_key(sqlite_hw, Role.MATCHER, "capped", signals_per_window=300)
    free = make_key(sqlite_hw, Role.MATCHER, "free")
    signals = {"signals": [{"type": "md5", "value": f"{i:032x}"} for i in range(200)]}
    with client(sqlite_hw, signal_window_s=600) as c:
        assert c.post("/v1/match", headers=capped, json=signals).status_code == 200
        over = c.post("/v1/match", headers=capped, json=signals)
        assert over.status_code == 429
        assert 1 <= int(over.headers["Retry-After"]) <= 600
        # Other keys have budgets of their own.
        assert c.post("/v1/match", headers=free, json=signals).status_code == 200


def test_a_flagged_prober_is_held_back_when_throttling_is_on(sqlite_hw: Hashwatch) -> None:
    listed, near = _listed_and_near(3)
    _setup(sqlite_hw, listed)
    prober = make_key(sqlite_hw, Role.MATCHER, "prober", disclosure="exact")
    signals = [{"type": "pdq", "value": _hex(_flip(near, bit))} for bit in range(64)]
    with client(sqlite_hw, probe_throttle=True) as c:
        r = c.post("/v1/match", headers=prober, json={"signals": signals})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        again = c.post("/v1/match", headers=prober, json={"signals": signals[:1]})
        assert again.status_code == 429
    [flag] = [e for e in AuditTrail(sqlite_hw.db).events() if e.action == "key.probe_flagged"]
    assert flag.actor == "prober" and flag.details["throttled"] is True


def test_re_encoded_copies_of_one_picture_are_not_a_probe(sqlite_hw: Hashwatch) -> None:
    """A platform checking the same viral picture many times (identical hashes) and unrelated
    pictures is not flagged."""
    sqlite_hw.lists.create("agency")
    platform = make_key(sqlite_hw, Role.MATCHER, "platform")
    rng = random.Random(4)
    same = _hex(rng.getrandbits(256))
    unrelated = [_hex(rng.getrandbits(256)) for _ in range(300)]
    with client(sqlite_hw) as c:
        for batch in ([same] * 300, unrelated):
            body = {"signals": [{"type": "pdq", "value": v} for v in batch]}
            assert c.post("/v1/match", headers=platform, json=body).status_code == 200
    assert not [e for e in AuditTrail(sqlite_hw.db).events() if e.action == "key.probe_flagged"]
