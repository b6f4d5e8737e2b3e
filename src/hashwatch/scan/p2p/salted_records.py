"""eMule ``cancelled.met`` records matched in the scan's main process, where the store is.

A ``cancelled.met`` written since eMule 0.48 holds MD5(seed || ED2K hash) per cancelled
download, one seed for the whole file, so its records carry no hash a list holds (the reader
marks them ``unmatchable``). Here, per unit of work, the records are grouped by seed and each
seed costs one pass over the lists' ED2K values (:func:`hashwatch.matching.salted.
match_salted_ed2k`); a record whose salted value matches gets the entry's matches, as an
ED2K match, and the record says how it was checked. When the lists hold more ED2K values
than the bound, the record keeps saying why it was not matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hashwatch.matching.salted import (
    DEFAULT_MAX_ENTRIES,
    count_ed2k,
    match_salted_ed2k,
    split_negative,
)
from hashwatch.scan.model import ItemRecord

if TYPE_CHECKING:
    from hashwatch.matching.matcher import Matcher, MatchResult

__all__ = ["SaltedRecords"]


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
    """Matches the seeded cancelled.met records of each unit; the lists' ED2K count is read
    once per scan (the lists a scan uses do not change under it)."""

    def __init__(self, matcher: Matcher, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.matcher = matcher
        self.max_entries = max_entries
        self._listed: int | None = None

    def match(self, records: Sequence[ItemRecord], results: Sequence[MatchResult]) -> None:
        """Adds to ``results`` (one per record) the matches of seeded cancelled.met records."""
        wanted: dict[int, dict[int, str]] = {}  # seed -> record position -> salted value
        for n, record in enumerate(records):
            found = _salted(record)
            if found is not None:
                wanted.setdefault(found[0], {})[n] = found[1]
        if not wanted:
            return
        if self._listed is None:
            self._listed = count_ed2k(self.matcher)
        for seed, positions in wanted.items():
            answer = match_salted_ed2k(
                self.matcher,
                seed,
                set(positions.values()),
                max_entries=self.max_entries,
                listed=self._listed,
            )
            for n, salted in positions.items():
                p2p = records[n].p2p
                assert p2p is not None
                if answer.skipped is not None:
                    p2p["unmatchable"] = answer.skipped
                    continue
                p2p["unmatchable"] = None
                p2p["details"]["salted_check"] = (
                    f"checked against {answer.checked:,} listed ED2K hashes salted with seed {seed}"
                )
                matches = answer.matches.get(salted)
                if matches:
                    result = results[n]
                    result.matches, result.suppressed = split_negative(
                        [*result.matches, *result.suppressed, *matches]
                    )
