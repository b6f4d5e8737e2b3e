"""The scan's main process writes its outputs with less work per item (brief 15G), and an
examiner gets the very same bytes: thumbnails.jsonl put together around each JPEG's base64,
clusters.jsonl written from the text the state stored, the VICS case's Media encoded by one
encoder, digests a scan made taken as they are, and the evidence planned once for a tree of
up to PLANNED_KEPT files (walked again above it)."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path

import pytest

from hashwatch import triage
from hashwatch.app import Hashwatch
from hashwatch.errors import InvalidHashError, ListFormatError
from hashwatch.lists.formats import vics
from hashwatch.report import vics_case
from hashwatch.report.review_data import (
    write_cluster_lines,
    write_clusters,
    write_thumbnails,
)
from hashwatch.scan.cluster import MediaColumns, cluster_columns
from hashwatch.scan.model import ItemRecord, ItemStatus
from hashwatch.scan.state import ScanState
from hashwatch.signals.types import HashType, normalize_hash
from tests.media import jpeg_bytes, scene

# Paths an evidence tree can hold: accents, quotes, backslashes, controls, emoji, CJK.
NAMES = ["plain.jpg", "café ünï.jpg", 'say "cheese".jpg', "back\\slash.jpg", "tab\there.jpg",
         "line\nbreak.jpg", "bell\x07.jpg", "emoji 📷.jpg", "写真.jpg", "del\x7f.jpg"]  # fmt: skip


def _records() -> list[ItemRecord]:
    out = []
    for n, name in enumerate(NAMES * 3):
        pdq = f"{(n // 3) * 0x1F3D5B79:064x}"  # every three in a row: one picture
        out.append(
            ItemRecord(
                path=f"/evidence/d{n % 4}/{n:02d} {name}",
                root="/evidence",
                md5=f"{n:032x}",
                media_type="image",
                pdq=pdq,
                pdq_quality=90,
                pdq_dihedral=[pdq],
                status=ItemStatus.NEW,
                thumbnail=bytes(range(n, 256)) * (n + 1) if n % 5 else None,
                exif={"make": "Generated", "serial": f"S{n % 2}"} if n % 3 == 0 else None,
            )
        )
    return out


def test_thumbnail_lines_are_what_json_dumps_writes(tmp_path: Path) -> None:
    records = _records()
    write_thumbnails(tmp_path / "thumbnails.jsonl", records)
    expected = "".join(
        json.dumps(
            {"root": r.root, "path": r.path, "jpeg": base64.b64encode(r.thumbnail).decode()},
            ensure_ascii=False,
        )
        + "\n"
        for r in records
        if r.thumbnail
    )
    assert (tmp_path / "thumbnails.jsonl").read_text(encoding="utf-8") == expected
    assert expected.count("\n") == len([r for r in records if r.thumbnail]) > 20


def test_clusters_written_from_the_state_text_are_those_written_from_clusters(
    tmp_path: Path,
) -> None:
    state = ScanState(tmp_path)
    records = _records()
    state.save_unit([r.path for r in records], records)
    media = MediaColumns(state.new_media())
    numbers, clusters = cluster_columns(media, threshold=31)
    state.set_clusters(media.keys, numbers)
    state.set_cluster_list(clusters)
    write_clusters(tmp_path / "from-clusters.jsonl", clusters)
    write_cluster_lines(tmp_path / "from-state.jsonl", state.cluster_texts())
    text = (tmp_path / "from-state.jsonl").read_bytes()
    assert text == (tmp_path / "from-clusters.jsonl").read_bytes()
    assert len(clusters) < len(records) and text.count(b"\n") == len(clusters)
    state.close()


def test_vics_media_text_is_json_dumps_and_digests_are_taken_as_normalised(
    tmp_path: Path,
) -> None:
    for n, record in enumerate(_records()):
        entry = vics_case._entry(vics_case._Media(record, []), record.md5 or "", None)
        media = vics.record_to_media(entry, n + 1)
        media["Comments"] = record.path  # a text with every kind of character
        expected = json.dumps(media, ensure_ascii=False, separators=(",", ":")).encode()
        assert vics._dumps(media, "record") == expected
    with pytest.raises(ListFormatError):
        vics._dumps({"x": {1, 2}}, "record")  # not JSON: the writer's error, as before
    spellings = ["ab" * 16, "AB" * 16, " " + "ab" * 16, "ab" * 15, "ab" * 17, "zz" * 16, ""]
    for hash_type in (HashType.MD5, HashType.SHA1, HashType.SHA256, HashType.PDQ):
        for value in [*spellings, "0f" * 20, "0f" * 32, "0F" * 32 + "\n"]:
            try:
                expected_value: str | type[InvalidHashError] = normalize_hash(hash_type, value)
            except InvalidHashError:
                expected_value = InvalidHashError
            try:
                got: str | type[InvalidHashError] = vics_case._canonical(hash_type, value)
            except InvalidHashError:
                got = InvalidHashError
            assert got == expected_value, (hash_type, value)


def _evidence(root: Path) -> None:
    for d in range(3):
        (root / f"d{d}").mkdir(parents=True)
        for n in range(4):
            data = jpeg_bytes(scene(900 + 4 * d + n, (96, 72)), 80)
            (root / f"d{d}" / f"img-{n}.jpg").write_bytes(data)
    with zipfile.ZipFile(root / "d1" / "album.zip", "w") as zf:
        zf.writestr("album/a.jpg", jpeg_bytes(scene(990, (96, 72)), 80))
        zf.writestr("album/notes.txt", b"generated notes")
    (root / "d2" / "notes.txt").write_text("generated text")


class _Totals:
    def __init__(self) -> None:
        self.started: tuple[int, int] | None = None

    def start(self, files: int, total_bytes: int) -> None:
        self.started = (files, total_bytes)

    def advance(self, files: int, nbytes: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass


def test_a_tree_above_the_kept_files_is_walked_again_to_the_same_results(
    sqlite_hw: Hashwatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evidence = tmp_path / "seized"
    _evidence(evidence)
    kept, walked = _Totals(), _Totals()
    sqlite_hw.scan([evidence], tmp_path / "kept", workers=1, unit_files=5, progress=kept)
    monkeypatch.setattr(triage, "PLANNED_KEPT", 3)
    sqlite_hw.scan([evidence], tmp_path / "walked", workers=1, unit_files=5, progress=walked)
    assert kept.started == walked.started and kept.started is not None
    assert kept.started[0] == 14
    results = (tmp_path / "kept" / "results.jsonl").read_bytes()
    assert results == (tmp_path / "walked" / "results.jsonl").read_bytes()
    assert results.count(b"\n") == 16  # 14 files, the zip's 2 members


def test_the_report_reads_each_record_whole_but_for_its_dihedral_hashes(tmp_path: Path) -> None:
    state = ScanState(tmp_path)
    records = _records()
    state.save_unit([r.path for r in records], records)
    whole = list(state.records(thumbnails=True))
    slim = list(state.records(thumbnails=True, dihedral=False))
    given = {r.path: r.pdq_dihedral for r in records}
    assert {r.path: r.pdq_dihedral for r in whole} == given and len(whole) == len(records)
    assert all(r.pdq_dihedral is None for r in slim)
    for a, b in zip(whole, slim, strict=True):
        a.pdq_dihedral = None
        assert a == b
    state.close()
