"""The scan's main process matches each unit cheaply (brief 15G): with no list at all nothing
is looked up, exact digests are looked up on the driver's cursor with a few statements shared
by units of any size, and PDQ hashes a worker made are checked as one batch. An examiner gets
the very same matches, notes and errors as through SQLAlchemy's statements."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, and_

from hashwatch.app import Hashwatch
from hashwatch.errors import InvalidHashError
from hashwatch.lists.model import ListKind
from hashwatch.matching.matcher import H, Matcher, MatchResult, Signal
from hashwatch.signals.pdq import DIHEDRAL_NAMES
from hashwatch.signals.types import HashType


def _hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _near(value: str, bits: int, rng: random.Random) -> str:
    number = int(value, 16)
    for bit in rng.sample(range(256), bits):
        number ^= 1 << bit
    return f"{number:064x}"


def _through_sqlalchemy(self: Matcher, conn: Connection, hash_type: str, values: list[str]) -> Any:
    """The exact lookup as it was: the facts statement executed by SQLAlchemy."""
    where = and_(H.c.hash_type == hash_type, H.c.value.in_(values))
    return conn.execute(self.facts_query().where(where)).all()


def _import(hw: Hashwatch, path: Path, rows: list[dict[str, str]], **kw: Any) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["md5", "sha256", "pdq", "category"])
        writer.writeheader()
        writer.writerows(rows)
    hw.lists.import_file(path.stem, path, **kw)


def _picture(rng: random.Random, pdq: str, quality: int = 90) -> list[Signal]:
    """A scanned picture's signals: digests and a PDQ hash with its eight variants."""
    variants = (pdq, *(_hex(rng, 256) for _ in DIHEDRAL_NAMES[1:]))
    return [
        Signal(HashType.MD5, _hex(rng, 128)),
        Signal(HashType.SHA256, _hex(rng, 256)),
        Signal(HashType.PDQ, pdq, quality, variants),
    ]


def _capitals(s: Signal) -> Signal:
    dihedral = tuple(v.upper() for v in s.dihedral) if s.dihedral else None
    return Signal(s.hash_type, s.value.upper(), s.quality, dihedral)


def test_a_scan_with_no_list_matches_nothing_and_notes_poor_pictures(
    hw: Hashwatch,
) -> None:
    rng = random.Random(15)
    matcher = hw.matcher()
    items = [_picture(rng, _hex(rng, 256)) for _ in range(70)]
    items[3] = _picture(rng, _hex(rng, 256), quality=20)  # a flat picture
    results = matcher.match_many(items)
    assert [r.matches for r in results] == [[] for _ in items]
    assert results[3].notes == ["pdq quality 20 is below 50: not matched"]
    assert all(not r.notes for n, r in enumerate(results) if n != 3)
    # A malformed hash is refused with lists or without, as before.
    with pytest.raises(InvalidHashError):
        matcher.match_many([[Signal(HashType.PDQ, "zz" * 32)]])


def test_exact_and_pdq_matches_are_those_sqlalchemy_read(
    hw: Hashwatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    pictures = [_picture(rng, _hex(rng, 256)) for _ in range(150)]
    known = [
        {"md5": p[0].value, "sha256": "", "pdq": _hex(rng, 256), "category": str(1 + n % 3)}
        for n, p in enumerate(pictures[::7])
    ]
    known += [  # near copies of pictures, and one SHA-256
        {"md5": _hex(rng, 128), "sha256": "", "pdq": _near(p[2].value, 6, rng), "category": "2"}
        for p in pictures[3::11]
    ]
    known.append({"md5": "", "sha256": pictures[5][1].value, "pdq": "", "category": "1"})
    _import(hw, tmp_path / "agency.csv", known)
    _import(hw, tmp_path / "ignore.csv", [dict(known[0], category="")], kind=ListKind.IGNORABLE)
    # Units of several sizes (64, 1, 23, 62 pictures): statements for several counts.
    units = [pictures[:64], pictures[64:65], pictures[65:88], pictures[88:]]
    # PDQ hashes in capitals read as before (digests so are not found, as before).
    capitals = [[_capitals(s) for s in picture] for picture in units[0]]
    fast = [hw.matcher().match_many(u) for u in [*units, capitals]]
    with monkeypatch.context() as m:
        m.setattr(Matcher, "facts_of_values", _through_sqlalchemy)
        slow = [hw.matcher().match_many(u) for u in [*units, capitals]]
    assert fast == slow
    pdq = [[m for m in r.matches if m.hash_type == "pdq"] for r in fast[0]]
    assert [[m for m in r.matches if m.hash_type == "pdq"] for r in fast[-1]] == pdq
    found: list[MatchResult] = [r for results in fast for r in results]
    kinds = {(m.list, m.hash_type) for r in found for m in r.matches + r.suppressed}
    assert kinds == {("agency", "md5"), ("agency", "pdq"), ("agency", "sha256"), ("ignore", "md5")}
    assert sum(1 for r in found if any(m.hash_type == "pdq" for m in r.matches)) >= 10


def test_a_large_unit_s_exact_lookups_stay_within_sqlites_oldest_variable_limit(
    hw: Hashwatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unit of 1,300 pictures (a zip's members, say): every listed one is found, and no
    statement binds more than 999 values (SQLite before 3.32 refused more)."""
    rng = random.Random(9)
    pictures = [_picture(rng, _hex(rng, 256)) for _ in range(1300)]
    listed = pictures[::13]
    rows = [{"md5": p[0].value, "sha256": "", "pdq": "", "category": "1"} for p in listed]
    _import(hw, tmp_path / "agency.csv", rows)
    bound: list[int] = []
    real = Matcher._read_facts

    def counting(conn: Connection, sql: str, params: tuple[Any, ...]) -> Any:
        bound.append(len(params))
        return real(conn, sql, params)

    monkeypatch.setattr(Matcher, "_read_facts", staticmethod(counting))
    results = hw.matcher().match_many(pictures)
    found = [n for n, r in enumerate(results) if any(m.hash_type == "md5" for m in r.matches)]
    assert found == list(range(0, 1300, 13))
    assert bound and max(bound) <= 999
