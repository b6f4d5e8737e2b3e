"""An examiner's Ed25519 signature over a case's ``manifest.json``.

The manifest holds the SHA-256 of every output and the evidence's digests, so signing it signs
the whole case. ``hashwatch scan --sign-key KEY.pem`` writes, beside the manifest:

* ``manifest.json.sig``: the detached Ed25519 signature of the manifest's bytes (64 raw bytes,
  as ``openssl pkeyutl -sign -rawin`` writes it; ``openssl pkeyutl -verify -pubin -inkey
  PUB.pem -rawin -in manifest.json -sigfile manifest.json.sig`` checks it too), and
* ``manifest.json.pub``: the signer's public key (PEM), to say which key signed.

``hashwatch verify`` checks the signature when it is there. Checked with the public key found in
the case directory it proves only that the manifest was not changed since *someone* signed it;
given ``--public-key`` (the examiner's key, obtained another way) it proves who signed. Keys are
made with any tool, e.g. ``openssl genpkey -algorithm ed25519 -out examiner.pem`` and
``openssl pkey -in examiner.pem -pubout -out examiner.pub.pem``. An encrypted private key is
opened with the passphrase in ``HASHWATCH_SIGN_KEY_PASSPHRASE``.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hashwatch.audit import AuditLog
from hashwatch.errors import ConfigError
from hashwatch.report.manifest import AUDIT_LOG, MANIFEST, PUBLIC_KEY, SIGNATURE

__all__ = [
    "PASSPHRASE_ENV",
    "PUBLIC_KEY",
    "SIGNATURE",
    "SignatureCheck",
    "check_signature",
    "fingerprint",
    "load_private_key",
    "load_public_key",
    "sign_manifest",
]

PASSPHRASE_ENV = "HASHWATCH_SIGN_KEY_PASSPHRASE"


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror or exc}") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (PKCS#8, as ``openssl genpkey`` writes it)."""
    data = _read(path, "signing key")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if passphrase else None
        )
    except TypeError:
        raise ConfigError(
            f"signing key {path} is encrypted: set {PASSPHRASE_ENV} to its passphrase"
        ) from None
    except ValueError:
        raise ConfigError(
            f"signing key {path}: not a PEM private key (or a wrong passphrase)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``openssl pkey -pubout``)."""
    return _public_key(_read(path, "public key"), str(path))


def _public_key(data: bytes, name: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(f"public key {name}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"public key {name} is not an Ed25519 key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """``SHA256:`` and the unpadded base64 of the SHA-256 of the raw key, as OpenSSH shows keys."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def sign_manifest(case_dir: str | os.PathLike[str], key: Ed25519PrivateKey) -> Path:
    """Sign the case's manifest; write the signature and the public key; log it. The path of
    the signature is returned."""
    root = Path(case_dir)
    signature = key.sign((root / MANIFEST).read_bytes())
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for name, data in ((PUBLIC_KEY, pem), (SIGNATURE, signature)):
        partial = root / f".{name}.partial"
        partial.write_bytes(data)
        os.replace(partial, root / name)
    log = root / AUDIT_LOG
    if log.exists():
        AuditLog(log).append(
            "manifest.signed",
            key=fingerprint(public),
            signature_sha256=hashlib.sha256(signature).hexdigest(),
        )
    return root / SIGNATURE


@dataclass(frozen=True)
class SignatureCheck:
    """What :func:`check_signature` found. ``problem`` is None when nothing is wrong."""

    signed: bool
    problem: str | None = None
    key: str | None = None  # fingerprint of the key that was checked
    trusted: bool = False  # checked with a key the verifier gave, not the case's own copy


def check_signature(
    case_dir: str | os.PathLike[str], public_key: str | os.PathLike[str] | None = None
) -> SignatureCheck:
    """Check ``manifest.json.sig`` with ``public_key`` (a PEM file) or the case's own copy.

    Given a public key, a case without a signature is a problem: the examiner expected one.
    """
    root = Path(case_dir)
    trusted = public_key is not None
    key = load_public_key(public_key) if public_key is not None else None
    sig_path = root / SIGNATURE
    if not sig_path.is_file():
        problem = f"{SIGNATURE} missing: the manifest is not signed" if trusted else None
        return SignatureCheck(False, problem)
    if key is None:
        if not (root / PUBLIC_KEY).is_file():
            return SignatureCheck(True, f"{PUBLIC_KEY} missing: give --public-key to check")
        try:
            key = _public_key((root / PUBLIC_KEY).read_bytes(), PUBLIC_KEY)
        except ConfigError as exc:
            return SignatureCheck(True, str(exc))
    try:
        key.verify(sig_path.read_bytes(), (root / MANIFEST).read_bytes())
    except InvalidSignature:
        return SignatureCheck(
            True,
            f"{MANIFEST}: the signature does not match (changed after signing, or signed "
            "by another key)",
            fingerprint(key),
            trusted,
        )
    except FileNotFoundError:
        return SignatureCheck(True, f"{MANIFEST} missing", fingerprint(key), trusted)
    return SignatureCheck(True, None, fingerprint(key), trusted)
