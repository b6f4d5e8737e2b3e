"""Shareaza's library (Library1.dat, Library2.dat, Library.dat): every file of the shared
folders with its hashes, read from files built by ``tests/p2p_shareaza_builders.py`` as
Shareaza's source writes them, for the library versions whose fields differ."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from hashwatch.scan.p2p.record import P2PReadProblem, P2PRecord
from hashwatch.scan.p2p.registry import reader_for
from hashwatch.scan.p2p.shareaza import ShareazaLibraryReader
from hashwatch.scan.walk import walk_evidence
from hashwatch.scan.worker import WorkerOptions, process_unit
from tests import p2p_shareaza_builders as b

READER = ShareazaLibraryReader()


def _read(data: bytes) -> list[P2PRecord | P2PReadProblem]:
    return list(READER.read(io.BytesIO(data), len(data)))


def _records(found: list[P2PRecord | P2PReadProblem]) -> list[P2PRecord]:
    return [r for r in found if isinstance(r, P2PRecord)]


def test_a_library_yields_every_file_with_its_hashes_folder_and_counts() -> None:
    found = _read(b.sample_library())
    records = _records(found)
    assert len(records) == len(found) == 3
    # Sub-folders are written before a folder's own files.
    assert [r.name for r in records] == ["holiday-002.jpg", "holiday-000.jpg", "holiday-001.jpg"]
    inner, first, second = records
    assert inner.save_path == r"C:\Users\owner\Downloads\Shareaza\Collection"
    assert first.save_path == r"C:\Users\owner\Downloads\Shareaza"
    made = b.benign_file(0)
    assert first.size == made.size and first.complete is True
    assert made.sha1 and made.tiger and made.md5 and made.ed2k
    assert first.hashes == {
        "sha1_base32": base64.b32encode(made.sha1).decode(),
        "tth": base64.b32encode(made.tiger).decode().rstrip("="),
        "md5": made.md5.hex(),
        "ed2k": made.ed2k.hex(),
    }
    assert second.hashes["btih"] == (b.benign_file(1).bth or b"").hex()
    assert first.dates == {"file_modified": "2020-09-13T12:26:40Z"}
    assert first.details["schema"].endswith("image.xsd")
    assert first.details["metadata"] == {"width": "640", "height": "480"}
    assert first.details["library_saved"] == "2023-11-14T22:13:20Z"
    assert second.details["rating"] == 3 and second.details["comments"] == "family trip"
    assert (second.details["hits_total"], second.details["uploads_total"]) == (5, 1)
    assert inner.details["sources"] == [
        {"url": "http://192.0.2.2:6346/uri-res/N2R?x", "last_seen": "2022-04-15T05:20:00Z"}
    ]


@pytest.mark.parametrize(
    ("version", "names"),
    [
        (28, {"sha1_base32", "tth", "md5", "ed2k", "btih"}),
        (26, {"sha1_base32", "tth", "md5", "ed2k", "btih"}),
        (21, {"sha1_base32", "tth", "md5", "ed2k"}),  # no BitTorrent hash before 26
        (13, {"sha1_base32", "tth", "md5", "ed2k"}),
        (8, {"sha1_base32", "tth"}),  # no MD5 or ED2K before 11
        (4, {"sha1_base32"}),  # no Tiger tree before 8
    ],
)
def test_older_versions_read_their_own_fields(version: int, names: set[str]) -> None:
    data = b.sample_library(version)
    assert isinstance(reader_for("Library2.dat", data), ShareazaLibraryReader)
    records = _records(_read(data))
    assert len(records) == 3
    assert set().union(*(r.hashes for r in records)) == names
    assert records[1].details["metadata"] == {"width": "640", "height": "480"}
    assert records[0].details.get("hits_total") == 10


def test_the_old_single_library_dat_and_ansi_strings() -> None:
    folder = b.ShareazaFolder("D:\\Partage", [b.benign_file(0)])
    data = b.library([folder], saved=None)
    assert isinstance(reader_for("Library.dat", data), ShareazaLibraryReader)
    assert [r.save_path for r in _records(_read(data))] == ["D:\\Partage"]
    ansi = b.cstring("Caf\u00e9.jpg", wide=False)
    head = b.library([b.ShareazaFolder("C:\\x", [b.benign_file(4)])], version=29)
    data = head.replace(b.cstring("holiday-004.jpg"), ansi)
    assert [r.name for r in _records(_read(data))] == ["Caf\u00e9.jpg"]


def test_other_programs_library_dat_is_not_taken_for_shareaza_s() -> None:
    game_save = b"\x05\x00\x00\x00" + bytes(range(200))  # starts like a version 5
    assert reader_for("library.dat", game_save) is None
    empty = b.library([], version=29)  # no shared folder: nothing to read
    assert reader_for("Library1.dat", empty) is None
    unc = b.library([b.ShareazaFolder("\\\\nas\\share", [b.benign_file(0)])], saved=None)
    assert isinstance(reader_for("Library.dat", unc), ShareazaLibraryReader)


def test_truncated_library_keeps_the_files_before_the_cut() -> None:
    data = b.sample_library()
    cut = data[: len(data) - 16 - 60]  # inside the last file
    found = _read(cut)
    assert [r.index for r in _records(found)] == [0, 1]
    problem = found[-1]
    assert isinstance(problem, P2PReadProblem) and problem.index == 2
    assert "file record 2" in problem.message and "ends" in problem.message


def test_counts_the_artifact_cannot_hold_are_refused_plainly() -> None:
    folder = b.ShareazaFolder("C:\\x", [b.benign_file(0)])
    data = b.library([folder], folder_count=70_000)
    found = _read(data)
    assert _records(found) == []
    problem = found[0]
    assert isinstance(problem, P2PReadProblem) and "70,000 folders" in problem.message
    newer = b.library([folder], version=30)  # a later version is said to be unread
    assert isinstance(reader_for("Library2.dat", newer), ShareazaLibraryReader)
    assert "version 30 is not one read" in str(_read(newer)[0])


def test_a_scan_worker_makes_each_library_file_an_item_matched_by_its_hashes(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "ev" / "Shareaza" / "Data"
    data_dir.mkdir(parents=True)
    (data_dir / "Library2.dat").write_bytes(b.sample_library())
    result = process_unit(WorkerOptions(), list(walk_evidence([str(tmp_path / "ev")])))
    by_path = {r.path: (r, q) for r, q in zip(result.records, result.queries, strict=True)}
    artifact = str(data_dir / "Library2.dat")
    assert "(shareaza library.dat): 3 records" in (by_path[artifact][0].note or "")
    item, query = by_path[f"{artifact}!/#1"]
    made = b.benign_file(0)
    assert made.sha1 and made.ed2k and made.md5
    assert (item.sha1, item.ed2k, item.md5) == (made.sha1.hex(), made.ed2k.hex(), made.md5.hex())
    assert {s.hash_type.value for s in query.signals} >= {"sha1_base32", "sha1", "ed2k", "md5"}
    assert item.p2p is not None and item.p2p["client"] == "shareaza"
    assert item.p2p["unmatchable"] is None and item.p2p["hashes"]["tth"]
