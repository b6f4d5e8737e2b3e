"""Signed checkpoints: what a subscriber accepts, and every way a forged one is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hashwatch.errors import ConfigError, ExchangeError, FeedVerificationError
from hashwatch.exchange.checkpoint import (
    Checkpoint,
    VerifierKey,
    generate_signing_key,
    load_signing_key,
)
from hashwatch.exchange.merkle import leaf_hash

ORIGIN = "agency.example.org/feeds/known"


def test_a_signed_checkpoint_verifies_with_the_published_key(tmp_path: Path) -> None:
    key = generate_signing_key(tmp_path / "feed.pem", "agency.example.org")
    assert (tmp_path / "feed.pem").stat().st_mode & 0o777 == 0o600
    verifier = VerifierKey.parse(str(key.verifier))
    note = Checkpoint(ORIGIN, 42, leaf_hash(b"x")).sign(key)
    assert note.splitlines()[:3] == [ORIGIN, "42", note.splitlines()[2]]
    assert Checkpoint.verify(note, verifier, ORIGIN) == Checkpoint(ORIGIN, 42, leaf_hash(b"x"))
    reloaded = load_signing_key(tmp_path / "feed.pem", "agency.example.org")
    assert str(reloaded.verifier) == str(key.verifier)


def test_forged_or_altered_checkpoints_are_refused(tmp_path: Path) -> None:
    key = generate_signing_key(tmp_path / "a.pem", "agency.example.org")
    other = generate_signing_key(tmp_path / "b.pem", "agency.example.org")
    verifier = key.verifier
    note = Checkpoint(ORIGIN, 42, leaf_hash(b"x")).sign(key)
    with pytest.raises(FeedVerificationError, match="not signed"):
        Checkpoint.verify(note.replace("\n42\n", "\n43\n"), verifier)
    with pytest.raises(FeedVerificationError, match="not signed"):
        Checkpoint.verify(Checkpoint(ORIGIN, 42, leaf_hash(b"x")).sign(other), verifier)
    with pytest.raises(FeedVerificationError, match="not of"):
        Checkpoint.verify(note, verifier, "agency.example.org/feeds/other")
    with pytest.raises(FeedVerificationError, match="no signature"):
        Checkpoint.verify(note.split("\n\n")[0], verifier)


def test_a_signing_key_others_can_read_is_refused(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "k.pem", "agency.example.org")
    os.chmod(tmp_path / "k.pem", 0o644)
    with pytest.raises(ExchangeError, match="chmod 600"):
        load_signing_key(tmp_path / "k.pem", "agency.example.org")
    with pytest.raises(ConfigError, match="never overwritten"):
        generate_signing_key(tmp_path / "k.pem", "agency.example.org")


def test_a_malformed_peer_key_says_what_is_wrong(tmp_path: Path) -> None:
    key = generate_signing_key(tmp_path / "k.pem", "agency.example.org").verifier
    text = str(key)
    with pytest.raises(ConfigError, match="NAME\\+KEYID\\+BASE64"):
        VerifierKey.parse("nonsense")
    with pytest.raises(ConfigError, match="does not match"):
        VerifierKey.parse(text.replace("agency.example.org", "other.example.org", 1))


def test_every_key_round_trips_even_when_its_base64_holds_a_plus(tmp_path: Path) -> None:
    for n in range(64):  # about one public key in six encodes with a '+'
        key = generate_signing_key(tmp_path / f"{n}.pem", "agency.example.org").verifier
        assert VerifierKey.parse(str(key)) == key
