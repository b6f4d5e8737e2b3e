"""StopNCII.org as a :class:`~hashwatch.exchange.base.SignalExchange` (kind ``stopncii``).

Spoken through python-threatexchange's maintained client
(``threatexchange.exchanges.clients.stopncii.api``): ``GET {base}/FetchHashes``
(``startTimestamp``, ``pageSize``, ``nextPageToken``) answers ``hashRecords`` with
``signalType``, ``hashValue``, ``hashStatus`` and ``CSPFeedbacks``, and ``nextSetTimestamp``
/ ``hasMoreRecords`` for paging; ``POST {base}/SubmitFeedback`` takes feedback.

Mapping: a record's key is ``stopncii:{signalType}:{hashValue}`` (StopNCII sends the whole
state of a hash each time it changes). ``ImagePDQ`` becomes a ``pdq`` hash and ``VideoMD5`` an
``md5`` hash; other types (``VideoTMK``, ``Text``, ``URL``) are kept out and counted in
:attr:`StopNCIIExchange.unmapped`. ``Withdrawn`` and ``Deleted`` hashes must be removed by
the client: they arrive as ``None``. (pytx's own exchange compares the hash value, not its
status, with those two states, so it never deletes; this adapter reads ``hashStatus``.)
StopNCII entries carry no category. A checkpoint is the ``nextSetTimestamp`` of the last page
applied; it is stale after 30 days without a fetch (pytx).
"""

from __future__ import annotations

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

__all__ = ["StopNCIICheckpoint", "StopNCIIExchange"]

STALE_AFTER = 30 * 24 * 3600
_TYPES = {"ImagePDQ": "pdq", "VideoMD5": "md5"}
_REMOVED = {"Withdrawn", "Deleted"}
# Opinion -> StopNCII CSP feedback value
_FEEDBACK = {
    Opinion.CONFIRMED: "Blocked",  # reviewed: it is NCII
    Opinion.FALSE_POSITIVE: "NotBlocked",  # reviewed: not shown to be NCII
    Opinion.DISPUTED: "NotBlocked",
    Opinion.SEEN: "PendingReview",  # matched, not yet reviewed
}


@dataclass(frozen=True)
class StopNCIICheckpoint:
    update_time: int  # the next startTimestamp
    fetched_at: int  # when the page was read, for staleness

    def to_json(self) -> dict[str, Any]:
        return {"update_time": self.update_time, "fetched_at": self.fetched_at}

    def is_stale(self) -> bool:
        return time.time() - self.fetched_at > STALE_AFTER


@register
class StopNCIIExchange(SignalExchange[StopNCIICheckpoint]):
    """StopNCII. ``url``: the API base (``https://api.stopncii.org/v1``); ``token``:
    ``fetch_function_key,subscription_key`` (pytx's form); option ``feedback_key``: the
    function key of ``SubmitFeedback``, needed to send opinions; ``page_size`` (800)."""

    kind = "stopncii"

    def __init__(self, config: PeerConfig) -> None:
        super().__init__(config)
        self._api = require_pytx("threatexchange.exchanges.clients.stopncii.api", "stopncii")
        fetch_key, _, subscription_key = (config.token or "").partition(",")
        if not fetch_key or not subscription_key:
            raise ExchangeError(
                f"peer {config.name!r}: the StopNCII token is 'fetch_function_key,subscription_key'"
            )
        extra = {}
        if config.options.get("feedback_key"):
            extra[self._api.StopNCIIEndpoint.SubmitFeedback] = config.options["feedback_key"]
        self._client = self._api.StopNCIIAPI(
            subscription_key, fetch_key, extra, base_url_override=config.url.rstrip("/")
        )
        self._page_size = int(config.options.get("page_size", "800"))
        self.unmapped: Counter[str] = Counter()  # StopNCII signal type -> records kept out

    @classmethod
    def checkpoint_from_json(cls, data: Mapping[str, Any]) -> StopNCIICheckpoint:
        return StopNCIICheckpoint(int(data["update_time"]), int(data["fetched_at"]))

    def fetch_iter(
        self, checkpoint: StopNCIICheckpoint | None
    ) -> Iterator[FetchDelta[StopNCIICheckpoint]]:
        start = checkpoint.update_time if checkpoint else self._api.StopNCIIAPI.DEFAULT_START_TIME
        next_page = ""
        while True:
            with peer_errors(self.config.name, "reading StopNCII hashes"):
                page = self._client.fetch_hashes(
                    page_size=self._page_size, start_timestamp=start, next_page=next_page
                )
            updates: dict[str, RemoteEntry | None] = {}
            for record in page.hashRecords:
                signal_type = record.signalType.value
                key = f"stopncii:{signal_type}:{record.hashValue}"
                known = (
                    known_hash(_TYPES[signal_type], record.hashValue)
                    if signal_type in _TYPES
                    else None
                )
                if known is None:
                    self.unmapped[signal_type] += 1
                    continue
                if record.hashStatus.value in _REMOVED:
                    updates[key] = None
                else:
                    updates[key] = RemoteEntry(
                        key=key,
                        hashes=(SharedHash(*known),),
                        fields={
                            "status": record.hashStatus.value,
                            "csp_feedback": sorted(
                                f.feedbackValue.value for f in record.CSPFeedbacks
                            ),
                        },
                        provenance={"org": "StopNCII", "modified": record.lastModtimestamp},
                    )
            yield FetchDelta(updates, StopNCIICheckpoint(page.nextSetTimestamp, int(time.time())))
            if not page.hasMoreRecords or not page.nextPageToken:
                return
            next_page = page.nextPageToken

    def report_opinion(
        self, entry: RemoteEntry, opinion: Opinion, reason: str | None = None
    ) -> None:
        """CSP feedback on the entry's hash: Blocked, NotBlocked or PendingReview; the reason
        (if any) goes as a tag."""
        signal_type, _, value = entry.key.removeprefix("stopncii:").partition(":")
        if not entry.key.startswith("stopncii:") or not value:
            raise ExchangeError(f"{entry.key!r} is not a StopNCII entry key")
        api = self._api
        if api.StopNCIIEndpoint.SubmitFeedback not in self._client._function_keys:
            raise ExchangeError(
                f"peer {self.config.name!r}: sending feedback to StopNCII needs the "
                "'feedback_key' option (SubmitFeedback's function key)"
            )
        tags = {opinion.value} | ({reason} if reason else set())
        with peer_errors(self.config.name, "sending StopNCII feedback"):
            self._client.submit_feedback(
                api.StopNCIISignalType(signal_type),
                value,
                api.StopNCIICSPFeedbackValue(_FEEDBACK[opinion]),
                tags,
            )
