"""The native feed client: every page is verified before anything of it is yielded.

A tiny publisher in the test (built on :mod:`hashwatch.exchange.merkle` and
:mod:`hashwatch.exchange.checkpoint`, answering the documented wire format) serves a feed over
``httpx.MockTransport`` or a real loopback HTTP server; each story changes what it sends the
way an attacker or a broken publisher would, and the subscriber names what failed.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hashwatch.errors import ExchangeError, FeedVerificationError
from hashwatch.exchange.base import Opinion, PeerConfig, RemoteEntry, exchange_of
from hashwatch.exchange.checkpoint import Checkpoint, SigningKey, generate_signing_key
from hashwatch.exchange.feed_client import FeedCheckpoint, FeedExchange
from hashwatch.exchange.merkle import consistency_proof, leaf_hash, node_hash, root_of

TOKEN = "s3cret-peer-token-value"


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def md5_of(n: int) -> str:
    return f"{n:032x}"


def pdq_of(n: int) -> str:
    """A benign stand-in PDQ hash: far (about 128 bits) from every other."""
    return hashlib.sha256(f"pdq {n}".encode()).hexdigest()


def entry_of(n: int, category: str | None = "1", disputed: bool = False) -> dict[str, Any]:
    return {
        "hashes": [{"type": "md5", "value": md5_of(n)}, {"type": "pdq", "value": pdq_of(n)}],
        "category": category,
        "scheme": "US",
        "disputed": disputed,
        "fields": {"series": f"series-{n % 3}"},
        "provenance": {"org": "Agency A", "list": "known", "version": 1, "date": "2026-12-01"},
    }


@dataclass
class TinyFeed:
    """A feed publisher in a few lines: records, their Merkle tree, signed checkpoints."""

    key: SigningKey
    list_name: str = "known"
    records: list[str] = field(default_factory=list)
    # A hook that may change an answer (a proxy in the middle, a lying publisher).
    rewrite: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
    opinions: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    status: int = 200

    @property
    def origin(self) -> str:
        return f"{self.key.name}/feeds/{self.list_name}"

    def append(self, op: str, key: str, entry: dict[str, Any] | None = None) -> None:
        record: dict[str, Any] = {
            "origin": self.origin,
            "seq": len(self.records) + 1,
            "op": op,
            "key": key,
            "at": "2026-12-05T10:00:00Z",
        }
        if op == "revoke":
            record["reason"] = "revoked"
        else:
            record["entry"] = entry
        self.records.append(canonical(record))

    def add_range(self, start: int, stop: int, **kw: Any) -> None:
        for n in range(start, stop):
            self.append("add", f"md5:{md5_of(n)}", entry_of(n, **kw))

    def _perfect(self) -> Callable[[int, int], bytes]:
        leaves = [leaf_hash(r.encode()) for r in self.records]

        @cache
        def perfect(level: int, index: int) -> bytes:
            if level == 0:
                return leaves[index]
            return node_hash(perfect(level - 1, 2 * index), perfect(level - 1, 2 * index + 1))

        return perfect

    def note(self, size: int | None = None) -> str:
        n = len(self.records) if size is None else size
        return Checkpoint(self.origin, n, root_of(n, self._perfect())).sign(self.key)

    def proof(self, first: int, second: int) -> list[str]:
        return [
            base64.b64encode(h).decode() for h in consistency_proof(first, second, self._perfect())
        ]

    def answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self.requests.append(f"{method} {path}")
        prefix = f"/v1/feeds/{self.list_name}/"
        if self.status != 200:
            return self.status, {"detail": "refused"}
        if not path.startswith(prefix):
            return 404, {"detail": "no such feed"}
        tail = path[len(prefix) :]
        size = len(self.records)
        if tail == "checkpoint":
            out: dict[str, Any] = {"origin": self.origin, "size": size, "checkpoint": self.note()}
        elif tail == "records":
            after, known = int(query.get("after", 0)), int(query.get("known_size", 0))
            limit = min(1000, int(query.get("limit", 500)))
            if after > size or known > size:
                return 409, {"detail": "beyond the feed"}
            page = self.records[after : after + limit]
            end = after + len(page)
            out = {
                "origin": self.origin,
                "after": after,
                "records": page,
                "next": end if page else None,
                "more": end < size,
                "checkpoint": self.note(),
                "page_proof": self.proof(end, size),
                "known_size": known,
                "known_proof": self.proof(known, size),
            }
        elif tail == "opinions" and method == "POST":
            self.opinions.append(body)
            out = {"key": body["key"], "opinion": body["opinion"], "entry_status": "active"}
        else:
            return 404, {"detail": "not found"}
        return 200, self.rewrite(tail, out) if self.rewrite else out

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            assert request.headers.get("authorization") == f"Bearer {TOKEN}"
            query = {k: v for k, v in request.url.params.items()}
            body = json.loads(request.content) if request.content else None
            status, data = self.answer(request.method, request.url.path, query, body)
            return httpx.Response(status, json=data)

        return httpx.MockTransport(handle)

    @contextmanager
    def serve(self) -> Iterator[str]:
        """The feed on a real loopback HTTP server; yields its base URL."""
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, data = 401, {"detail": "no key"}
                else:
                    url = urlsplit(self.path)
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    length = int(self.headers.get("Content-Length", 0))
                    body = json.loads(self.rfile.read(length)) if length else None
                    status, data = feed.answer(method, url.path, query, body)
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


@pytest.fixture
def feed(tmp_path: Path) -> TinyFeed:
    return TinyFeed(generate_signing_key(tmp_path / "feed.pem", "agency.example"))


def client(feed: TinyFeed, page_size: int = 100, **options: str) -> FeedExchange:
    config = PeerConfig(
        "agency",
        "http://agency.test",
        TOKEN,
        feed.list_name,
        {"key": str(feed.key.verifier), "page_size": str(page_size), **options},
    )
    return FeedExchange(config, transport=feed.transport())


def drain(
    exchange: FeedExchange, start: FeedCheckpoint | None = None
) -> tuple[dict[str, RemoteEntry | None], FeedCheckpoint | None, int]:
    """All updates (later pages win), the last checkpoint, and the number of pages."""
    updates: dict[str, RemoteEntry | None] = {}
    last, pages = start, 0
    for delta in exchange.fetch_iter(start):
        updates.update(delta.updates)
        last, pages = delta.checkpoint, pages + 1
    return updates, last, pages


def test_the_native_kind_is_registered() -> None:
    assert exchange_of("hashwatch") is FeedExchange


def test_a_feed_is_read_page_by_page_and_resumes_from_its_checkpoint(feed: TinyFeed) -> None:
    feed.add_range(0, 250)
    feed.append("revoke", f"md5:{md5_of(3)}")
    feed.append("category", f"md5:{md5_of(4)}", entry_of(4, category="2"))
    updates, last, pages = drain(client(feed))
    assert pages == 3 and last is not None and last.after == 252
    assert updates[f"md5:{md5_of(3)}"] is None
    four = updates[f"md5:{md5_of(4)}"]
    assert four is not None and four.category == "2" and four.scheme == "US"
    assert four.provenance["seq"] == 252 and four.provenance["org"] == "Agency A"
    assert [h.hash_type for h in four.hashes] == ["md5", "pdq"]
    # The checkpoint survives JSON; the next sync asks only for what is new.
    saved = FeedExchange.checkpoint_from_json(json.loads(json.dumps(last.to_json())))
    feed.add_range(250, 260)
    more, after, pages = drain(client(feed), saved)
    assert pages == 1 and after is not None and after.after == 262
    assert set(more) == {f"md5:{md5_of(n)}" for n in range(250, 260)}


def test_an_opinion_goes_back_to_the_publisher(feed: TinyFeed) -> None:
    entry = RemoteEntry(key=f"md5:{md5_of(1)}", hashes=())
    client(feed).report_opinion(entry, Opinion.FALSE_POSITIVE, "a holiday photo")
    assert feed.opinions == [
        {"key": f"md5:{md5_of(1)}", "opinion": "false_positive", "reason": "a holiday photo"}
    ]


def _tamper_record(tail: str, out: dict[str, Any]) -> dict[str, Any]:
    if tail == "records" and out["records"]:
        out["records"][1] = out["records"][1].replace('"1"', '"5"')  # category 1 -> 5
    return out


def _reorder(tail: str, out: dict[str, Any]) -> dict[str, Any]:
    if tail == "records" and len(out["records"]) > 2:
        out["records"][0], out["records"][1] = out["records"][1], out["records"][0]
    return out


def _truncate(tail: str, out: dict[str, Any]) -> dict[str, Any]:
    if tail == "records" and out["records"]:
        out["records"] = out["records"][:-1]
        out["more"] = False
    return out


@pytest.mark.parametrize(
    ("rewrite", "words"),
    [
        (_tamper_record, "altered in transit"),
        (_reorder, "reordered or replayed"),
        (_truncate, "truncated"),
    ],
    ids=["tampered", "reordered", "truncated"],
)
def test_a_page_changed_in_transit_is_refused_before_anything_is_yielded(
    feed: TinyFeed, rewrite: Callable[[str, dict[str, Any]], dict[str, Any]], words: str
) -> None:
    feed.add_range(0, 50)
    feed.rewrite = rewrite
    pages = client(feed).fetch_iter(None)
    with pytest.raises(FeedVerificationError, match=words):
        next(pages)


def test_a_replayed_page_is_refused(feed: TinyFeed) -> None:
    feed.add_range(0, 150)
    first: dict[str, Any] = {}

    def replay(tail: str, out: dict[str, Any]) -> dict[str, Any]:
        if tail == "records" and not first:
            first.update(out)
        return dict(first) if tail == "records" else out

    feed.rewrite = replay
    pages = client(feed).fetch_iter(None)
    next(pages)
    with pytest.raises(FeedVerificationError, match="replayed"):
        next(pages)


def test_a_rewritten_history_is_refused(feed: TinyFeed) -> None:
    feed.add_range(0, 40)
    _, saved, _ = drain(client(feed))
    # The publisher edits an old record, appends a new one and signs the new tree.
    feed.records[4] = feed.records[4].replace("series-1", "series-2")
    feed.add_range(40, 41)
    with pytest.raises(FeedVerificationError, match="history was rewritten"):
        drain(client(feed), saved)


def test_a_rolled_back_feed_is_refused(feed: TinyFeed) -> None:
    feed.add_range(0, 40)
    _, saved, _ = drain(client(feed))
    del feed.records[30:]
    with pytest.raises(FeedVerificationError, match="rolled back"):
        drain(client(feed), saved)
    # A replayed older checkpoint (the publisher answers as it did before) is refused too.
    feed.add_range(30, 40)
    old = feed.note(20)
    feed.rewrite = lambda tail, out: {**out, "checkpoint": old} if tail == "records" else out
    with pytest.raises(FeedVerificationError, match="rollback or a replayed checkpoint"):
        drain(client(feed), saved)


def test_a_checkpoint_signed_by_another_key_or_of_another_feed_is_refused(
    feed: TinyFeed, tmp_path: Path
) -> None:
    feed.add_range(0, 5)
    other = generate_signing_key(tmp_path / "other.pem", "agency.example")
    stranger = TinyFeed(other, records=list(feed.records))
    feed.rewrite = lambda tail, out: {**out, "checkpoint": stranger.note()}
    with pytest.raises(FeedVerificationError, match="not signed by the peer's key"):
        drain(client(feed))
    feed.rewrite = None
    with pytest.raises(FeedVerificationError, match=r"not of .agency\.example/feeds/other."):
        drain(client(feed, origin="agency.example/feeds/other"))


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "refused our token"), (403, "does not let our key"), (503, "failed \\(503\\)")],
)
def test_a_refusing_peer_is_an_exchange_error_without_the_token(
    feed: TinyFeed, status: int, words: str
) -> None:
    feed.status = status
    with pytest.raises(ExchangeError, match=words) as caught:
        drain(client(feed))
    assert TOKEN not in str(caught.value)


def test_an_unreachable_peer_is_an_exchange_error(feed: TinyFeed) -> None:
    config = PeerConfig(
        "agency", "http://127.0.0.1:9", TOKEN, "known", {"key": str(feed.key.verifier)}
    )
    with pytest.raises(ExchangeError, match="cannot be reached") as caught:
        drain(FeedExchange(config))
    assert TOKEN not in str(caught.value)


def test_over_a_real_socket(feed: TinyFeed) -> None:
    feed.add_range(0, 20)
    with feed.serve() as url:
        config = PeerConfig("agency", url, TOKEN, "known", {"key": str(feed.key.verifier)})
        exchange = FeedExchange(config)
        start = exchange.initial_checkpoint()
        assert exchange.origin == feed.origin and start.after == 0
        updates, last, _ = drain(exchange, start)
    assert len(updates) == 20 and last is not None and last.after == 20
