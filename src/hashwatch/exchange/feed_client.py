"""hashwatch's own feed, read and verified: the ``hashwatch`` kind of :class:`SignalExchange`.

A subscriber holds, per feed, the records it has applied (``after``), the right edge of their
Merkle tree (a :class:`~hashwatch.exchange.merkle.Frontier`, about 20 hashes at a million
records) and the last checkpoint it verified (size ``M``, root ``root_M``). A page answers
``GET /v1/feeds/{list}/records?after=A&known_size=M`` and is yielded only when all of this
holds (``docs/exchange.md``, Subscribing):

1. its checkpoint (size ``N``) is signed by the peer's key, of the pinned origin;
2. ``N >= M`` (else the feed was rolled back) and the ``known_proof`` shows the tree of ``N``
   extends the tree of ``M`` we verified (else history was rewritten);
3. the page starts at ``A`` and each record is of the pinned origin with sequence number
   ``A+1, A+2, ...`` (else a page was replayed or reordered);
4. the frontier with the page's leaves added, ``F'``, is consistent with the signed root of
   ``N`` (``page_proof``): the records are exactly the publisher's (else tampered);
5. a page saying there is no more ends at ``N`` (else truncated).

Any failure raises :class:`~hashwatch.errors.FeedVerificationError` naming it, before the
page is yielded: nothing of it is applied. While the caller applies a page, the next one is
already being fetched (one request in flight, at most two pages held). HTTP goes through
``httpx`` with timeouts; the peer's token travels in the ``Authorization`` header only and is
never logged or put in a message.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import ssl
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from hashwatch.errors import ConfigError, ExchangeError, FeedVerificationError
from hashwatch.exchange.base import (
    FetchDelta,
    Opinion,
    PeerConfig,
    RemoteEntry,
    SharedHash,
    SignalExchange,
    register,
)
from hashwatch.exchange.checkpoint import Checkpoint, VerifierKey
from hashwatch.exchange.merkle import EMPTY_ROOT, Frontier, leaf_hash, verify_consistency

__all__ = ["FeedCheckpoint", "FeedExchange", "remote_entry", "safe_url"]

DEFAULT_PAGE = 1000  # the publisher's most: fewer requests, proofs and transactions
MAX_PAGE = 1000
OPS_UPSERT = frozenset({"add", "update", "category", "dispute"})


def _b64(items: object, what: str) -> list[bytes]:
    if not isinstance(items, list):
        raise FeedVerificationError(f"the page's {what} is not a list of hashes")
    try:
        out = [base64.b64decode(str(h), validate=True) for h in items]
    except binascii.Error:
        raise FeedVerificationError(f"the page's {what} holds a hash that is not base64") from None
    if any(len(h) != 32 for h in out) or len(out) > 64:
        raise FeedVerificationError(f"the page's {what} is not a proof of SHA-256 hashes")
    return out


@functools.cache
def _tls() -> ssl.SSLContext:
    """The certificate store, loaded once per process (loading it costs ~0.1-0.4 s, which
    every new ``httpx.Client`` would otherwise pay)."""
    return httpx.create_ssl_context()


def safe_url(url: str) -> str:
    """``url`` without user name or password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class FeedCheckpoint:
    """Where a subscription to a hashwatch feed stands: records applied, their frontier, and
    the last verified checkpoint note (``None`` before the first)."""

    after: int = 0
    frontier: Frontier = field(default_factory=Frontier)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "after": self.after,
            "frontier": [base64.b64encode(h).decode() for h in self.frontier.hashes],
            "checkpoint": self.note,
        }

    def is_stale(self) -> bool:
        return False


def remote_entry(key: str, entry: Mapping[str, Any], **provenance: Any) -> RemoteEntry:
    """A feed record's ``entry`` object as a :class:`RemoteEntry` (``provenance`` added)."""
    hashes = entry.get("hashes")
    if not isinstance(hashes, list):
        raise ValueError("an entry without a list of hashes")
    category, scheme = entry.get("category"), entry.get("scheme")
    prov = entry.get("provenance")
    return RemoteEntry(
        key,
        tuple(
            SharedHash(
                str(h["type"]),
                str(h["value"]),
                h.get("frame"),
                h.get("frame_time"),
                h.get("quality"),
            )
            for h in hashes
        ),
        None if category is None else str(category),
        None if scheme is None else str(scheme),
        bool(entry.get("disputed", False)),
        dict(entry.get("fields") or {}),
        {**prov, **provenance} if prov else provenance,
    )


@register
class FeedExchange(SignalExchange[FeedCheckpoint]):
    """A peer's hashwatch feed over HTTP (``options``: ``key`` — the verifier key, required;
    ``origin`` — the pinned origin; ``page_size``; ``timeout_s``).

    ``transport`` is a test seam (an ``httpx`` transport, e.g. ``httpx.MockTransport``)."""

    kind = "hashwatch"

    def __init__(self, config: PeerConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(config)
        key = config.options.get("key")
        if not key:
            raise ConfigError(f"peer {config.name}: a hashwatch feed needs the peer's key (--key)")
        self.key = VerifierKey.parse(key)
        if not config.remote_list:
            raise ConfigError(f"peer {config.name}: which of its lists to read is not set")
        self.remote_list = config.remote_list
        self.origin = config.options.get("origin") or None
        self.page_size = max(1, min(MAX_PAGE, int(config.options.get("page_size", DEFAULT_PAGE))))
        self.timeout_s = float(config.options.get("timeout_s", 30))
        self.base = config.url.rstrip("/")
        self.transport = transport
        self._known: tuple[str, Checkpoint] | None = None  # the last note verified, verified

    # -- HTTP --------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        headers = {"Accept": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        return httpx.Client(
            headers=headers,
            timeout=self.timeout_s,
            transport=self.transport,
            follow_redirects=False,
            verify=_tls(),
        )

    def _path(self, tail: str) -> str:
        return f"{self.base}/v1/feeds/{quote(self.remote_list, safe='')}/{tail}"

    def _call(
        self,
        client: httpx.Client,
        method: str,
        tail: str,
        *,
        params: dict[str, int] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        where = f"peer {self.config.name} ({safe_url(self.config.url)})"
        try:
            response = client.request(method, self._path(tail), params=params, json=body)
        except httpx.TimeoutException:
            raise ExchangeError(f"{where} did not answer within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise ExchangeError(f"{where} cannot be reached: {type(exc).__name__}") from None
        status = response.status_code
        detail = _detail(response)
        if status == 401:
            raise ExchangeError(f"{where} refused our token (401): check the peer's --token")
        if status == 403:
            raise ExchangeError(
                f"{where} does not let our key read list {self.remote_list!r} (403){detail}"
            )
        if status == 404:
            raise ExchangeError(f"{where} has no feed {self.remote_list!r} (404){detail}")
        if status == 409:
            raise FeedVerificationError(
                f"{where} holds fewer records than we verified before: the feed was rolled "
                f"back (409){detail}; nothing was applied"
            )
        if status >= 500:
            raise ExchangeError(f"{where} failed ({status}){detail}; try again later")
        if status != 200:
            raise ExchangeError(f"{where} answered {status}{detail}")
        try:
            data = response.json()
        except ValueError:
            raise ExchangeError(f"{where} answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise ExchangeError(f"{where} answered JSON that is not an object")
        return data

    # -- checkpoints -----------------------------------------------------------------------

    @classmethod
    def checkpoint_from_json(cls, data: Mapping[str, Any]) -> FeedCheckpoint:
        try:
            after = int(data.get("after", 0))
            hashes = [base64.b64decode(h, validate=True) for h in data.get("frontier", [])]
            frontier = Frontier(after, hashes)
            frontier.check()
        except (ValueError, TypeError, binascii.Error) as exc:
            raise ExchangeError(f"the saved checkpoint is damaged: {exc}") from None
        note = data.get("checkpoint")
        return FeedCheckpoint(after, frontier, None if note is None else str(note))

    def latest(self) -> tuple[Checkpoint, str]:
        """The feed's newest checkpoint, verified with the peer's key (and the pinned origin
        when there is one), and its note."""
        with self._client() as client:
            data = self._call(client, "GET", "checkpoint")
        note = data.get("checkpoint")
        if not isinstance(note, str):
            raise ExchangeError(f"peer {self.config.name} sent no checkpoint for its feed")
        checkpoint = Checkpoint.verify(note, self.key, self.origin)
        return checkpoint, note

    def initial_checkpoint(self) -> FeedCheckpoint:
        """The checkpoint of a new subscription: nothing applied yet, the feed's current
        signed state remembered (so a history rewritten later is caught), its origin pinned."""
        checkpoint, note = self.latest()
        self.origin = checkpoint.origin
        return FeedCheckpoint(0, Frontier(), note)

    # -- pages -------------------------------------------------------------------------

    def fetch_iter(self, checkpoint: FeedCheckpoint | None) -> Iterator[FetchDelta[FeedCheckpoint]]:
        """Verified pages from ``checkpoint`` on. The next page is fetched (in one helper
        thread) while the caller applies the one yielded; it is verified only once that one
        was applied, from the state after it. A caller that stops early waits for the one
        request in flight to end (at most ``timeout_s``)."""
        state = checkpoint or FeedCheckpoint()
        with (
            self._client() as client,
            ThreadPoolExecutor(1, thread_name_prefix="feed-fetch") as pool,
        ):
            pending = self._fetch(pool, client, state)
            while True:
                page = pending.result()
                updates, state, more = self.verify_page(state, page)
                if more:
                    pending = self._fetch(pool, client, state)
                yield FetchDelta(updates, state)
                if not more:
                    return

    def _fetch(
        self, pool: ThreadPoolExecutor, client: httpx.Client, state: FeedCheckpoint
    ) -> Future[dict[str, Any]]:
        known = self._verified(state.note)
        params = {"after": state.after, "limit": self.page_size, "known_size": known.size}
        return pool.submit(self._call, client, "GET", "records", params=params)

    def _verified(self, note: str | None) -> Checkpoint:
        if note is None:
            return Checkpoint(self.origin or "", 0, EMPTY_ROOT)
        if self._known is not None and self._known[0] == note:
            return self._known[1]  # verified with this key and origin already
        verified = Checkpoint.verify(note, self.key, self.origin)
        # A note we verified and saved earlier pins the origin when the config does not.
        self.origin = verified.origin
        self._known = (note, verified)
        return verified

    def verify_page(
        self, state: FeedCheckpoint, page: Mapping[str, Any]
    ) -> tuple[dict[str, RemoteEntry | None], FeedCheckpoint, bool]:
        """Check one answer of ``/records`` against ``state`` (see the module's steps 1-5);
        returns the updates, the state after the page, and whether more pages follow."""
        known = self._verified(state.note)
        note = page.get("checkpoint")
        if not isinstance(note, str):
            raise FeedVerificationError("the page carries no signed checkpoint")
        signed = self._verified(note)
        if signed.size < known.size:
            raise FeedVerificationError(
                f"the feed's checkpoint holds {signed.size} records, fewer than the "
                f"{known.size} verified before: a rollback or a replayed checkpoint"
            )
        if page.get("known_size") != known.size:
            raise FeedVerificationError(
                f"the page proves consistency from {page.get('known_size')!r} records, not "
                f"from the {known.size} we verified (replayed)"
            )
        if not verify_consistency(
            known.size,
            signed.size,
            known.root,
            signed.root,
            _b64(page.get("known_proof"), "known_proof"),
        ):
            raise FeedVerificationError(
                f"the feed's history was rewritten: its checkpoint of {signed.size} records "
                f"does not extend the checkpoint of {known.size} records verified before"
            )
        after = page.get("after")
        if after != state.after:
            raise FeedVerificationError(
                f"the page starts after record {after!r}, not after record {state.after} "
                "as asked: a replayed or reordered page"
            )
        records = page.get("records")
        if not isinstance(records, list) or len(records) > MAX_PAGE:
            raise FeedVerificationError("the page's records are not a list of at most 1000")
        end = state.after + len(records)
        if end > signed.size:
            raise FeedVerificationError(
                f"the page reaches record {end}, beyond its checkpoint of {signed.size}"
            )
        more = bool(page.get("more"))
        if not more and end != signed.size:
            raise FeedVerificationError(
                f"the page ends at record {end} and says there is no more, but the signed "
                f"checkpoint holds {signed.size} records: a truncated feed"
            )
        if more and not records:
            raise FeedVerificationError("the page holds no records yet says more follow")
        frontier = state.frontier.copy()
        updates: dict[str, RemoteEntry | None] = {}
        for n, text in enumerate(records, start=state.after + 1):
            if not isinstance(text, str):
                raise FeedVerificationError(f"record {n} is not sent as text")
            frontier.append(leaf_hash(text.encode("utf-8")))
            key, entry = self._record(n, text)
            updates.pop(key, None)  # the latest state of a key comes last
            updates[key] = entry
        if not verify_consistency(
            end,
            signed.size,
            frontier.root(),
            signed.root,
            _b64(page.get("page_proof"), "page_proof"),
        ):
            raise FeedVerificationError(
                f"records {state.after + 1}-{end} do not fit the signed checkpoint of "
                f"{signed.size} records: the page was altered in transit or at the source"
            )
        return updates, FeedCheckpoint(end, frontier, note), more

    def _record(self, seq: int, text: str) -> tuple[str, RemoteEntry | None]:
        try:
            obj = json.loads(text)
        except ValueError:
            raise FeedVerificationError(f"record {seq} is not JSON") from None
        if not isinstance(obj, dict):
            raise FeedVerificationError(f"record {seq} is not a JSON object")
        if obj.get("origin") != self.origin:
            raise FeedVerificationError(f"record {seq} is of another feed than {self.origin!r}")
        if obj.get("seq") != seq:
            raise FeedVerificationError(
                f"record {seq} carries sequence number {obj.get('seq')!r}: reordered or replayed"
            )
        key, op = obj.get("key"), obj.get("op")
        if not isinstance(key, str) or not key:
            raise FeedVerificationError(f"record {seq} has no entry key")
        if op == "revoke":
            return key, None
        if op not in OPS_UPSERT or not isinstance(obj.get("entry"), dict):
            raise FeedVerificationError(f"record {seq} has an unknown operation {op!r}")
        try:
            return key, remote_entry(key, obj["entry"], origin=self.origin, seq=seq)
        except (ValueError, TypeError, KeyError):
            raise FeedVerificationError(f"record {seq} has a malformed entry") from None

    # -- feedback ----------------------------------------------------------------------

    def report_opinion(
        self, entry: RemoteEntry, opinion: Opinion, reason: str | None = None
    ) -> None:
        body = {"key": entry.key, "opinion": Opinion(opinion).value, "reason": reason}
        with self._client() as client:
            self._call(client, "POST", "opinions", body=body)


def _detail(response: httpx.Response) -> str:
    """The peer's own explanation (``{"detail": ...}``), short, for an error message."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    return f": {str(detail)[:200]}" if detail else ""
