"""NCMEC hash sharing as a :class:`~hashwatch.exchange.base.SignalExchange` (kind ``ncmec``).

The wire format is spoken by python-threatexchange's maintained client
(``threatexchange.exchanges.clients.ncmec.hash_api``): ``GET {base}/v2/entries?from=&to=``
answers XML entries (``image``/``video`` with ``member``, ``id``, ``classification`` and
``fingerprints``; ``deletedImage``/``deletedVideo`` tombstones), paged by ``paging > next``
URLs; feedback is ``PUT {base}/v2/entries/{member}/{id}/{TYPE}/feedback``.

Mapping: an entry's key is ``ncmec:{member id}-{entry id}``; its fingerprints that are
hashwatch signal types (MD5, SHA1, PDQ) become its hashes, the others (PDNA, NETCLEAN,
VIDENTIFIER, TMK_PDQF, ...) are kept out and counted in :attr:`NCMECExchange.unmapped`; the
classification (A1, B2, ...) is the category, raw, in scheme ``NCMEC``. A tombstone, and an
entry with no fingerprint hashwatch can match, arrive as ``None`` (delete).

Checkpoints: NCMEC does not return entries in time order, so a time range counts as read only
once its paging is exhausted (as pytx does). A checkpoint inside a range keeps the range and
NCMEC's paging URL, which NCMEC honours for 12 hours; after that the range is read again from
its start (updates are idempotent), so a checkpoint is never stale as a whole.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hashwatch.errors import ExchangeError
from hashwatch.exchange._http import known_hash, peer_errors, require_pytx
from hashwatch.exchange.base import (
    FetchDelta,
    Opinion,
    PeerConfig,
    RemoteEntry,
    SharedHash,
    SignalExchange,
    register,
)

__all__ = ["NCMECCheckpoint", "NCMECExchange"]

log = logging.getLogger(__name__)

PAGING_URL_TTL = 12 * 3600  # NCMEC asks that paging URLs are not kept longer (pytx)
END_LAG = 5  # seconds: entries land slightly out of order, so stop a little before now (pytx)
# hashwatch signal type -> NCMEC fingerprint (feedback) type
_FEEDBACK_TYPE = {"md5": "MD5", "sha1": "SHA1", "pdq": "PDQ"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_KEY = re.compile(r"^ncmec:(\d+)-(.+)$")


@dataclass(frozen=True)
class NCMECCheckpoint:
    """Entries up to ``since`` are applied; ``paging_url`` (with ``range_end`` and
    ``paged_at``) resumes the range ``[since, range_end]`` part-way through."""

    since: int
    paging_url: str | None = None
    range_end: int | None = None
    paged_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "paging_url": self.paging_url,
            "range_end": self.range_end,
            "paged_at": self.paged_at,
        }

    def is_stale(self) -> bool:
        """Never: NCMEC keeps entries and tombstones, and an expired paging URL only means
        reading its time range again."""
        return False

    def paging_valid(self, now: float) -> bool:
        return bool(
            self.paging_url
            and self.range_end is not None
            and self.paged_at is not None
            and now - self.paged_at <= PAGING_URL_TTL
        )


@register
class NCMECExchange(SignalExchange[NCMECCheckpoint]):
    """NCMEC hash sharing. ``url``: the environment's base URL (``.../hashsharing``) or a pytx
    environment name (``Industry``, ``NGO``, ``test_Industry``, ...); ``token``:
    ``user:password``; options: ``members`` (comma-separated member ids to keep),
    ``negative_reason`` (the reason name or GUID a false positive is reported with)."""

    kind = "ncmec"
    # The clock the fetch ranges end at; a class attribute so that a test can move time.
    clock: ClassVar[Callable[[], float]] = time.time

    def __init__(self, config: PeerConfig) -> None:
        super().__init__(config)
        self._api = require_pytx("threatexchange.exchanges.clients.ncmec.hash_api", "ncmec")
        user, _, password = (config.token or "").partition(":")
        if not user or not password:
            raise ExchangeError(f"peer {config.name!r}: the NCMEC token is 'user:password'")
        env = self._api.NCMECEnvironment
        environment = env[config.url] if config.url in env.__members__ else env.Industry
        self._client = self._api.NCMECHashAPI(user, password, environment)
        if config.url not in env.__members__:
            # The client takes one of NCMEC's environments; any other base URL (a proxy, a
            # test server) replaces that environment's address.
            self._client._base_url = config.url.rstrip("/")
        members = config.options.get("members", "")
        self._members = {int(m) for m in members.split(",") if m.strip()}
        self.unmapped: Counter[str] = Counter()  # fingerprint type -> values kept out

    @classmethod
    def checkpoint_from_json(cls, data: Mapping[str, Any]) -> NCMECCheckpoint:
        return NCMECCheckpoint(
            int(data["since"]),
            data.get("paging_url"),
            data.get("range_end"),
            data.get("paged_at"),
        )

    def fetch_iter(
        self, checkpoint: NCMECCheckpoint | None
    ) -> Iterator[FetchDelta[NCMECCheckpoint]]:
        now = int(type(self).clock())
        start = checkpoint.since if checkpoint else 0
        end = now - END_LAG
        resume = ""
        if checkpoint is not None and checkpoint.paging_valid(now):
            assert checkpoint.paging_url is not None and checkpoint.range_end is not None
            resume, end = checkpoint.paging_url, checkpoint.range_end
        if start >= end:
            return
        pages = self._client.get_entries_iter(
            start_timestamp=start, end_timestamp=end, resume_paging_url=resume
        )
        while True:
            with peer_errors(self.config.name, "reading NCMEC entries"):
                page = next(pages, None)
            if page is None:
                return
            updates = {}
            for update in page.updates:
                if self._members and update.member_id not in self._members:
                    continue
                key = f"ncmec:{update.member_id}-{update.id}"
                updates[key] = None if update.deleted else self._entry(key, update)
            if page.next:
                cp = NCMECCheckpoint(start, page.next, end, int(type(self).clock()))
            else:
                cp = NCMECCheckpoint(end)
            yield FetchDelta(updates, cp)

    def _entry(self, key: str, update: Any) -> RemoteEntry | None:
        hashes = []
        unmapped = []
        for fp_type, value in sorted(update.fingerprints.items()):
            known = known_hash(fp_type, value)
            if known is None:
                self.unmapped[fp_type.upper()] += 1
                unmapped.append(fp_type.upper())
            else:
                hashes.append(SharedHash(*known))
        if not hashes:
            return None  # nothing here can match it: delete it if an earlier version had
        return RemoteEntry(
            key=key,
            hashes=tuple(hashes),
            category=update.classification,
            scheme="NCMEC",
            fields={"media": update.entry_type.value, "unmapped_types": unmapped},
            provenance={"org": "NCMEC", "member": update.member_id, "entry": update.id},
        )

    def report_opinion(
        self, entry: RemoteEntry, opinion: Opinion, reason: str | None = None
    ) -> None:
        """Affirmative feedback for CONFIRMED, negative (with a reason) for FALSE_POSITIVE, on
        each of the entry's fingerprints NCMEC takes feedback for."""
        if opinion not in (Opinion.CONFIRMED, Opinion.FALSE_POSITIVE):
            raise ExchangeError(
                f"NCMEC takes affirmative or negative feedback only, not {opinion.value!r}"
            )
        m = _KEY.match(entry.key)
        if m is None:
            raise ExchangeError(f"{entry.key!r} is not an NCMEC entry key")
        member, entry_id = int(m.group(1)), m.group(2)
        types = sorted(
            {_FEEDBACK_TYPE[h.hash_type] for h in entry.hashes if h.hash_type in _FEEDBACK_TYPE}
        )
        if not types:
            raise ExchangeError(f"entry {entry.key!r} has no fingerprint NCMEC takes feedback on")
        api = self._api
        for fp in types:
            fp_type = api.FingerprintType(fp)
            with peer_errors(self.config.name, "sending NCMEC feedback"):
                if opinion is Opinion.CONFIRMED:
                    self._client.submit_feedback(member, entry_id, fp_type, api.FeedbackType.upvote)
                else:
                    guid = self._reason_guid(fp_type, reason)
                    self._client.submit_feedback(
                        member, entry_id, fp_type, api.FeedbackType.downvote, guid
                    )

    def _reason_guid(self, fp_type: Any, reason: str | None) -> str:
        """The GUID of a negative-feedback reason: given, named, or NCMEC's only one."""
        wanted = reason or self.config.options.get("negative_reason")
        if wanted and _GUID.match(wanted):
            return wanted
        reasons: dict[str, str] = self._client.feedback_reasons(fp_type)  # guid -> name
        if wanted:
            for guid, name in reasons.items():
                if name.strip().lower() == wanted.strip().lower():
                    return guid
        elif len(reasons) == 1:
            return next(iter(reasons))
        names = ", ".join(sorted(reasons.values())) or "none"
        raise ExchangeError(
            f"NCMEC needs one of its reasons for negative feedback on {fp_type.value}: {names}"
        )
