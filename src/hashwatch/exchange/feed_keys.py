"""The publisher's signing key on disk: a PEM file only its owner may read, and beside it
``PATH.pub`` with the verifier key text that peers pin (``hashwatch exchange key``).

The key's name (the signer named in every checkpoint, and the default prefix of a feed's
origin) lives in the ``.pub`` file, so one path is all a command or ``serve`` needs. Loading
checks that the two files belong together: a ``.pub`` left from another key would hand peers
a key that verifies nothing this publisher signs.
"""

from __future__ import annotations

import os
from pathlib import Path

from hashwatch.errors import ConfigError, ExchangeError
from hashwatch.exchange.checkpoint import (
    SigningKey,
    VerifierKey,
    generate_signing_key,
    load_signing_key,
)

__all__ = [
    "SIGNING_KEY_ENV",
    "create_publisher_key",
    "default_key_path",
    "load_publisher_key",
    "public_path",
]

SIGNING_KEY_ENV = "HASHWATCH_SIGNING_KEY"  # where ``serve`` finds the key (else the default)


def default_key_path(data_dir: Path) -> Path:
    return data_dir / "exchange" / "signing-key.pem"


def public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def create_publisher_key(path: Path, name: str) -> SigningKey:
    """A new Ed25519 signing key at ``path`` (0600; an existing file is never overwritten)
    named ``name`` (e.g. ``agency.example.org``), with its verifier key in ``PATH.pub``."""
    pub = public_path(path)
    if pub.exists():
        raise ConfigError(f"{pub} exists already: a signing key is never overwritten")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent}: {exc.strerror}") from None
    key = generate_signing_key(path, name)
    try:
        pub.write_text(f"{key.verifier}\n", encoding="utf-8")
    except OSError as exc:
        os.unlink(path)  # a key nobody can hand to peers is worse than none
        raise ConfigError(f"cannot write {pub}: {exc.strerror}") from None
    return key


def load_publisher_key(path: Path) -> SigningKey:
    """The signing key at ``path`` under the name in ``PATH.pub``; :class:`ExchangeError`
    when either file is missing, the key file is readable by others, or they do not match."""
    pub = public_path(path)
    if not path.exists():
        raise ExchangeError(
            f"no signing key at {path}: create one with `hashwatch exchange keygen --name ORG`"
        )
    try:
        text = pub.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExchangeError(
            f"cannot read {pub} (the key's name and public key): {exc.strerror}"
        ) from None
    try:
        verifier = VerifierKey.parse(text)
    except ConfigError as exc:
        raise ExchangeError(f"{pub} does not hold a verifier key: {exc}") from None
    key = load_signing_key(path, verifier.name)
    if key.verifier != verifier:
        raise ExchangeError(
            f"{pub} is not the public key of {path}: the files do not belong together"
        )
    return key
