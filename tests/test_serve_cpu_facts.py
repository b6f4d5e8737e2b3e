"""A hit's facts are read on the driver's cursor (brief 18C) instead of through SQLAlchemy's
execution: an examiner matching near copies, exact copies, a hash two lists share, withdrawn
entries and video frames gets the very same matches either way, on SQLite and PostgreSQL; and a
database that refuses the read still fails the way the service maps to an answer."""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from hashwatch.app import Hashwatch
from hashwatch.matching.matcher import H, Matcher, MatchResult, Signal
from hashwatch.signals.types import HashType

VIDEO = Path(__file__).parent / "data" / "video" / "chair-19-sd-bar.vpdq.txt"


def _near(value: int, bits: int, rng: random.Random) -> str:
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return f"{value:064x}"


def _write_list(path: Path, hashes: Sequence[int]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["pdq", "category", "series"])
        writer.writeheader()
        for i, h in enumerate(hashes):
            series = f"s{i % 3}" if i % 2 else ""
            writer.writerow({"pdq": f"{h:064x}", "category": str(1 + i % 3), "series": series})
    return path


def _through_sqlalchemy(self: Matcher, conn: Connection, hash_ids: list[int]) -> Any:
    """The read as it was: the facts statement executed by SQLAlchemy."""
    return conn.execute(self.facts_query().where(H.c.id.in_(hash_ids))).all()


def _match_both(
    hw: Hashwatch, items: list[list[Signal]], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[MatchResult], list[MatchResult]]:
    fast = hw.matcher().match_many(items)
    with monkeypatch.context() as m:
        m.setattr(Matcher, "facts_of", _through_sqlalchemy)
        slow = hw.matcher().match_many(items)
    return fast, slow


def test_matches_are_the_same_as_read_through_sqlalchemy(
    hw: Hashwatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(18)
    listed = [rng.getrandbits(256) for _ in range(40)]
    hw.lists.import_file("agency", _write_list(tmp_path / "agency.csv", listed))
    hw.lists.import_file("partner", _write_list(tmp_path / "partner.csv", listed[:5]))
    # The agency withdraws its last ten entries: they must no longer match.
    hw.lists.import_file("agency", _write_list(tmp_path / "agency-v2.csv", listed[:30]))
    hw.lists.import_file("meta", VIDEO)
    frames = [line.split(",")[2] for line in VIDEO.read_text().splitlines()[:12]]

    items = [
        [Signal(HashType.PDQ, f"{listed[0]:064x}")],  # in both lists
        [Signal(HashType.PDQ, _near(listed[7], 6, rng))],
        [Signal(HashType.PDQ, _near(listed[35], 3, rng))],  # withdrawn
        [Signal(HashType.PDQ, _near(h, 4, rng)) for h in listed[10:25]],  # many ids at once
        [Signal(HashType.PDQ, f"{rng.getrandbits(256):064x}")],  # unknown
        *([Signal(HashType.PDQ, f)] for f in frames),  # video frames: their times
    ]
    fast, slow = _match_both(hw, items, monkeypatch)
    assert [r.as_dict() for r in fast] == [r.as_dict() for r in slow]
    assert fast == slow
    names = [{m.list for m in r.matches} for r in fast]
    assert names[:3] == [{"agency", "partner"}, {"agency"}, set()] and names[4] == set()
    assert len(fast[3].matches) == 15
    times = [m.ref_time for r in fast[5:] for m in r.matches]
    assert any(isinstance(t, float) and t > 0 for t in times)  # frame times, as floats
    for r in fast:
        for m in r.matches:
            assert type(m.entry_id) is int and type(m.distance) is int


def test_a_refused_read_fails_as_a_database_error(hw: Hashwatch, tmp_path: Path) -> None:
    hw.lists.import_file("agency", _write_list(tmp_path / "agency.csv", [1 << 200]))
    matcher = hw.matcher()
    item = [Signal(HashType.PDQ, f"{1 << 200:064x}")]
    assert [m.list for m in matcher.match(item).matches] == ["agency"]
    # A statement the database refuses (a table it does not know): SQLAlchemy's error kinds,
    # which the service answers with 503, never the driver's own exception.
    matcher._facts_sql = {
        1: "SELECT * FROM no_such_table WHERE 1 IN (" + ("?" if hw.db.is_sqlite else "%s") + ")"
    }
    with pytest.raises(sa_exc.DBAPIError) as caught:
        matcher.match(item)
    assert isinstance(caught.value, sa_exc.OperationalError | sa_exc.ProgrammingError)
    matcher._facts_sql = {}
    assert [m.list for m in matcher.match(item).matches] == ["agency"]  # and the next read works
