"""What reviewers say about a case's media, and when that settles it.

A *target* is a cluster of near-duplicate new media (a vote applies to every member not split
off) or one item. A reviewer has one current vote per target: changing it writes a new
version and keeps the old one (``superseded_by``). A vote is a category of the case's scheme
or "not relevant", with flags (series name, victim identified, offender identified) and a
note.

The consensus rule (:func:`review_state`): a target is *settled* when K reviewers' current
votes agree on category and not-relevant (K is the case's ``consensus_k``; 1 lets a lone
investigator settle at once). Once K reviewers have voted and no K of them agree, the target
is *disputed*: it goes to the lead's queue and a lead's decision settles it, kept with every
vote. A target with fewer votes is *voted*, one with none *pending*.

Votes that a revoked decision was made on no longer count towards consensus: after a
revocation the target waits for a lead (disputed) or for reviewers to vote again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from hashwatch.errors import ConfigError
from hashwatch.lists.model import EntryRecord, VideoFrameHash
from hashwatch.signals.types import HashType

__all__ = [
    "Decision",
    "ReviewState",
    "Target",
    "Vote",
    "VoteChoice",
    "entry_record",
    "review_state",
]

MAX_NOTE = 10_000
MAX_SERIES = 500


class ReviewState(StrEnum):
    PENDING = "pending"  # no vote yet
    VOTED = "voted"  # votes, fewer than K reviewers, no disagreement settled
    SETTLED = "settled"  # a decision stands (consensus or a lead's)
    DISPUTED = "disputed"  # K reviewers voted and no K agree, or a decision was revoked


@dataclass(frozen=True)
class Target:
    """A cluster (``cluster`` = its number in the case) or an item (``item`` = its id)."""

    cluster: int | None = None
    item: int | None = None

    def __post_init__(self) -> None:
        if (self.cluster is None) == (self.item is None):
            raise ConfigError("a review target is one cluster or one item")

    @classmethod
    def parse(cls, text: str) -> Target:
        """``cluster:3`` or ``item:17``."""
        kind, _, number = text.strip().partition(":")
        if kind not in ("cluster", "item") or not number.isdigit() or len(number) > 18:
            raise ConfigError(f"not a review target: {text!r} (cluster:NUMBER or item:ID)")
        return cls(cluster=int(number)) if kind == "cluster" else cls(item=int(number))

    def __str__(self) -> str:
        return f"cluster:{self.cluster}" if self.cluster is not None else f"item:{self.item}"


@dataclass(frozen=True)
class VoteChoice:
    """What a reviewer (or a lead deciding) says about a target."""

    category: str | None = None
    not_relevant: bool = False
    series: str | None = None
    victim_identified: bool = False
    offender_identified: bool = False
    note: str | None = None

    def checked(self) -> VoteChoice:
        """The choice with blank text as None, or :class:`ConfigError` saying what is wrong
        (the category itself is checked against the case's scheme by the store)."""
        category = (self.category or "").strip() or None
        if self.not_relevant and category is not None:
            raise ConfigError("a vote is a category or 'not relevant', not both")
        if not self.not_relevant and category is None:
            raise ConfigError("a vote needs a category or 'not relevant'")
        series = (self.series or "").strip() or None
        note = (self.note or "").strip() or None
        if series is not None and len(series) > MAX_SERIES:
            raise ConfigError(f"a series name is at most {MAX_SERIES} characters")
        if note is not None and len(note) > MAX_NOTE:
            raise ConfigError(f"a note is at most {MAX_NOTE} characters")
        return VoteChoice(
            category,
            self.not_relevant,
            series,
            self.victim_identified,
            self.offender_identified,
            note,
        )

    @property
    def agreement(self) -> tuple[str | None, bool]:
        """What reviewers must agree on to settle: the category and not-relevant."""
        return (self.category, self.not_relevant)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Vote:
    id: int
    target: Target
    user: str
    choice: VoteChoice
    at: datetime
    superseded_by: int | None = None

    @property
    def current(self) -> bool:
        return self.superseded_by is None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": str(self.target),
            "user": self.user,
            **self.choice.as_json(),
            "at": self.at.isoformat(),
            "superseded_by": self.superseded_by,
        }


@dataclass(frozen=True)
class Decision:
    """A settled target and how: by ``consensus`` or by a ``lead``; revoked ones are kept."""

    id: int
    target: Target
    choice: VoteChoice
    how: str
    decided_by: str
    decided_at: datetime
    vote_ids: list[int]
    list_name: str | None
    entry_ids: list[int]
    list_error: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoked_reason: str | None = None
    votes: list[Vote] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": str(self.target),
            **self.choice.as_json(),
            "how": self.how,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat(),
            "list": self.list_name,
            "entry_ids": list(self.entry_ids),
            "list_error": self.list_error,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_by": self.revoked_by,
            "revoked_reason": self.revoked_reason,
            "votes": [v.as_json() for v in self.votes],
        }


def review_state(
    current: Sequence[VoteChoice], k: int, *, settled: bool, revoked_before: bool
) -> tuple[ReviewState, VoteChoice | None]:
    """The state of a target from the current votes that count (see the module's rule), and
    the choice K reviewers agree on when there is one."""
    if settled:
        return ReviewState.SETTLED, None
    counts = Counter(c.agreement for c in current)
    for agreement, n in counts.most_common():
        if n >= k:
            return ReviewState.SETTLED, _merged([c for c in current if c.agreement == agreement])
    if len(current) >= k or (revoked_before and not current):
        return ReviewState.DISPUTED, None
    return (ReviewState.VOTED if current else ReviewState.PENDING), None


def _merged(agreeing: Sequence[VoteChoice]) -> VoteChoice:
    """The decision of agreeing votes: their category, a flag set when any voter set it, the
    series name most of them gave."""
    series = Counter(c.series for c in agreeing if c.series).most_common(1)
    return VoteChoice(
        category=agreeing[0].category,
        not_relevant=agreeing[0].not_relevant,
        series=series[0][0] if series else None,
        victim_identified=any(c.victim_identified for c in agreeing),
        offender_identified=any(c.offender_identified for c in agreeing),
    )


_ENTRY_TYPES = [t for t in HashType if t.impl.media_entry]


def entry_record(
    digests: dict[str, Any], choice: VoteChoice, provenance: dict[str, Any], *, date: str
) -> EntryRecord | None:
    """The list entry of a settled item: every hash of the file the scan recorded (digests,
    PDQ, video frames), the decision's facts and where they came from; None when the scan
    recorded no hash of it (an unreadable file)."""
    hashes = tuple((t, str(digests[t.value])) for t in _ENTRY_TYPES if digests.get(t.value))
    frames = tuple(
        VideoFrameHash(int(f["frame"]), float(f["timestamp"]), str(f["pdq"]), int(f["quality"]))
        for f in _frames(digests.get("frames"))
    )
    if not hashes:
        return None
    extra: dict[str, Any] = {"review": provenance}
    if choice.offender_identified:
        extra["OffenderIdentified"] = True
    return EntryRecord(
        hashes=hashes,
        category=None if choice.not_relevant else choice.category,
        series=choice.series,
        victim_identified=choice.victim_identified or None,
        comment=f"settled in case review ({provenance.get('how')})",
        date=date,
        source=f"case {provenance.get('case')} {provenance.get('target')}",
        extra=extra,
        frames=frames,
    )


def _frames(value: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(value, list):
        return ()
    return [
        f
        for f in value
        if isinstance(f, dict) and {"frame", "timestamp", "pdq", "quality"} <= f.keys()
    ]
