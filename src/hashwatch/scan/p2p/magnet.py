"""Magnet links in text files: saved pages, bookmark exports, ``.url`` shortcuts, lists.

A magnet link names content by its exact topics (``xt``): BitTorrent's info-hash
(``urn:btih:``, 40 hex or 32 Base32 characters; ``urn:btmh:``, the v2 multihash), eDonkey's
ED2K (``urn:ed2k:``, ``urn:ed2khash:``) and Gnutella's SHA-1 (``urn:sha1:``, or the SHA-1
half of ``urn:bitprint:``), with a display name (``dn``), a size (``xl``) and trackers
(``tr``). ED2K and SHA-1 topics match list entries directly; an info-hash names the torrent
only. The text is scanned in blocks, up to ``MAX_TEXT_BYTES``; each link is one record.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar
from urllib.parse import unquote, unquote_plus

from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord

__all__ = ["MAX_TEXT_BYTES", "MagnetReader", "parse_magnet"]

MAX_TEXT_BYTES = 64 * 1024 * 1024
MAX_LINK = 8192
_BLOCK = 1024 * 1024
_LINK = re.compile(rb"magnet:\?[^\s\"'<>\x00]{1,%d}" % MAX_LINK, re.IGNORECASE)
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_B32 = re.compile(r"[A-Za-z2-7]{32}")
_BTMH = re.compile(r"1220[0-9a-fA-F]{64}")
_TEXT_SUFFIXES = (".txt", ".url", ".html", ".htm", ".csv", ".json", ".md", ".xml", ".log")
_INFO_HASH_ONLY = (
    "a magnet link that names the torrent by its info-hash only: the file hashes are in the "
    "torrent's metadata"
)


def _b32_hex(value: str) -> str | None:
    try:
        return base64.b32decode(value.upper()).hex()
    except (binascii.Error, ValueError):
        return None


def _topic(urn: str) -> tuple[str, str] | None:
    """``(hash name, canonical value)`` of one exact topic, None if not one hashwatch reads."""
    kind, _, value = urn.strip().rpartition(":")
    kind = kind.lower()
    if kind == "urn:btih":
        if _HEX40.fullmatch(value):
            return "btih", value.lower()
        if _B32.fullmatch(value):
            hexed = _b32_hex(value)
            return ("btih", hexed) if hexed else None
    elif kind == "urn:btmh" and _BTMH.fullmatch(value):
        return "btmh", value.lower()
    elif kind in ("urn:ed2k", "urn:ed2khash") and _HEX32.fullmatch(value):
        return "ed2k", value.lower()
    elif kind == "urn:sha1":
        if _B32.fullmatch(value):
            return "sha1_base32", value.upper()
        if _HEX40.fullmatch(value):
            return "sha1_base32", base64.b32encode(bytes.fromhex(value)).decode("ascii")
    elif kind == "urn:bitprint":
        sha1 = value.split(".", 1)[0]
        if _B32.fullmatch(sha1):
            return "sha1_base32", sha1.upper()
    return None


def parse_magnet(link: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The hashes of a magnet link and what else it says (name, size, trackers)."""
    query = link.split("?", 1)[1] if "?" in link else ""
    hashes: dict[str, str] = {}
    fields: dict[str, Any] = {}
    trackers: list[str] = []
    other = 0
    for pair in query.replace("&amp;", "&").split("&"):
        key, _, raw = pair.partition("=")
        key = key.lower().split(".", 1)[0]  # xt.1, xt.2: numbered topics
        if key == "xt":
            found = _topic(unquote(raw))
            if found is None:
                other += 1
            else:
                hashes.setdefault(*found)
        elif key == "dn" and raw:
            fields["name"] = unquote_plus(raw)[:1000]
        elif key == "xl" and raw.isdigit() and len(raw) < 20:
            fields["size"] = int(raw)
        elif key == "tr" and raw and len(trackers) < 20:
            trackers.append(unquote_plus(raw)[:500])
    if trackers:
        fields["trackers"] = trackers
    if other:
        fields["other_topics"] = other
    return hashes, fields


class MagnetReader(P2PArtifactReader):
    client: ClassVar[str] = "magnet"
    artifact: ClassVar[str] = "magnet"

    def recognises(self, name: str, head: bytes) -> bool:
        if b"\x00" in head:
            return False
        lower = name.lower()
        if lower.endswith(".magnet"):
            return True
        if b"magnet:?" in head.lower():
            return True
        return "magnet" in lower and lower.endswith(_TEXT_SUFFIXES)

    def read(self, stream: BinaryIO, size: int | None) -> Iterator[P2PRecord | P2PReadProblem]:
        index = 0
        base = 0  # offset of buf[0] in the file
        buf = b""
        scanned = 0
        while True:
            block = stream.read(min(_BLOCK, MAX_TEXT_BYTES - scanned))
            scanned += len(block)
            end = not block or scanned >= MAX_TEXT_BYTES
            buf += block
            keep_from = max(0, len(buf) - len(b"magnet:?"))
            for m in _LINK.finditer(buf):
                if not end and m.end() == len(buf):  # may go on in the next block
                    keep_from = m.start()
                    break
                keep_from = max(keep_from, m.end())
                item = self._record(index, base + m.start(), m.group().decode("latin-1"))
                if isinstance(item, P2PRecord):
                    index += 1
                yield item
            if end:
                break
            base += keep_from
            buf = buf[keep_from:]
        if scanned >= MAX_TEXT_BYTES and stream.read(1):
            yield P2PReadProblem(
                self.client,
                self.artifact,
                MAX_TEXT_BYTES,
                f"only the first {MAX_TEXT_BYTES} bytes were scanned for magnet links",
            )

    def _record(self, index: int, offset: int, link: str) -> P2PRecord | P2PReadProblem:
        hashes, fields = parse_magnet(link)
        if not hashes:
            return P2PReadProblem(
                self.client,
                self.artifact,
                offset,
                "a magnet link without a topic hashwatch reads (btih, btmh, ed2k, sha1)",
            )
        details: dict[str, Any] = {"offset": offset}
        for key in ("trackers", "other_topics"):
            if key in fields:
                details[key] = fields[key]
        matchable = any(k in hashes for k in ("ed2k", "sha1_base32"))
        return P2PRecord(
            client=self.client,
            artifact=self.artifact,
            index=index,
            name=fields.get("name"),
            size=fields.get("size"),
            hashes=hashes,
            details=details,
            unmatchable=None if matchable else _INFO_HASH_ONLY,
        )
