"""Meta's ThreatExchange as a :class:`~hashwatch.exchange.base.SignalExchange` (kind
``threatexchange``).

Spoken through python-threatexchange's maintained Graph API client
(``threatexchange.exchanges.clients.fb_threatexchange.api``): a privacy group's
``GET {base}/{group}/threat_updates/`` answers indicators (``id``, ``indicator``, ``type``,
``last_updated``, ``should_delete``, ``descriptors`` with their owner, tags, status and
reactions), paged by Graph API ``paging > next`` URLs; an opinion is a reaction
(``POST {base}/{descriptor id}?reactions=...``).

Mapping: an indicator's key is ``threatexchange:{indicator id}``. ``HASH_PDQ``, ``HASH_MD5``,
``HASH_VIDEO_MD5``, ``HASH_SHA1``, ``HASH_SHA256`` and ``HASH_VIDEO_SHA256`` become hashwatch
hashes; other types (URLs, text, TMK, PhotoDNA, ...) are kept out and counted in
:attr:`ThreatExchangeExchange.unmapped`. ``should_delete`` (or an indicator without
descriptors, pytx's rule) arrives as ``None``. The descriptors' tags are the entry's tags;
the entry is disputed when one member marks it MALICIOUS and another NON_MALICIOUS. There is
no category. A checkpoint is the newest ``last_updated`` applied; the API keeps deletions
90 days, so a checkpoint not advanced for 85 days is stale (pytx). ``start_time`` is inclusive
(pytx fetches ``[t1, t2)`` and ``[t2, t3)``), so the checkpoint also keeps a digest of each
update seen in its last second and a resumed fetch skips exactly those again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

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

__all__ = ["ThreatExchangeCheckpoint", "ThreatExchangeExchange"]

STALE_AFTER = 85 * 24 * 3600
_TYPES = {
    "HASH_PDQ": "pdq",
    "HASH_MD5": "md5",
    "HASH_VIDEO_MD5": "md5",
    "HASH_SHA1": "sha1",
    "HASH_SHA256": "sha256",
    "HASH_VIDEO_SHA256": "sha256",
}
_REACTION = {
    Opinion.CONFIRMED: "HELPFUL",
    Opinion.FALSE_POSITIVE: "NOT_HELPFUL",
    Opinion.DISPUTED: "DISAGREE_WITH_TAGS",
    Opinion.SEEN: "SAW_THIS_TOO",
}
_FIELDS = (
    "id",
    "indicator",
    "type",
    "last_updated",
    "should_delete",
    "descriptors{id,reactions,owner{id},tags,status}",
)


def _digest(update: Mapping[str, Any]) -> str:
    text = json.dumps(update, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ThreatExchangeCheckpoint:
    update_time: int  # the newest last_updated applied: the next start_time
    fetched_at: int
    boundary: frozenset[str] = frozenset()  # digests of the updates at update_time

    def to_json(self) -> dict[str, Any]:
        return {
            "update_time": self.update_time,
            "fetched_at": self.fetched_at,
            "boundary": sorted(self.boundary),
        }

    def is_stale(self) -> bool:
        return time.time() - self.fetched_at > STALE_AFTER


@register
class ThreatExchangeExchange(SignalExchange[ThreatExchangeCheckpoint]):
    """A ThreatExchange privacy group. ``url``: the Graph API base
    (``https://graph.facebook.com/v26.0``); ``token``: the app access token
    (``APPID|SECRET``); ``remote_list``: the privacy group id; option ``page_size`` (100)."""

    kind = "threatexchange"

    def __init__(self, config: PeerConfig) -> None:
        super().__init__(config)
        api = require_pytx(
            "threatexchange.exchanges.clients.fb_threatexchange.api", "threatexchange"
        )
        if not config.token:
            raise ExchangeError(f"peer {config.name!r}: ThreatExchange needs an access token")
        if not (config.remote_list or "").isdigit():
            raise ExchangeError(
                f"peer {config.name!r}: the ThreatExchange privacy group (remote list) is its id"
            )
        self._group = int(config.remote_list or 0)
        self._client = api.ThreatExchangeAPI(config.token, endpoint_override=config.url.rstrip("/"))
        self._page_size = int(config.options.get("page_size", "100"))
        self.unmapped: Counter[str] = Counter()  # indicator type -> updates kept out

    @classmethod
    def checkpoint_from_json(cls, data: Mapping[str, Any]) -> ThreatExchangeCheckpoint:
        return ThreatExchangeCheckpoint(
            int(data["update_time"]),
            int(data["fetched_at"]),
            frozenset(str(d) for d in data.get("boundary", ())),
        )

    def fetch_iter(
        self, checkpoint: ThreatExchangeCheckpoint | None
    ) -> Iterator[FetchDelta[ThreatExchangeCheckpoint]]:
        newest = checkpoint.update_time if checkpoint else 0
        boundary = set(checkpoint.boundary) if checkpoint else set()
        skip = frozenset(boundary)
        cursor = self._client.get_threat_updates(
            self._group,
            start_time=checkpoint.update_time if checkpoint else None,
            page_size=self._page_size,
            fields=_FIELDS,
        )
        while not cursor.done:
            with peer_errors(self.config.name, "reading ThreatExchange threat_updates"):
                batch = cursor.next()
            updates: dict[str, RemoteEntry | None] = {}
            for update in batch:
                at, digest = int(update["last_updated"]), _digest(update)
                if digest in skip:
                    continue  # applied before: start_time includes the checkpoint's second
                if at > newest:
                    newest, boundary = at, set()
                if at == newest:
                    boundary.add(digest)
                hash_type = _TYPES.get(str(update.get("type")))
                known = known_hash(hash_type, str(update.get("indicator"))) if hash_type else None
                if known is None:
                    self.unmapped[str(update.get("type"))] += 1
                    continue
                updates[f"threatexchange:{update['id']}"] = self._entry(update, known)
            if batch:
                cp = ThreatExchangeCheckpoint(newest, int(time.time()), frozenset(boundary))
                yield FetchDelta(updates, cp)

    def _entry(self, update: Mapping[str, Any], known: tuple[str, str]) -> RemoteEntry | None:
        """The indicator's entry, or None when it is deleted."""
        if update.get("should_delete") or "descriptors" not in update:
            return None
        descriptors = update["descriptors"].get("data", [])
        tags: set[str] = set()
        statuses = set()
        for d in descriptors:
            raw = d.get("tags", [])
            # The Graph API nests tags ({"data": [{"text": ...}]}); pytx's copies are a list.
            tags.update([t["text"] for t in raw["data"]] if isinstance(raw, dict) else raw)
            statuses.add(d.get("status"))
        return RemoteEntry(
            key=f"threatexchange:{update['id']}",
            hashes=(SharedHash(*known),),
            disputed={"MALICIOUS", "NON_MALICIOUS"} <= statuses,
            fields={"tags": sorted(tags), "statuses": sorted(s for s in statuses if s)},
            provenance={
                "org": "ThreatExchange",
                "privacy_group": self._group,
                "owners": sorted({int(d["owner"]["id"]) for d in descriptors if "owner" in d}),
                "descriptors": [str(d["id"]) for d in descriptors],
            },
        )

    def report_opinion(
        self, entry: RemoteEntry, opinion: Opinion, reason: str | None = None
    ) -> None:
        """A reaction on each of the indicator's descriptors: HELPFUL (confirmed), NOT_HELPFUL
        (false positive), DISAGREE_WITH_TAGS (disputed), SAW_THIS_TOO (seen). ThreatExchange
        reactions carry no reason."""
        if not entry.key.startswith("threatexchange:"):
            raise ExchangeError(f"{entry.key!r} is not a ThreatExchange entry key")
        descriptors = list(entry.provenance.get("descriptors") or [])
        if not descriptors:
            with peer_errors(self.config.name, "reading ThreatExchange descriptors"):
                found = self._client.get_threat_descriptors_from_indicator(
                    int(entry.key.removeprefix("threatexchange:"))
                )
            descriptors = [str(d["id"]) for d in found]
        for descriptor in descriptors:
            with peer_errors(self.config.name, "sending a ThreatExchange reaction"):
                _, _, answer = self._client.react_to_threat_descriptor(
                    descriptor, _REACTION[opinion]
                )
            if isinstance(answer, Mapping) and "error" in answer:
                raise ExchangeError(
                    f"peer {self.config.name!r}: ThreatExchange refused the reaction"
                )
