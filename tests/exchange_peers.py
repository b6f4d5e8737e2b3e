"""Loopback peers for the exchange tests: each answers HTTP on 127.0.0.1 in the format its
real counterpart documents (NCMEC's XML, StopNCII's and ThreatExchange's JSON, a hashwatch
feed with signed checkpoints), or is a signal file, and records the opinions it receives.

Every peer has the same small surface, so one contract test drives them all: ``put(i)`` adds
(or changes) benign entry ``i`` and returns its key as the exchange spells it, ``delete(i)``
removes it, ``hashes(i)`` are the (type, value) pairs the exchange should yield for it,
``opinions`` the (key, opinion) pairs that reached the peer, ``config`` the PeerConfig.
The hash values are digests of short benign strings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree as ET

from hashwatch.exchange.base import PeerConfig
from hashwatch.exchange.checkpoint import Checkpoint, generate_signing_key
from hashwatch.exchange.merkle import consistency_proof, leaf_hash, node_hash

Answer = tuple[int, str, bytes]


def md5_of(i: int) -> str:
    return hashlib.md5(f"benign-{i}".encode()).hexdigest()


def sha1_of(i: int) -> str:
    return hashlib.sha1(f"benign-{i}".encode()).hexdigest()


def pdq_of(i: int) -> str:
    return hashlib.sha256(f"benign-{i}".encode()).hexdigest()


class Loopback:
    """A threaded HTTP server on 127.0.0.1 handing every request to ``handle``."""

    def __init__(self, handle: Callable[[str, str, dict[str, list[str]], Any, bytes], Answer]):
        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, ctype, data = handle(
                    self.command, parts.path, parse_qs(parts.query), self.headers, body
                )
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _json(obj: Any, status: int = 200) -> Answer:
    return status, "application/json", json.dumps(obj).encode()


# -- NCMEC ---------------------------------------------------------------------------------

NCMEC_NS = "https://hashsharing.ncmec.org/hashsharing/v2"
NCMEC_REASONS = {
    "01234567-abcd-0123-4567-012345678900": "Not CSAM",
    "01234567-abcd-0123-4567-012345678901": "Wrong classification",
}


def _ncmec_time(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ncmec_parse(text: str) -> int:
    text = text.replace(".000Z", "Z")
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


class NCMECPeer:
    """NCMEC's hash-sharing API: entries by time, paged two at a time, Basic auth, XML."""

    kind = "ncmec"
    member = 42
    page_size = 2

    def __init__(self, tmp: Path) -> None:
        self.now = 1_700_000_000
        self.entries: dict[str, dict[str, Any]] = {}  # id -> state, in change order
        self.opinions: list[tuple[str, str]] = []
        self.feedback: list[tuple[str, str, str, str | None]] = []  # id, type, vote, guid
        self.requests = 0
        self.http = Loopback(self.handle)
        self.config = PeerConfig("ncmec", self.http.url + "/hashsharing", token="user:secret")

    def clock(self) -> float:
        return float(self.now)

    def key(self, i: int) -> str:
        return f"ncmec:{self.member}-image{i}"

    def hashes(self, i: int) -> set[tuple[str, str]]:
        return {("md5", md5_of(i)), ("sha1", sha1_of(i)), ("pdq", pdq_of(i))}

    def _stamp(self, entry_id: str, state: dict[str, Any]) -> None:
        self.now += 100
        self.entries.pop(entry_id, None)
        self.entries[entry_id] = {**state, "ts": self.now - 10}

    def put(self, i: int, classification: str = "A1", extra: dict[str, str] | None = None) -> str:
        fps = {"md5": md5_of(i), "sha1": sha1_of(i), "pdq": pdq_of(i), **(extra or {})}
        self._stamp(f"image{i}", {"deleted": False, "cls": classification, "fps": fps})
        return self.key(i)

    def delete(self, i: int) -> str:
        self._stamp(f"image{i}", {"deleted": True})
        return self.key(i)

    def _entries_xml(self, q: dict[str, list[str]]) -> bytes:
        start_ts, end_ts = _ncmec_parse(q["from"][0]), _ncmec_parse(q["to"][0])
        chosen = [(i, e) for i, e in self.entries.items() if start_ts <= e["ts"] <= end_ts]
        start = int(q.get("start", ["0"])[0])
        page = chosen[start : start + self.page_size]
        root = ET.Element("queryResult", xmlns=NCMEC_NS)
        if page:
            newest = max(e["ts"] for _, e in page)
            images = ET.SubElement(
                root, "images", count=str(len(page)), maxTimestamp=_ncmec_time(newest)
            )
            for entry_id, e in page:
                el = ET.SubElement(images, "deletedImage" if e["deleted"] else "image")
                ET.SubElement(el, "member", id=str(self.member)).text = "Example Member"
                ET.SubElement(el, "timestamp").text = _ncmec_time(e["ts"])
                ET.SubElement(el, "id").text = entry_id
                if not e["deleted"]:
                    ET.SubElement(el, "classification").text = e["cls"]
                    fps = ET.SubElement(el, "fingerprints")
                    for tag, value in e["fps"].items():
                        ET.SubElement(fps, tag).text = value
        if start + self.page_size < len(chosen):
            nxt = "/v2/entries?" + urlencode(
                {
                    "from": q["from"][0],
                    "to": q["to"][0],
                    "start": start + self.page_size,
                    "size": self.page_size,
                    "max": len(chosen),
                }
            )
            ET.SubElement(ET.SubElement(root, "paging"), "next").text = nxt
        data: bytes = ET.tostring(root, xml_declaration=True, encoding="utf-8")
        return data

    def handle(
        self, method: str, path: str, q: dict[str, list[str]], headers: Any, body: bytes
    ) -> Answer:
        self.requests += 1
        expected = "Basic " + base64.b64encode(b"user:secret").decode()
        if headers.get("Authorization") != expected:
            return 401, "text/plain", b"unauthorised"
        parts = path.removeprefix("/hashsharing/v2/").split("/")
        if method == "GET" and parts == ["entries"]:
            return 200, "application/xml", self._entries_xml(q)
        if method == "GET" and parts[0] == "feedback" and parts[-1] == "reasons":
            # pytx's client reads the reasons from an availableFeedbackReasons child of the
            # root; the root's own name plays no part.
            root = ET.Element("feedbackReasons", xmlns=NCMEC_NS)
            available = ET.SubElement(root, "availableFeedbackReasons")
            for guid, name in NCMEC_REASONS.items():
                ET.SubElement(available, "reason", guid=guid, name=name, type=parts[1])
            return 200, "application/xml", ET.tostring(root)
        if method == "PUT" and parts[0] == "entries" and parts[-1] == "feedback":
            member, entry_id, fp_type = parts[1], parts[2], parts[3]
            tree = ET.fromstring(body)
            vote = tree[0].tag.split("}")[-1]
            reason = tree.find(".//{*}guid")
            self.feedback.append((entry_id, fp_type, vote, None if reason is None else reason.text))
            opinion = "confirmed" if vote == "affirmative" else "false_positive"
            if (f"ncmec:{member}-{entry_id}", opinion) not in self.opinions:
                self.opinions.append((f"ncmec:{member}-{entry_id}", opinion))
            return 200, "application/xml", b"<submissionResult/>"
        return 404, "text/plain", b"no such endpoint"

    def close(self) -> None:
        self.http.close()


# -- StopNCII ------------------------------------------------------------------------------


class StopNCIIPeer:
    """StopNCII's FetchHashes/SubmitFeedback: records by modification time, paged two at a
    time, function and subscription keys in headers."""

    kind = "stopncii"
    page_size = "2"

    def __init__(self, tmp: Path) -> None:
        self.tick = 100
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.opinions: list[tuple[str, str]] = []
        self.feedback: list[dict[str, Any]] = []
        self.http = Loopback(self.handle)
        self.config = PeerConfig(
            "stopncii",
            self.http.url + "/v1",
            token="fetch-key,sub-key",
            options={"feedback_key": "feedback-key", "page_size": self.page_size},
        )

    def key(self, i: int) -> str:
        return f"stopncii:ImagePDQ:{pdq_of(i)}"

    def hashes(self, i: int) -> set[tuple[str, str]]:
        return {("pdq", pdq_of(i))}

    def record(self, signal_type: str, value: str, status: str, feedback: list[str] = ()) -> None:  # type: ignore[assignment]
        self.tick += 1
        self.records.pop((signal_type, value), None)
        self.records[signal_type, value] = {
            "lastModtimestamp": self.tick,
            "signalType": signal_type,
            "hashValue": value,
            "hashStatus": status,
            "caseNumbers": {"case-1": status},
            "CSPFeedbacks": [{"feedbackValue": f, "tags": [], "source": "csp"} for f in feedback],
        }

    def put(self, i: int) -> str:
        self.record("ImagePDQ", pdq_of(i), "Active")
        return self.key(i)

    def delete(self, i: int) -> str:
        self.record("ImagePDQ", pdq_of(i), "Withdrawn" if i % 2 == 0 else "Deleted")
        return self.key(i)

    def handle(
        self, method: str, path: str, q: dict[str, list[str]], headers: Any, body: bytes
    ) -> Answer:
        if headers.get("Ocp-Apim-Subscription-Key") != "sub-key":
            return 401, "text/plain", b"no subscription key"
        if method == "GET" and path == "/v1/FetchHashes":
            if headers.get("x-functions-key") != "fetch-key":
                return 401, "text/plain", b"wrong function key"
            start = int(q["startTimestamp"][0])
            size = int(q["pageSize"][0])
            offset = int(q.get("nextPageToken", ["0"])[0])
            chosen = sorted(
                (r for r in self.records.values() if r["lastModtimestamp"] >= start),
                key=lambda r: r["lastModtimestamp"],
            )
            page = chosen[offset : offset + size]
            more = offset + size < len(chosen)
            return _json(
                {
                    "count": len(page),
                    "nextPageToken": str(offset + size) if more else None,
                    "nextSetTimestamp": page[-1]["lastModtimestamp"] + 1 if page else start,
                    "hasMoreRecords": more,
                    "hashRecords": page,
                }
            )
        if method == "POST" and path == "/v1/SubmitFeedback":
            if headers.get("x-functions-key") != "feedback-key":
                return 401, "text/plain", b"wrong function key"
            for fb in json.loads(body)["hashFeedbacks"]:
                self.feedback.append(fb)
                opinion = {"Blocked": "confirmed", "NotBlocked": "false_positive"}.get(
                    fb["feedbackValue"], "seen"
                )
                kind = next(t for (t, v) in self.records if v == fb["hashValue"])
                self.opinions.append((f"stopncii:{kind}:{fb['hashValue']}", opinion))
            return _json({})
        return 404, "text/plain", b"no such endpoint"

    def close(self) -> None:
        self.http.close()


# -- ThreatExchange --------------------------------------------------------------------------

TE_TOKEN = "1234567890|abcdefghijklmnopqrstuvwxyz"


class ThreatExchangePeer:
    """A ThreatExchange privacy group's threat_updates (Graph API paging, two a page) and
    reactions on descriptors; the app token travels in the query string as Graph API does."""

    kind = "threatexchange"
    group = "303636684709969"

    def __init__(self, tmp: Path) -> None:
        self.tick = 1_700_000_000
        self.updates: dict[str, dict[str, Any]] = {}  # indicator id -> update, in change order
        self.opinions: list[tuple[str, str]] = []
        self.reactions: list[tuple[str, str]] = []
        self.http = Loopback(self.handle)
        self.config = PeerConfig(
            "te",
            self.http.url + "/v26.0",
            token=TE_TOKEN,
            remote_list=self.group,
            options={"page_size": "2"},
        )

    def key(self, i: int) -> str:
        return f"threatexchange:{9000 + i}"

    def hashes(self, i: int) -> set[tuple[str, str]]:
        return {("pdq", pdq_of(i))}

    def update(self, ident: str, obj: dict[str, Any], same_second: bool = False) -> None:
        if not same_second:
            self.tick += 1
        self.updates.pop(ident, None)
        self.updates[ident] = {"id": ident, "last_updated": self.tick, **obj}

    def put(self, i: int, status: str = "MALICIOUS", more: list[dict[str, Any]] = ()) -> str:  # type: ignore[assignment]
        descriptors = [
            {
                "id": str(7000 + i),
                "owner": {"id": "111"},
                "status": status,
                "tags": {"data": [{"text": "media_type_photo"}]},
            },
            *more,
        ]
        self.update(
            str(9000 + i),
            {
                "indicator": pdq_of(i),
                "type": "HASH_PDQ",
                "should_delete": False,
                "descriptors": {"data": descriptors},
            },
        )
        return self.key(i)

    def delete(self, i: int) -> str:
        self.update(
            str(9000 + i), {"indicator": pdq_of(i), "type": "HASH_PDQ", "should_delete": True}
        )
        return self.key(i)

    def handle(
        self, method: str, path: str, q: dict[str, list[str]], headers: Any, body: bytes
    ) -> Answer:
        if q.get("access_token") != [TE_TOKEN]:
            return _json({"error": {"message": "Invalid OAuth access token."}}, 400)
        parts = path.removeprefix("/v26.0/").strip("/").split("/")
        if method == "GET" and parts == [self.group, "threat_updates"]:
            start = int(q.get("start_time", ["0"])[0])
            limit = int(q.get("limit", ["100"])[0])
            offset = int(q.get("after", ["0"])[0])
            chosen = sorted(
                (u for u in self.updates.values() if u["last_updated"] >= start),
                key=lambda u: u["last_updated"],
            )
            page = chosen[offset : offset + limit]
            answer: dict[str, Any] = {"data": page}
            if offset + limit < len(chosen):
                nxt = {**{k: v[0] for k, v in q.items()}, "after": str(offset + limit)}
                answer["paging"] = {"next": f"{self.http.url}{path}?{urlencode(nxt)}"}
            return _json(answer)
        if method == "POST" and len(parts) == 1 and "reactions" in q:
            reaction = q["reactions"][0]
            self.reactions.append((parts[0], reaction))
            for u in self.updates.values():
                ids = [d["id"] for d in u.get("descriptors", {}).get("data", [])]
                if parts[0] in ids:
                    opinion = {
                        "HELPFUL": "confirmed",
                        "NOT_HELPFUL": "false_positive",
                        "SAW_THIS_TOO": "seen",
                    }.get(reaction, "disputed")
                    self.opinions.append((f"threatexchange:{u['id']}", opinion))
            return _json({"success": True})
        if method == "GET" and len(parts) == 1 and parts[0] in self.updates:
            return _json({"descriptors": self.updates[parts[0]].get("descriptors", {"data": []})})
        return _json({"error": {"message": "Unsupported request"}}, 400)

    def close(self) -> None:
        self.http.close()


# -- HMA signal file -------------------------------------------------------------------------


class FilePeer:
    """A signal file as HMA's file exchange reads it: ``<signal type> <value>`` lines."""

    kind = "file"

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "signals.txt"
        self.lines: dict[int, str] = {}
        self._write()
        self.config = PeerConfig("partner-file", str(self.path))

    def _write(self) -> None:
        self.path.write_text("".join(f"{line}\n" for line in self.lines.values()))

    def key(self, i: int) -> str:
        return f"md5:{md5_of(i)}"

    def hashes(self, i: int) -> set[tuple[str, str]]:
        return {("md5", md5_of(i))}

    def put(self, i: int) -> str:
        self.lines[i] = f"video_md5 {md5_of(i)}"
        self._write()
        return self.key(i)

    def delete(self, i: int) -> str:
        del self.lines[i]
        self._write()
        return self.key(i)

    @property
    def opinions(self) -> list[tuple[str, str]]:
        """Lines the exchange appended: pytx's file format records confirmed signals only."""
        mine = set(self.lines.values())
        out = []
        for line in self.path.read_text().splitlines():
            if line and line not in mine:
                signal_type, _, value = line.partition(" ")
                out.append((f"{signal_type}:{value}", "confirmed"))
        return out

    def close(self) -> None:
        pass


# -- hashwatch feed ----------------------------------------------------------------------------


class FeedPeer:
    """A hashwatch feed as the exchange design specifies it (``docs/exchange.md``): records as
    canonical JSON strings, a Merkle tree over them, checkpoints signed with Ed25519,
    ``/checkpoint``, ``/records`` with page and known-size consistency proofs, ``/opinions``."""

    kind = "hashwatch"
    list_name = "known"

    def __init__(self, tmp: Path) -> None:
        self.key_pair = generate_signing_key(tmp / "feed.pem", "publisher.example")
        self.origin = f"publisher.example/feeds/{self.list_name}"
        self.records: list[str] = []
        self.live: set[str] = set()
        self.opinions: list[tuple[str, str]] = []
        self.tamper: Callable[[dict[str, Any]], None] | None = None
        self.http = Loopback(self.handle)
        self.config = PeerConfig(
            "publisher",
            self.http.url,
            token="peer-token",
            remote_list=self.list_name,
            options={"key": str(self.key_pair.verifier), "origin": self.origin, "page_size": "2"},
        )

    def key(self, i: int) -> str:
        return f"md5:{md5_of(i)}"

    def hashes(self, i: int) -> set[tuple[str, str]]:
        return {("md5", md5_of(i)), ("pdq", pdq_of(i))}

    def _append(self, obj: dict[str, Any]) -> None:
        obj = {
            "origin": self.origin,
            "seq": len(self.records) + 1,
            "at": "2025-01-01T00:00:00Z",
            **obj,
        }
        self.records.append(
            json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        )

    def put(self, i: int, category: str | None = "A1") -> str:
        key = self.key(i)
        entry = {
            "hashes": [
                {"type": "md5", "value": md5_of(i)},
                {"type": "pdq", "value": pdq_of(i), "quality": 100},
            ],
            "category": category,
            "scheme": "US",
            "disputed": False,
            "fields": {},
            "provenance": {
                "org": "Publisher",
                "list": self.list_name,
                "version": len(self.records) + 1,
            },
        }
        self._append({"op": "update" if key in self.live else "add", "key": key, "entry": entry})
        self.live.add(key)
        return key

    def delete(self, i: int) -> str:
        key = self.key(i)
        self._append({"op": "revoke", "key": key, "reason": "revoked"})
        self.live.discard(key)
        return key

    def _perfect(self, size: int) -> Callable[[int, int], bytes]:
        leaves = [leaf_hash(r.encode()) for r in self.records[:size]]
        cache: dict[tuple[int, int], bytes] = {}

        def perfect(level: int, index: int) -> bytes:
            if level == 0:
                return leaves[index]
            if (level, index) not in cache:
                cache[level, index] = node_hash(
                    perfect(level - 1, 2 * index), perfect(level - 1, 2 * index + 1)
                )
            return cache[level, index]

        return perfect

    def note(self) -> str:
        from hashwatch.exchange.merkle import root_of

        n = len(self.records)
        return Checkpoint(self.origin, n, root_of(n, self._perfect(n))).sign(self.key_pair)

    def handle(
        self, method: str, path: str, q: dict[str, list[str]], headers: Any, body: bytes
    ) -> Answer:
        if headers.get("Authorization") != "Bearer peer-token":
            return _json({"detail": "unknown key"}, 401)
        prefix = f"/v1/feeds/{self.list_name}/"
        if not path.startswith(prefix):
            return _json({"detail": "no such feed"}, 404)
        tail = path.removeprefix(prefix)
        n = len(self.records)
        if method == "GET" and tail == "checkpoint":
            return _json({"origin": self.origin, "size": n, "checkpoint": self.note()})
        if method == "GET" and tail == "records":
            after = int(q.get("after", ["0"])[0])
            limit = min(1000, int(q.get("limit", ["500"])[0]))
            known = int(q.get("known_size", ["0"])[0])
            if after > n or known > n:
                return _json({"detail": "beyond the feed"}, 409)
            page = self.records[after : after + limit]
            end = after + len(page)
            perfect = self._perfect(n)
            b64 = [base64.b64encode(h).decode() for h in consistency_proof(end, n, perfect)]
            answer = {
                "origin": self.origin,
                "after": after,
                "records": page,
                "next": end if page else None,
                "more": end < n,
                "checkpoint": self.note(),
                "page_proof": b64,
                "known_size": known,
                "known_proof": [
                    base64.b64encode(h).decode() for h in consistency_proof(known, n, perfect)
                ],
            }
            if self.tamper is not None:
                self.tamper(answer)
            return _json(answer)
        if method == "POST" and tail == "opinions":
            obj = json.loads(body)
            self.opinions.append((obj["key"], obj["opinion"]))
            return _json({"key": obj["key"], "opinion": obj["opinion"], "entry_status": "active"})
        return _json({"detail": "not found"}, 404)

    def close(self) -> None:
        self.http.close()


PEERS: dict[str, type[Any]] = {
    p.kind: p for p in (NCMECPeer, StopNCIIPeer, ThreatExchangePeer, FilePeer, FeedPeer)
}


def open_peer(kind: str, tmp: Path, monkeypatch: Any) -> Iterator[Any]:
    """The loopback peer of ``kind`` (NCMEC's clock follows the peer's), closed afterwards."""
    peer = PEERS[kind](tmp)
    if kind == "ncmec":
        from hashwatch.exchange.ncmec import NCMECExchange

        monkeypatch.setattr(NCMECExchange, "clock", staticmethod(peer.clock))
    try:
        yield peer
    finally:
        peer.close()
