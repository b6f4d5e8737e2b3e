"""Byte digests: the published vectors, one read, large files, evidence left untouched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hashwatch.signals.digests import ED2K_CHUNK_SIZE, digest_bytes, digest_file

# Vectors from shared/research/FORMATS.md (eMule blue/red, Gnutella Base32 SHA-1).
ED2K_VECTORS = [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0", None),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d", None),
    (bytes(9_728_000), "d7def262a127cd79096a108e7a9fc138", "fc21d9af828f92a8df64beac3357425d"),
    (bytes(19_456_000), "194ee9e4fa79b2ee9f8829284c466051", "114b21c63a74b6ca922291a11177dd5c"),
]


@pytest.mark.parametrize(
    ("data", "blue", "red"), ED2K_VECTORS, ids=["empty", "abc", "1chunk", "2chunks"]
)
def test_ed2k_vectors_blue_and_red(data: bytes, blue: str, red: str | None) -> None:
    d = digest_bytes(data)
    assert d.ed2k == blue
    assert d.ed2k_red == red


def test_gnutella_vectors() -> None:
    assert digest_bytes(b"").sha1_base32 == "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"
    assert digest_bytes(b"abc").sha1_base32 == "VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"


def test_ed2k_just_over_one_chunk_hashes_the_chunk_list() -> None:
    from Crypto.Hash import MD4

    data = bytes(range(256)) * (ED2K_CHUNK_SIZE // 256) + b"tail"
    chunk = MD4.new(data[:ED2K_CHUNK_SIZE]).digest()
    tail = MD4.new(data[ED2K_CHUNK_SIZE:]).digest()
    d = digest_bytes(data)
    assert d.ed2k == MD4.new(chunk + tail).hexdigest()
    assert d.ed2k_red is None


def test_file_digests_equal_hashlib_from_one_read(tmp_path: Path) -> None:
    """A 40 MB file (threaded path) gives the same digests as hashlib over the whole bytes."""
    data = os.urandom(40 * 1024 * 1024 + 123)
    path = tmp_path / "benign.bin"
    path.write_bytes(data)
    digests, kept = digest_file(path)
    assert kept is None
    assert digests.size == len(data)
    assert digests.md5 == hashlib.md5(data).hexdigest()
    assert digests.sha1 == hashlib.sha1(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests == digest_bytes(data)


def test_reading_changes_neither_bytes_nor_times(tmp_path: Path) -> None:
    path = tmp_path / "evidence.bin"
    path.write_bytes(b"benign evidence stand-in" * 1000)
    os.utime(
        path, (1_000_000_000, 1_100_000_000)
    )  # atime long before mtime: relatime would bump it
    before = path.stat()
    digest_file(path)
    after = path.stat()
    assert (after.st_mtime_ns, after.st_atime_ns, after.st_size) == (
        before.st_mtime_ns,
        before.st_atime_ns,
        before.st_size,
    )
