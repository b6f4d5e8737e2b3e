"""The canonical text of feed records, built directly rather than through ``json.dumps``.

A record's text is the design's canonical JSON (``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)``, :func:`canonical`): subscribers hash exactly
these bytes. A catch-up writes one record per changed entry, and encoding a nested dict per
record (and a second one for the digest of what is shared) was most of its cost. A record's
shape is fixed, so :class:`RecordText` writes its keys in sorted order around pieces escaped by
the encoder's own string function; every piece that is not a plain string or flag (tags,
video frame numbers and times) still goes through the encoder. The result is the same text,
byte for byte (tests/test_exchange_publish.py compares the two over varied entries).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["RecordText", "canonical", "hash_text"]

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_encode = _ENCODER.encode
# The string escaper json.dumps uses with ensure_ascii=False (the C one where available).
_quote: Any = json.encoder.encode_basestring


def canonical(obj: Mapping[str, Any]) -> str:
    """The one text of a record (the design's canonical JSON): what the leaf hashes."""
    return _encode(obj)


def _value(v: Any) -> str:
    if isinstance(v, str):
        return str(_quote(v))
    if v is True:
        return "true"
    if v is False:
        return "false"
    return _encode(v)


def hash_text(
    hash_type: str, value: str, frame: Any = None, frame_time: Any = None, quality: Any = None
) -> str:
    """The canonical text of one shared hash: ``{"type","value"}``, with the three frame keys
    when it is the hash of a video frame. An entry's ``hashes`` is ``[`` these ``,``-joined
    ``]``."""
    if frame is None:
        return f'{{"type":{_quote(hash_type)},"value":{_quote(value)}}}'
    return (
        f'{{"frame":{_encode(frame)},"frame_time":{_encode(frame_time)},'
        f'"quality":{_encode(quality)},"type":{_quote(hash_type)},"value":{_quote(value)}}}'
    )


class RecordText:
    """Writes the records of one catch-up of one feed (its origin, time and provenance fixed)."""

    def __init__(self, origin: str, at: str, scheme: str, org: str, list_name: str) -> None:
        self._scheme = _quote(scheme)
        self._head = f'{{"at":{_quote(at)},'
        self._origin = f',"origin":{_quote(origin)},'
        self._provenance = (
            f'"provenance":{{"date":{_quote(at[:10])},"list":{_quote(list_name)},'
            f'"org":{_quote(org)},"version":'
        )

    @staticmethod
    def fields(shared: Mapping[str, Any]) -> str:
        """The canonical text of a ``fields`` object (its keys sorted here)."""
        return "{" + ",".join(f"{_quote(k)}:{_value(shared[k])}" for k in sorted(shared)) + "}"

    def body(self, hashes: str, fields: str) -> str:
        """The text the state digest is taken of: ``{"fields","hashes","scheme"}``."""
        return f'{{"fields":{fields},"hashes":{hashes},"scheme":{self._scheme}}}'

    def entry(
        self, hashes: str, fields: str, category: str | None, disputed: bool, version: int
    ) -> str:
        cat = "null" if category is None else _quote(category)
        return (
            f'{{"category":{cat},"disputed":{"true" if disputed else "false"},'
            f'"fields":{fields},"hashes":{hashes},{self._provenance}{int(version)}}},'
            f'"scheme":{self._scheme}}}'
        )

    def record(self, seq: int, key: str, op: str, entry: str) -> str:
        """An add, update, category or dispute record of ``entry`` (from :meth:`entry`)."""
        return (
            f'{self._head}"entry":{entry},"key":{_quote(key)},"op":{_quote(op)}'
            f'{self._origin}"seq":{int(seq)}}}'
        )

    def revoke(self, seq: int, key: str, reason: str) -> str:
        return (
            f'{self._head}"key":{_quote(key)},"op":"revoke"{self._origin}'
            f'"reason":{_quote(reason)},"seq":{int(seq)}}}'
        )
