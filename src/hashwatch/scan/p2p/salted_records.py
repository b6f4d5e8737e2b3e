"""eMule ``cancelled.met`` records matched in the scan's main process, where the store is.

A ``cancelled.met`` written since eMule 0.48 holds MD5(seed || ED2K hash) per cancelled
download, one seed for the whole file, so its records carry no hash a list holds (the reader
marks them ``unmatchable``). Here, per unit of work, the records are grouped by seed and each
seed costs one pass over the store's ED2K values (:func:`hashwatch.matching.salted.
match_salted_ed2k`, given in by the scan's main process); a record whose salted value
matches gets the entry's matches, as an ED2K match, and the record says how it was checked.
When the store holds more ED2K values than the bound, the record says why it was not
matched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from hashwatch.lists.model import ListKind
from hashwatch.matching.match import Match
from hashwatch.scan.model import ItemRecord

__all__ = ["SaltedAnswer", "SaltedRecords"]


class SaltedAnswer(Protocol):
    """What one pass over the lists found (:class:`hashwatch.matching.salted.SaltedAnswer`)."""

    @property
    def matches(self) -> Mapping[str, list[Match]]: ...
    @property
    def checked(self) -> int: ...
    @property
    def skipped(self) -> str | None: ...


class _Result(Protocol):
    matches: list[Match]
    suppressed: list[Match]


def _salted(record: ItemRecord) -> tuple[int, str] | None:
    """(seed, salted value) of a seeded cancelled.met record, else None."""
    p2p = record.p2p
    if not p2p or p2p.get("artifact") != "cancelled.met" or p2p.get("client") != "emule":
        return None
    details = p2p.get("details") or {}
    seed, salted = details.get("seed"), details.get("salted_hash")
    if not isinstance(seed, int) or not isinstance(salted, str) or len(salted) != 32:
        return None
    return seed, salted


class SaltedRecords:
    """Matches the seeded cancelled.met records of each unit with ``check(seed, salted
    values)``: the main process's one pass over the lists per seed (the scan's stage holds
    no database; :func:`hashwatch.matching.salted.match_salted_ed2k` is given in)."""

    def __init__(self, check: Callable[[int, set[str]], SaltedAnswer]) -> None:
        self.check = check

    def match(self, records: Sequence[ItemRecord], results: Sequence[_Result]) -> None:
        """Adds to ``results`` (one per record) the matches of seeded cancelled.met records."""
        wanted: dict[int, dict[int, str]] = {}  # seed -> record position -> salted value
        for n, record in enumerate(records):
            found = _salted(record)
            if found is not None:
                wanted.setdefault(found[0], {})[n] = found[1]
        for seed, positions in wanted.items():
            answer = self.check(seed, set(positions.values()))
            for n, salted in positions.items():
                p2p = records[n].p2p
                assert p2p is not None
                if answer.skipped is not None:
                    p2p["unmatchable"] = answer.skipped
                    continue
                p2p["unmatchable"] = None
                p2p["details"]["salted_check"] = (
                    f"checked: {answer.checked:,} stored ED2K hashes salted with seed {seed} "
                    "and compared"
                )
                matches = answer.matches.get(salted)
                if matches:
                    result = results[n]
                    every = [*result.matches, *result.suppressed, *matches]
                    negative = [m for m in every if m.kind == ListKind.NEGATIVE]
                    # A known false positive suppresses the others, as in Matcher.match_many.
                    result.matches = negative or every
                    result.suppressed = [m for m in every if m not in negative] if negative else []
