"""The hash types hashwatch ships: byte digests, PDQ and the vPDQ frame-set key.

Each class is the whole description of its type (see :mod:`hashwatch.signals.signal_type`).
The reference hashers (:meth:`~SignalType.hash_bytes`) import the decoders only when called,
so reading a list or parsing a command line never loads numpy, Pillow or PyAV.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from hashwatch.signals.signal_type import HexDigestType, MatchRule, SignalType, SignalValueError

if TYPE_CHECKING:
    from hashwatch.signals.hasher import FileSignals

__all__ = [
    "BUILTIN_SIGNAL_TYPES",
    "Ed2kSignal",
    "Md5Signal",
    "PdqSignal",
    "Sha1Base32Signal",
    "Sha1Signal",
    "Sha256Signal",
    "VpdqSignal",
    "frame_set_key",
]


class Md5Signal(HexDigestType):
    name = "md5"
    hex_length = 32
    fields = ("md5",)
    media_entry = True

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        return (fs.digests.md5,) if fs.digests is not None else ()

    def hash_bytes(self, data: bytes) -> str | None:
        return hashlib.md5(data).hexdigest()


class Sha1Signal(HexDigestType):
    name = "sha1"
    aliases = ("sha-1",)
    hex_length = 40
    fields = ("sha1",)
    media_entry = True

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        return (fs.digests.sha1,) if fs.digests is not None else ()

    def hash_bytes(self, data: bytes) -> str | None:
        return hashlib.sha1(data).hexdigest()


class Sha256Signal(HexDigestType):
    name = "sha256"
    aliases = ("sha-256",)
    hex_length = 64
    fields = ("sha256",)
    media_entry = True

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        return (fs.digests.sha256,) if fs.digests is not None else ()

    def hash_bytes(self, data: bytes) -> str | None:
        return hashlib.sha256(data).hexdigest()


class Ed2kSignal(HexDigestType):
    """eDonkey/eMule: MD4 over 9,728,000-byte chunks. A file filling whole chunks has two
    spellings ("blue" and old eDonkey's "red"); both are matched."""

    name = "ed2k"
    aliases = ("edonkey", "emule")
    hex_length = 32
    fields = ("ed2k", "ed2k_red")
    # Kept in media entries (add-media, review decisions): eMule's records name files by it.
    media_entry = True

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        d = fs.digests
        if d is None:
            return ()
        return (d.ed2k,) if d.ed2k_red is None else (d.ed2k, d.ed2k_red)

    def hash_bytes(self, data: bytes) -> str | None:
        from hashwatch.signals.digests import digest_bytes

        return digest_bytes(data).ed2k


_BASE32 = re.compile(r"^[A-Z2-7]{32}$")


class Sha1Base32Signal(SignalType):
    """Gnutella's SHA-1: uppercase Base32, written without its ``urn:sha1:`` prefix. A 40-hex
    SHA-1 given as this type is converted."""

    name = "sha1_base32"
    aliases = ("sha1base32", "gnutella", "urn:sha1")
    fields = ("sha1_base32",)

    def normalize(self, value: str) -> str:
        text = value.strip()
        if text.lower().startswith("urn:sha1:"):
            text = text[9:]
        upper = text.upper()
        if _BASE32.match(upper):
            return upper
        lower = text.lower()
        if len(lower) == 40 and re.fullmatch(r"[0-9a-f]+", lower):
            return base64.b32encode(bytes.fromhex(lower)).decode("ascii")
        raise SignalValueError("expected 32 Base32 characters")

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        return (fs.digests.sha1_base32,) if fs.digests is not None else ()

    def hash_bytes(self, data: bytes) -> str | None:
        return base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


class PdqSignal(HexDigestType):
    """Meta's PDQ: 256 bits, matched within each list's Hamming threshold."""

    name = "pdq"
    aliases = ("pdq_hash", "pdqhash")
    hex_length = 64
    match_rule = MatchRule.HAMMING
    bits = 256
    fields = ("pdq",)
    media_entry = True

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        return (fs.pdq.hash,) if fs.pdq is not None else ()

    def quality_of(self, fs: FileSignals) -> int | None:
        return fs.pdq.quality if fs.pdq is not None else None

    def variants_of(self, fs: FileSignals) -> tuple[str, ...] | None:
        return fs.pdq.dihedral if fs.pdq is not None else None

    def hash_bytes(self, data: bytes) -> str | None:
        from hashwatch.errors import DecodeError
        from hashwatch.signals.pdq import compute_pdq

        try:
            return compute_pdq(data).hash
        except DecodeError:
            return None


def frame_set_key(frames: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 of the canonical vPDQ lines ``frame,quality,pdq`` of ``frames``, sorted by
    frame number then hash: the key of a list entry known only by its frame hashes."""
    digest = hashlib.sha256()
    for f in sorted(frames, key=lambda f: (int(f["frame"]), str(f["pdq"]))):
        digest.update(f"{int(f['frame'])},{int(f['quality'])},{f['pdq']}\n".encode("ascii"))
    return digest.hexdigest()


class VpdqSignal(HexDigestType):
    """The identity of a video's frame-hash set (see :func:`frame_set_key`). Never a query
    signal: a video is matched by its frames, with vPDQ's rules."""

    name = "vpdq"
    hex_length = 64
    query = False

    def values_of(self, fs: FileSignals) -> tuple[str, ...]:
        if fs.video is None or not fs.video.frames:
            return ()
        return (frame_set_key(fs.video.frames),)

    def hash_bytes(self, data: bytes) -> str | None:
        from hashwatch.signals.video import hash_video

        video = hash_video(data)
        return frame_set_key(video.frames) if video.frames else None


# The registration: one instance per type, in the order outputs list them.
BUILTIN_SIGNAL_TYPES: tuple[SignalType, ...] = (
    Md5Signal(),
    Sha1Signal(),
    Sha256Signal(),
    Ed2kSignal(),
    Sha1Base32Signal(),
    PdqSignal(),
    VpdqSignal(),
)
