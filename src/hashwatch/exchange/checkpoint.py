"""Signed checkpoints of a feed, in the C2SP ``tlog-checkpoint`` / ``signed-note`` format.

A checkpoint says "the feed ``origin`` holds ``size`` records with Merkle root ``root``" and
carries the publisher's Ed25519 signature::

    hashwatch.example.org/feeds/agency-known
    10000
    3q2+7w...=

    — hashwatch.example.org/feeds/agency-known Ab3dEf...

The body (origin, size, base64 root, one per line) is signed; the signature line is an em dash,
the key's name, and base64 of the 4-byte key id followed by the 64-byte signature. The key id is
the first 4 bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``, so tools that read
signed notes (Go's ``sumdb/note``, Sigstore's witnesses) can check hashwatch checkpoints too.

A publisher hands peers its *verifier key*, ``name+<key id hex>+<base64(0x01 || public key)>``
(``hashwatch exchange key``); a subscriber accepts a checkpoint only when a signature line by
that key verifies over the body.

Signing keys live in a PEM file (PKCS#8) that only its owner may read: :func:`load_signing_key`
refuses a file that its group or others can read, as ``ssh`` does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hashwatch.errors import ConfigError, ExchangeError, FeedVerificationError

__all__ = [
    "Checkpoint",
    "SigningKey",
    "VerifierKey",
    "generate_signing_key",
    "load_signing_key",
]

_ALG_ED25519 = b"\x01"
_DASH = "\u2014 "
MAX_CHECKPOINT_BYTES = 16_384


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name) or len(name) > 200:
        raise ConfigError(
            "a feed origin (key name) is 1 to 200 characters without spaces or '+', "
            "e.g. agency.example.org/feeds/known"
        )
    return name


@dataclass(frozen=True)
class VerifierKey:
    """A publisher's public key as peers hold it: name, key id and Ed25519 public key."""

    name: str
    public: bytes

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.public)

    def __str__(self) -> str:
        encoded = base64.b64encode(_ALG_ED25519 + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """A verifier key from its text form; :class:`ConfigError` saying what is wrong."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise ConfigError("a peer key has the form NAME+KEYID+BASE64 (from `exchange key`)")
        name, hex_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
            key_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise ConfigError("a peer key's id or public key is not valid hex/base64") from None
        if len(raw) != 33 or raw[:1] != _ALG_ED25519:
            raise ConfigError("a peer key must be an Ed25519 key (33 bytes, algorithm 0x01)")
        key = cls(_check_name(name), raw[1:])
        if key.key_id != key_id:
            raise ConfigError("a peer key's id does not match its name and public key")
        return key

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A publisher's private key and the name (feed origin prefix) it signs as."""

    name: str
    private: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        public = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return VerifierKey(self.name, public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def generate_signing_key(path: Path, name: str) -> SigningKey:
    """A new Ed25519 key written to ``path`` (mode 0600, never overwriting a file)."""
    _check_name(name)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already: a signing key is never overwritten") from None
    except OSError as exc:
        raise ConfigError(f"cannot write the signing key {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return SigningKey(name, key)


def load_signing_key(path: Path, name: str) -> SigningKey:
    """The signing key in ``path``; refused when the group or others may read the file."""
    _check_name(name)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ExchangeError(f"cannot read the signing key {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ExchangeError(
            f"the signing key {path} is readable by others (mode {stat.S_IMODE(mode):o}): "
            f"run chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError):
        raise ExchangeError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ExchangeError(f"{path} is not an Ed25519 key")
    return SigningKey(name, key)


@dataclass(frozen=True)
class Checkpoint:
    """A feed's size and Merkle root, as signed by its publisher."""

    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\n".encode()

    def sign(self, key: SigningKey) -> str:
        """The signed note: the body, a blank line, and the signature line."""
        signature = base64.b64encode(key.verifier.key_id + key.sign(self.body())).decode()
        return self.body().decode() + "\n" + f"{_DASH}{key.name} {signature}\n"

    @classmethod
    def verify(cls, note: str, key: VerifierKey, origin: str | None = None) -> Checkpoint:
        """The checkpoint in ``note`` if ``key`` signed it (and it is of ``origin``), else
        :class:`FeedVerificationError` saying why."""
        if len(note) > MAX_CHECKPOINT_BYTES:
            raise FeedVerificationError("the checkpoint is too large to be one")
        body, sep, signatures = note.partition("\n\n")
        if not sep:
            raise FeedVerificationError("the checkpoint has no signature block")
        lines = body.split("\n")
        if len(lines) < 3:
            raise FeedVerificationError("the checkpoint lacks its origin, size or root")
        signed = (body + "\n").encode()
        for line in signatures.splitlines():
            if not line.startswith(_DASH):
                raise FeedVerificationError("a checkpoint signature line is malformed")
            name, _, encoded = line[len(_DASH) :].rpartition(" ")
            if name != key.name:
                continue
            try:
                raw = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise FeedVerificationError("a checkpoint signature is not base64") from None
            if raw[:4] == key.key_id and key.verify(signed, raw[4:]):
                return cls._parse(lines, origin)
        raise FeedVerificationError(
            f"the checkpoint is not signed by the peer's key {key.name}+{key.key_id.hex()}"
        )

    @classmethod
    def _parse(cls, lines: list[str], origin: str | None) -> Checkpoint:
        found, size_text, root_text = lines[0], lines[1], lines[2]
        if origin is not None and found != origin:
            raise FeedVerificationError(f"the checkpoint is of {found!r}, not of {origin!r}")
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise FeedVerificationError("the checkpoint's size is not a number")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error:
            raise FeedVerificationError("the checkpoint's root is not base64") from None
        if len(root) != 32:
            raise FeedVerificationError("the checkpoint's root is not a SHA-256 hash")
        return cls(found, int(size_text), root)
