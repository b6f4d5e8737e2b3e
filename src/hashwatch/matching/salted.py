"""ED2K hashes stored salted: eMule's ``cancelled.met`` (since 0.48) keeps, for each cancelled
download, MD5(seed as little-endian uint32 || ED2K digest) with one seed per file, written
once in its header (``CCancelledFileList``). A salted value cannot be looked up in a list;
the lists' ED2K values are salted with the artifact's seed instead, one pass over them per
seed, and the salted values compared.

The pass streams the store's ED2K values from its lookup index (value and row id only, a
chunk at a time) and keeps only the rows whose salted value is wanted; those few are then
checked against the matcher's lists (live entries, active hashes). Memory is bounded by the
records asked about, not by the lists. Its cost grows with the ED2K values held: above
``max_entries`` the pass is not made and the answer says so plainly.

A match names the list entry (list, category, entry id) as an ED2K match does; the entry's
ED2K value itself is never written into the answer, so a case holds no list value that the
evidence did not hold.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from hashwatch.lists.model import ListKind
from hashwatch.matching.match import Match
from hashwatch.store.models import HASHES

if TYPE_CHECKING:
    from hashwatch.matching.matcher import Matcher

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "SaltedAnswer",
    "count_ed2k",
    "match_salted_ed2k",
    "salt_ed2k",
]

# ED2K values salted per seed at most; 1,000,000 take about a second (docs/benchmarks.md).
DEFAULT_MAX_ENTRIES = 10_000_000
_CHUNK = 20_000  # rows fetched from the store at a time
_SEED = struct.Struct("<I")
H = HASHES


def salt_ed2k(seed: int, ed2k: bytes) -> bytes:
    """eMule's salted value of an ED2K digest: MD5(seed as little-endian uint32 || digest)."""
    return hashlib.md5(_SEED.pack(seed) + ed2k).digest()


@dataclass
class SaltedAnswer:
    """What one pass found: per wanted salted value (hex), the matches of the entries whose
    ED2K value salts to it, negatives first as :meth:`Matcher.match_many` orders them;
    ``checked`` the ED2K values salted; ``skipped`` why no pass was made (None when made)."""

    matches: dict[str, list[Match]] = field(default_factory=dict)
    checked: int = 0
    skipped: str | None = None


def count_ed2k(matcher: Matcher) -> int:
    """How many ED2K values the store holds (what one pass salts: every list's, active or
    not, read from the lookup index alone; the entries of other lists are dropped after)."""
    with matcher.db.read() as conn:
        total = conn.execute(
            select(func.count()).select_from(H).where(H.c.hash_type == "ed2k")
        ).scalar_one()
    return int(total)


def match_salted_ed2k(
    matcher: Matcher,
    seed: int,
    wanted: Collection[str],
    *,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    listed: int | None = None,
) -> SaltedAnswer:
    """The list entries whose ED2K value, salted with ``seed``, is one of ``wanted`` (salted
    values in hex). ``listed``: the count of ED2K values when the caller knows it."""
    answer = SaltedAnswer()
    targets = {bytes.fromhex(v) for v in wanted}
    ids = list(matcher.list_ids)
    if not targets or not ids:
        return answer
    total = count_ed2k(matcher) if listed is None else listed
    if total > max_entries:
        answer.skipped = (
            f"the hash store holds {total:,} ED2K hashes, more than the {max_entries:,} salted per "
            "cancelled.met seed at most: not checked (raise --salted-ed2k-max to check)"
        )
        return answer
    prefix = _SEED.pack(seed)
    md5 = hashlib.md5
    hits: dict[int, str] = {}  # hash row id -> the salted value it gives
    # Only the lookup index (hash type, value, row id) is read: asking for the list or the
    # active flag here would visit the table row of every value, in value order (at a
    # million values, 43 s instead of a few). The few rows found are checked below.
    query = (
        select(H.c.id, H.c.value).where(H.c.hash_type == "ed2k").execution_options(yield_per=_CHUNK)
    )
    with matcher.db.read() as conn:
        for partition in conn.execute(query).partitions(_CHUNK):
            for row_id, value in partition:
                salted = md5(prefix + bytes.fromhex(value)).digest()
                if salted in targets:
                    hits[int(row_id)] = salted.hex()
            answer.checked += len(partition)
        if hits:
            rows = conn.execute(matcher.facts_query().where(H.c.id.in_(list(hits)))).all()
            found: dict[str, list[Match]] = {}
            for row in rows:
                match = matcher.to_match(row, "ed2k", 0, None)
                if match is not None:
                    found.setdefault(hits[int(row.hash_id)], []).append(match)
            answer.matches = {k: sorted(v, key=_order) for k, v in found.items()}
    return answer


def _order(match: Match) -> tuple[bool, str, int]:
    return (match.kind != ListKind.NEGATIVE, match.list, match.entry_id)
