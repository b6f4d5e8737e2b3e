"""The asking side of query-only sharing: send our signals to a peer's match endpoint, keep what
we asked and what we got.

Media never leaves: files are hashed here (the CLI hashes them with the library) and only
their signals — digests and PDQ — are sent, as ``POST /v1/match`` JSON, at most
``MAX_SIGNALS`` a request. No file name or content id goes with them: the peer learns the
hashes we asked about and nothing of where they came from. Each answer is folded back onto the
file (or signal line) it came from.

What was asked and answered is recorded in our own database's audit trail
(``peer.query``, target ``peer:NAME``): how many signals of which types and how many items —
never the values — and the answers (list, category, distance or band), in the same
transaction-per-call way as every other audited write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from hashwatch.errors import ExchangeError
from hashwatch.exchange._http import peer_errors
from hashwatch.signals.query import Signal
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database

__all__ = ["MAX_SIGNALS", "QueryAnswer", "QueryTarget", "query_peer"]

MAX_SIGNALS = 1000  # signals in one match request (the server's MAX_SIGNALS default)


@dataclass(frozen=True)
class QueryTarget:
    """Where to ask: a configured peer (``hashwatch peers add``) or a URL and token."""

    name: str  # the peer's name, or the URL's host when no peer is configured
    url: str
    token: str = field(repr=False)

    @classmethod
    def of_url(cls, url: str, token: str) -> QueryTarget:
        host = urlsplit(url).netloc.rsplit("@", 1)[-1]
        if not host:
            raise ExchangeError(f"not an http(s) URL: {url!r}")
        return cls(host, url, token)


@dataclass
class QueryAnswer:
    """The peer's answer for one item (a file, or one line of a signals file)."""

    item: str  # what we asked about, as the user named it (never sent)
    signals: int  # signals sent for it
    matches: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the file could not be hashed: nothing was sent

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"item": self.item, "signals": self.signals}
        out["matches"] = self.matches
        if self.notes:
            out["notes"] = self.notes
        if self.error:
            out["error"] = self.error
        return out


def _requests(items: Sequence[Sequence[Signal]]) -> list[list[tuple[int, Signal]]]:
    """The signals of ``items`` in requests of at most MAX_SIGNALS, an item never split."""
    out: list[list[tuple[int, Signal]]] = []
    current: list[tuple[int, Signal]] = []
    for n, item in enumerate(items):
        if current and len(current) + len(item) > MAX_SIGNALS:
            out.append(current)
            current = []
        current.extend((n, s) for s in item[:MAX_SIGNALS])
    if current:
        out.append(current)
    return out


def _body(batch: Sequence[tuple[int, Signal]]) -> dict[str, Any]:
    signals = []
    for _, s in batch:
        one: dict[str, Any] = {"type": s.hash_type.value, "value": s.value}
        if s.quality is not None:
            one["quality"] = s.quality
        signals.append(one)
    return {"signals": signals}


def query_peer(
    target: QueryTarget,
    items: Sequence[tuple[str, Sequence[Signal], str | None]],
    db: Database,
    *,
    actor: str | None = None,
    client: httpx.Client | None = None,
    timeout_s: float = 30.0,
) -> list[QueryAnswer]:
    """Ask ``target`` about ``items`` (name, signals, error — an item with an error sends
    nothing) and record the query in ``db``'s audit trail. A refusal (401, 403, 429, …) is
    an :class:`ExchangeError` naming the peer and the status; it is audited too."""
    answers = [
        QueryAnswer(name, 0 if error else len(sigs), error=error) for name, sigs, error in items
    ]
    sendable = [[] if error else list(sigs) for _, sigs, error in items]
    endpoint = target.url.rstrip("/") + "/v1/match"
    own = client is None
    http = client or httpx.Client(timeout=timeout_s)
    failure: str | None = None
    try:
        for batch in _requests(sendable):
            with peer_errors(target.name, "query"):
                r = http.post(
                    endpoint,
                    json=_body(batch),
                    params={"dihedral": "false"},
                    headers={"Authorization": f"Bearer {target.token}"},
                )
                if r.status_code != 200:
                    failure = _refusal(r)
                    raise ExchangeError(f"peer {target.name!r}: query refused ({failure})")
                per_signal = r.json()["signals"]
            if len(per_signal) != len(batch):
                raise ExchangeError(
                    f"peer {target.name!r}: answered {len(per_signal)} of {len(batch)} signals"
                )
            for (n, _), got in zip(batch, per_signal, strict=True):
                answers[n].matches.extend(got.get("matches", []))
                answers[n].notes.extend(got.get("notes", []))
    except ExchangeError as exc:
        failure = failure or str(exc)
        raise
    finally:
        if own:
            http.close()
        _audit(db, target, sendable, answers, actor, failure)
    return answers


def _shown_url(url: str) -> str:
    """The URL without credentials or query (either may carry a secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def _refusal(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail")
    except ValueError:
        detail = None
    text = detail if isinstance(detail, str) else ""
    return f"HTTP {r.status_code}" + (f": {text[:200]}" if text else "")


def _audit(
    db: Database,
    target: QueryTarget,
    sent: Sequence[Sequence[Signal]],
    answers: Sequence[QueryAnswer],
    actor: str | None,
    failure: str | None,
) -> None:
    """What we asked (types and counts) and got (each matched item's answers), no value."""
    types = Counter(s.hash_type.value for item in sent for s in item)
    matched = [a for a in answers if a.matches]
    details: dict[str, Any] = {
        "url": _shown_url(target.url),
        "items": len(answers),
        "signals": dict(sorted(types.items())),
        "matched_items": len(matched),
        "matches": sum(len(a.matches) for a in answers),
        "lists": sorted({str(m.get("list")) for a in matched for m in a.matches}),
        "answers": [{"item": a.item, "matches": a.matches} for a in matched],
    }
    if failure:
        details["failed"] = failure
    with db.begin() as conn:
        record_audit(
            conn, actor=actor, action="peer.query", target=f"peer:{target.name}", details=details
        )
