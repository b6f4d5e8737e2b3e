"""Plain-text hash lists: bare hashes and HMA-style ``<type> <hash>`` lines.

Every hash here is a digest of generated benign bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats import TEXT, open_list, write_list
from hashwatch.lists.model import CategoryScheme, EntryRecord, ListHeader
from hashwatch.signals.types import HashType


def md5(i: int) -> str:
    return hashlib.md5(f"benign-{i}".encode()).hexdigest()


def sha1(i: int) -> str:
    return hashlib.sha1(f"benign-{i}".encode()).hexdigest()


def sha256(i: int) -> str:
    return hashlib.sha256(f"benign-{i}".encode()).hexdigest()


def pdq(i: int) -> str:
    return hashlib.sha256(f"benign-pdq-{i}".encode()).hexdigest()


def ed2k(i: int) -> str:
    return hashlib.md5(f"benign-ed2k-{i}".encode()).hexdigest()


def test_text_bare_and_typed_lines(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text(
        "# exported for a test\n"
        "\n"
        f"{md5(1).upper()}\n"
        f"  {sha1(2)}  \n"
        "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ\n"
        "urn:sha1:VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5\n"
        f"pdq {pdq(3)}\n"
        f"SHA256 {sha256(4)}\n"
        f"video_md5 {md5(5)}\n"
        f"ed2k {ed2k(6)}\n"
    )
    parsed = open_list(path)
    records = list(parsed.records)
    assert parsed.header.format == TEXT and parsed.header.scheme is CategoryScheme.NONE
    assert [r.hashes[0] for r in records] == [
        (HashType.MD5, md5(1)),
        (HashType.SHA1, sha1(2)),
        (HashType.SHA1_BASE32, "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"),
        (HashType.SHA1_BASE32, "VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"),
        (HashType.PDQ, pdq(3)),
        (HashType.SHA256, sha256(4)),
        (HashType.MD5, md5(5)),
        (HashType.ED2K, ed2k(6)),
    ]
    assert records[0].source == "line 3"


def test_text_bare_64_hex_needs_a_default(tmp_path: Path) -> None:
    path = tmp_path / "l.txt"
    path.write_text(f"{md5(1)}\n{pdq(2)}\n")
    with pytest.raises(ListFormatError, match="SHA-256 or PDQ") as info:
        list(open_list(path, fmt=TEXT).records)
    assert info.value.where == "line 2"
    records = list(open_list(path, default_hash_type=HashType.PDQ).records)
    assert [r.hashes[0][0] for r in records] == [HashType.MD5, HashType.PDQ]
    first = next(open_list(path, default_hash_type=HashType.ED2K).records)
    assert first.hashes[0][0] is HashType.ED2K  # 32 hex fits the default: an ED2K list


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("url https://example.org/", "unknown hash type 'url'"),
        (f"pdq {pdq(1)} extra", "3 words"),
        (f"md5 {sha1(1)}", "32 hex"),
        ("hello", "not a hash"),
    ],
)
def test_text_errors_name_the_line(tmp_path: Path, line: str, fragment: str) -> None:
    path = tmp_path / "l.txt"
    path.write_text(f"{md5(1)}\n# c\n{line}\n")
    with pytest.raises(ListFormatError) as info:
        list(open_list(path, fmt=TEXT).records)
    assert info.value.where == "line 3"
    assert fragment in str(info.value)


def test_text_round_trip(tmp_path: Path) -> None:
    pairs = [
        (HashType.MD5, md5(1)),
        (HashType.SHA1, sha1(1)),
        (HashType.SHA256, sha256(1)),
        (HashType.PDQ, pdq(1)),
        (HashType.ED2K, ed2k(1)),
        (HashType.SHA1_BASE32, "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"),
    ]
    records = [EntryRecord(hashes=(pair,)) for pair in pairs]
    out = tmp_path / "o.txt"
    assert write_list(out, TEXT, ListHeader(format=TEXT), records) == len(records)
    assert out.read_text().splitlines()[0] == f"md5 {md5(1)}"
    back = list(open_list(out).records)
    assert [dataclasses.replace(r, source="") for r in back] == records
