"""What a peer key (another organisation) may ask of the match endpoints, and what is kept of it.

A peer key with a grant on a list (``feed`` or ``query``) may match against that list — only
that list: :func:`~hashwatch.web.disclosure.within_lists` drops every other list's matches
before anything is recorded or answered, and :func:`~hashwatch.web.disclosure.peer_view`
keeps only the list, category and distance of a match, the distance as its disclosure allows
(``banded`` unless the key has its own: ``PEER_DISCLOSURE``). Never a hash value.

Per peer, on top of every key's limits (rate, signal budget):

* a rate of its own: the key's ``--rate`` or ``PEER_RATE_PER_S`` requests a second, a token
  bucket held in the process (1/N of it per worker);
* the query log (:class:`~hashwatch.exchange.query_log.PeerQueryLog`): every request, with the
  number of signals of each type, the matches and their lists — never a value;
* the enumeration defence (:class:`~hashwatch.exchange.probing.ProbeWatch`): a peer whose PDQ
  queries look like scanning or sweeping is flagged — a row in ``key_flags``, a
  ``peer.probe_flagged`` audit record, a line in the serve audit log, a metric — and from then
  on held to ``PEER_THROTTLE`` (a tenth) of its rate until an admin clears the flag
  (``hashwatch keys unflag NAME``, ``DELETE /v1/admin/flags/{name}``). The request that got it
  flagged is refused (429).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import Counter

from hashwatch.audit import AuditLog
from hashwatch.exchange.probing import PeerFlags, Probe, ProbeSettings, ProbeWatch
from hashwatch.exchange.query_log import PeerQueryLog
from hashwatch.matching.matcher import MatchResult, Signal
from hashwatch.signals.types import HashType
from hashwatch.store.database import Database
from hashwatch.store.service import Disclosure, KeyInfo, Role
from hashwatch.web.auth import ApiError, Principal, RateLimiter
from hashwatch.web.disclosure import Bands, disclose, peer_view
from hashwatch.web.metrics import Metrics
from hashwatch.web.settings import ServeSettings

__all__ = ["PeerAccess", "granted_lists", "probe_settings"]


def granted_lists(principal: Principal) -> frozenset[str] | None:
    """The lists a peer key may match against (any grant); None for a matcher, curator or
    admin key (all lists). A peer key without a grant is refused (403)."""
    if principal.role is not Role.PEER:
        return None
    if not principal.grants:
        raise ApiError(403, f"the peer key {principal.name!r} has no grant on any list")
    return frozenset(principal.grants)


def probe_settings(settings: ServeSettings) -> ProbeSettings:
    return ProbeSettings(
        window_s=settings.peer_probe_window_s,
        scan_queries=settings.peer_probe_scan_queries,
        scan_far=settings.peer_probe_scan_far,
        weight_slack=settings.peer_probe_weight_slack,
        sweep_queries=settings.peer_probe_sweep_queries,
        sweep_radius=settings.peer_probe_sweep_radius,
        sweep_step=settings.peer_probe_sweep_step,
    )


class PeerAccess:
    """The peer side of one server process's match service."""

    def __init__(
        self,
        db: Database,
        settings: ServeSettings,
        audit: AuditLog,
        metrics: Metrics,
        key_info: Callable[[int], KeyInfo | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.audit = audit
        self.key_info = key_info
        self.flags = PeerFlags(db)
        self.log = PeerQueryLog(db)
        self.watch = ProbeWatch(probe_settings(settings), clock)
        self.limiter = RateLimiter()
        self.clock = clock
        self.flag_count = Counter(
            "hashwatch_peer_flags",
            "Peer keys flagged for probing (scan, sweep), by key.",
            ["key", "reason"],
            registry=metrics.registry,
        )
        self._flagged: set[int] = set()
        self._flagged_at = -math.inf
        self._lock = threading.Lock()

    # -- flags ---------------------------------------------------------------------------

    def flagged(self, key_id: int) -> bool:
        """Whether the key has an open flag (read from the database at most once a second, so
        a flag raised or cleared by another process is seen within about a second)."""
        now = self.clock()
        with self._lock:
            if now - self._flagged_at >= 1.0:
                current = self.flags.flagged_ids()
                for cleared in self._flagged - current:
                    self.watch.reset(cleared)  # its old queries must not flag it again
                self._flagged, self._flagged_at = current, now
            return key_id in self._flagged

    def _raise(self, caller: Principal, probe: Probe) -> None:
        self.flags.raise_flag(caller.key_id, probe, actor=caller.name)
        with self._lock:
            self._flagged.add(caller.key_id)
        self.audit.append("peer.probe_flagged", key=caller.name, **probe.as_dict())
        self.flag_count.labels(caller.name, probe.reason).inc()

    # -- one request ---------------------------------------------------------------------

    def admit(self, caller: Principal, signals: Sequence[Signal], *, media: bool) -> None:
        """The peer's own rate (a tenth of it while flagged), or 429 with Retry-After."""
        info = self.key_info(caller.key_id)
        rate = float(info.rate_per_s) if info and info.rate_per_s else self.settings.peer_rate_per_s
        flagged = self.flagged(caller.key_id)
        if flagged:
            rate *= self.settings.peer_throttle
        rate *= 1 / max(1, self.settings.workers)
        burst = 1.0 if flagged else max(2 * rate, 1.0)
        wait = self.limiter.take(caller.key_id, rate, burst)
        if wait > 0:
            self._log(caller, signals, [], media=media, outcome="refused")
            why = "it is flagged for probing" if flagged else "its rate"
            raise ApiError(
                429,
                f"peer key {caller.name!r} is over {why}: {rate:g} requests/s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def answered(
        self,
        caller: Principal,
        items: Sequence[Sequence[Signal]],
        results: Sequence[MatchResult],
        *,
        media: bool,
    ) -> None:
        """Log the request and watch its PDQ queries; a request that gets the peer flagged is
        refused (429) — its matches were recorded like any other."""
        signals = [s for item in items for s in item]
        queries: list[tuple[str, bool]] = []
        for item, result in zip(items, results, strict=True):
            hit = any(m.hash_type == "pdq" for m in (*result.matches, *result.suppressed))
            queries.extend((s.value, hit) for s in item if s.hash_type == HashType.PDQ)
        probe = self.watch.observe(caller.key_id, queries)
        if probe is None:
            self._log(caller, signals, results, media=media, outcome="answered")
            return
        self._log(caller, signals, results, media=media, outcome="refused")
        self._raise(caller, probe)
        raise ApiError(
            429,
            f"peer key {caller.name!r} is held back: its queries look like probing "
            f"({probe.reason}); an admin has been told",
            {"Retry-After": str(max(1, math.ceil(1 / self.settings.peer_throttle)))},
        )

    def _log(
        self,
        caller: Principal,
        signals: Sequence[Signal],
        results: Sequence[MatchResult],
        *,
        media: bool,
        outcome: str,
    ) -> None:
        types = Tally(s.hash_type.value for s in signals)
        matched = [m for r in results for m in r.matches]
        self.log.record(
            caller.key_id,
            media=media,
            signal_types=types,
            matches=len(matched),
            lists=[m.list for m in matched],
            outcome=outcome,
        )

    def present(
        self,
        result: MatchResult,
        key_id: int,
        bands: Bands,
        threshold_of: Callable[[str], int],
    ) -> dict[str, Any]:
        """The result as the peer may see it: its disclosure (``PEER_DISCLOSURE`` unless the
        key has its own), then :func:`peer_view`."""
        info = self.key_info(key_id)
        mode = (info.disclosure if info else None) or Disclosure(self.settings.peer_disclosure)
        out = result.as_dict()
        for field in ("matches", "suppressed"):
            if field in out:
                out[field] = [peer_view(disclose(m, mode, bands, threshold_of)) for m in out[field]]
        return out
