"""Server workers share one PDQ index: each maps the index file instead of reading it, they
answer alike, and a hash added after they started is matchable in both once they catch up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import EntryRecord
from hashwatch.signals.types import HashType
from hashwatch.store.service import Role
from hashwatch.web.app import create_app
from tests.serve_helpers import make_key, settings


def _flip(value: str, bits: int, rng: np.random.Generator) -> str:
    raw = bytearray(bytes.fromhex(value))
    for b in rng.choice(256, size=bits, replace=False):
        raw[b // 8] ^= 1 << (b % 8)
    return raw.hex()


def _mapped(path: Path) -> bool:
    """Whether this process maps ``path`` (its pages then sit in the shared page cache)."""
    return str(path) in Path("/proc/self/maps").read_text()


def test_two_workers_map_one_index_and_both_see_a_new_hash(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    stored = [rng.bytes(32).hex() for _ in range(300)]  # benign random stand-ins
    config = Settings(database_url=f"sqlite:///{tmp_path / 'hw.sqlite3'}", data_dir=tmp_path / "d")
    setup = Hashwatch(config)
    listing = tmp_path / "known.txt"
    listing.write_text("".join(f"pdq {v}\n" for v in stored))
    setup.lists.import_file("known", listing)
    _ = setup.pdq_index  # writes the index file, as an import before serving does
    key = make_key(setup, Role.MATCHER)
    index_file = config.index_path
    assert index_file.exists()

    workers = [Hashwatch(config), Hashwatch(config)]  # one per server process
    apps = [create_app(hw, settings(background=False)) for hw in workers]
    assert _mapped(index_file)
    queries = [_flip(v, int(rng.integers(0, 32)), rng) for v in stored[:40]]
    queries += [rng.bytes(32).hex() for _ in range(40)]
    body = {"signals": [{"type": "pdq", "value": q} for q in queries]}
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        answers = [c.post("/v1/match", json=body, headers=key).json() for c in (one, two)]
        assert answers[0]["signals"] == answers[1]["signals"]
        found = [bool(s["matches"]) for s in answers[0]["signals"]]
        assert found == [True] * 40 + [False] * 40

        new = rng.bytes(32).hex()
        record = EntryRecord(hashes=((HashType.PDQ, new),), source="added while serving")
        setup.lists.add_records("known", [record], source="test")
        for app in apps:
            app.state.service.refresh_if_changed()  # what each worker's refresh loop does
        near = {"signals": [{"type": "pdq", "value": _flip(new, 9, rng)}]}
        for c in (one, two):
            matches = c.post("/v1/match", json=near, headers=key).json()["matches"]
            assert len(matches) == 1, matches
    for hw in [*workers, setup]:
        hw.close()
