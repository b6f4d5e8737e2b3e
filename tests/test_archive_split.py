"""A large zip is scanned as parts of member ranges that workers share, with the same outcome.

The evidence is generated: zips of benign pictures, text and zeros. Parts must give the
records the whole archive gives (names, nested archives, the archive's own digests), share the
archive's limits so that a bomb split into parts still stops, and resume part by part.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from hashwatch.app import Hashwatch
from hashwatch.scan.archive_split import ArchivePlanner
from hashwatch.scan.archives import ArchiveLimits, expand_evidence
from hashwatch.scan.walk import EvidenceFile, walk_evidence
from tests.media import jpeg_bytes, scene
from tests.scan_helpers import InterruptAtFile
from tests.test_scan import make_lists

SPLIT = 8_000  # bytes: zips above it are split (the setting's default is 1 GiB)


def _sha256(stream: BinaryIO, _display: str, _size: int | None, _mtime: str | None) -> str:
    return hashlib.sha256(stream.read()).hexdigest()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _mixed_zip(path: Path) -> None:
    """Thirty members: random (incompressible) blocks, a directory, a name given twice, a
    nested zip and a nested tar.gz."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as nested:
        nested.writestr("deep/a.txt", b"inside the nested zip\n" * 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("folder/", b"")
            for n in range(24):
                zf.writestr(f"folder/block-{n:02d}.bin", os.urandom(1500 + 40 * n))
            zf.writestr("folder/block-03.bin", b"the same name again")
            zf.writestr("nested/inner.zip", inner.getvalue())
            zf.writestr("nested/pack.tar.gz", _tar_gz({"x/y.txt": b"y" * 3000}))
            zf.writestr("notes.txt", b"shopping list\n")


def _evidence(path: Path) -> EvidenceFile:
    (ef,) = walk_evidence([path])
    return ef


def _rows(ef_list: list[EvidenceFile], limits: ArchiveLimits) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for ef in ef_list:
        for item in expand_evidence(ef, _sha256, limits):
            rows.append((item.display_path, item.size, item.mtime, item.result, item.is_archive))
            rows[-1] += (item.kind, item.error, item.note, item.depth)
    return sorted(rows, key=repr)


def test_parts_of_a_zip_give_what_the_whole_zip_gives(tmp_path: Path) -> None:
    _mixed_zip(tmp_path / "big.zip")
    whole = _evidence(tmp_path / "big.zip")
    limits = ArchiveLimits()
    parts = list(ArchivePlanner(8000, limits=limits).expand([whole]))
    assert len(parts) >= 4
    spans = [ef.archive_part for ef in parts]
    assert all(spans) and [p.head for p in spans if p] == [True] + [False] * (len(parts) - 1)
    bounds = [(p.first, p.last) for p in spans if p]
    assert [b for _, b in bounds[:-1]] == [a for a, _ in bounds[1:]]  # contiguous, in order
    assert bounds[0][0] == 0 and bounds[-1][1] == 29  # every member, once
    assert len({ef.key for ef in parts}) == len(parts)  # one resume key a part
    assert _rows(parts, limits) == _rows([whole], limits)
    # Planned again (a resumed scan): the same parts, the same keys.
    again = list(ArchivePlanner(8000, limits=limits).expand([_evidence(tmp_path / "big.zip")]))
    assert [ef.key for ef in again] == [ef.key for ef in parts]
    # At or below the threshold, and never with 0: the zip is one unit, as before.
    assert list(ArchivePlanner(whole.size, limits=limits).expand([whole])) == [whole]
    assert list(ArchivePlanner(0, limits=limits).expand([whole])) == [whole]


def test_a_bomb_split_into_parts_still_stops_within_the_archive_s_limit(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(40):
            zf.writestr(f"zeros-{n:02d}.bin", bytes(200_000))  # 8 MB from a few KB
    limit = 1 << 20
    limits = ArchiveLimits(max_total_bytes=limit, max_total_factor=1, max_ratio=1e9)
    taken = []

    def count(stream: BinaryIO, _display: str, _size: int | None, _mtime: str | None) -> None:
        while block := stream.read(65536):
            taken.append(len(block))

    whole = _evidence(tmp_path / "bomb.zip")
    parts = list(ArchivePlanner(1000, limits=limits).expand([whole]))
    assert len(parts) >= 8
    shares = [ef.archive_part.budget for ef in parts if ef.archive_part]
    assert sum(shares) <= limit
    items = [item for ef in parts for item in expand_evidence(ef, count, limits)]
    members = sum(taken) - whole.size  # the head part also reads the file itself
    assert 0 < members <= limit
    stopped = [i for i in items if i.error and i.error.startswith("zip bomb: more than")]
    assert len(stopped) >= len(parts) - 1  # every part spends its share and stops
    assert all("their share of the 1 MiB the file may give" in i.error for i in stopped if i.error)
    read = [i for i in items if i.error is None and not i.is_archive]
    assert len(read) < 8  # 1 MiB holds five members of 200 KB in all


def test_members_past_the_archive_s_limit_are_in_no_part(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as zf:
        for n in range(25):
            zf.writestr(f"m-{n:02d}.bin", os.urandom(300))
    limits = ArchiveLimits(max_members=10)
    whole = _evidence(tmp_path / "many.zip")
    parts = list(ArchivePlanner(1000, limits=limits).expand([whole]))
    assert len(parts) >= 3
    items = [item for ef in parts for item in expand_evidence(ef, _sha256, limits)]
    assert sorted(i.display_path.rsplit("/", 1)[-1] for i in items if i.depth == 1) == [
        f"m-{n:02d}.bin" for n in range(10)
    ]
    assert [i.error for i in items if i.error] == ["too many members: more than 10"]


def album(root: Path) -> None:
    """Seized-device stand-in: a loose picture and a zip of pictures (a known one, two
    near-duplicates), text, and a tar.gz holding a new picture."""
    root.mkdir(parents=True)
    (root / "loose.jpg").write_bytes(jpeg_bytes(scene(40, (160, 120))))
    with zipfile.ZipFile(root / "album.zip", "w") as zf:
        zf.writestr("copy-of-known.jpg", jpeg_bytes(scene(0)))
        zf.writestr("holiday/a.jpg", jpeg_bytes(scene(60, (320, 240))))
        zf.writestr("holiday/a-small.jpg", jpeg_bytes(scene(60, (160, 120)), 70))
        for n in range(6):
            zf.writestr(f"holiday/other-{n}.jpg", jpeg_bytes(scene(70 + n, (96, 72))))
        zf.writestr("pack.tar.gz", _tar_gz({"deep/new.jpg": jpeg_bytes(scene(50, (96, 72)))}))
        zf.writestr("notes.txt", b"shopping list\n")


def _lines(case: Path) -> set[str]:
    lines = (case / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines))
    return set(lines)


def _split_app(hw: Hashwatch, split: int) -> Hashwatch:
    return Hashwatch(replace(hw.settings, archive_split_bytes=split))


def test_a_scan_of_a_split_zip_gives_the_unsplit_scan_s_outputs(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    make_lists(sqlite_hw, tmp_path / "lists")
    album(tmp_path / "seized")
    planned = ArchivePlanner(SPLIT).expand(walk_evidence([tmp_path / "seized"]))
    assert sum(ef.archive_part is not None for ef in planned) >= 3
    whole = _split_app(sqlite_hw, 0).scan([tmp_path / "seized"], tmp_path / "whole", workers=1)
    split_app = _split_app(sqlite_hw, SPLIT)
    split = split_app.scan([tmp_path / "seized"], tmp_path / "split", workers=1, unit_files=1)
    split_app.close()
    assert _lines(tmp_path / "split") == _lines(tmp_path / "whole")
    results = [json.loads(line) for line in _lines(tmp_path / "split")]
    status = {r["path"].rsplit("/", 1)[-1]: r["status"] for r in results}
    assert status["copy-of-known.jpg"] == "known" and status["new.jpg"] == "new"
    assert status["album.zip"] == "other" and len(results) == 14
    for name in ("clusters.jsonl", "thumbnails.jsonl"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    split_m, whole_m = (
        json.loads((tmp_path / c / "manifest.json").read_text()) for c in ("split", "whole")
    )
    assert split_m["evidence"] == whole_m["evidence"]
    assert split.summary.by_status == whole.summary.by_status
    assert split.summary.new_clusters == whole.summary.new_clusters >= 1


def test_a_scan_stopped_inside_a_split_zip_resumes_with_every_member_once(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    album(tmp_path / "seized")
    (tmp_path / "seized" / "loose.jpg").unlink()
    planned = ArchivePlanner(SPLIT).expand(walk_evidence([tmp_path / "seized"]))
    assert sum(ef.archive_part is not None for ef in planned) >= 4
    app = _split_app(sqlite_hw, SPLIT)
    with pytest.raises(KeyboardInterrupt):  # one worker: two parts stored, the rest not
        app.scan(
            [tmp_path / "seized"],
            tmp_path / "case",
            workers=1,
            unit_files=1,
            progress=InterruptAtFile(3),
        )
    with sqlite3.connect(tmp_path / "case" / "scan-state.sqlite3") as conn:
        done = conn.execute("SELECT count(*) FROM done").fetchone()[0]
    assert done == 2
    # Resumed with another threshold given: the scan splits as it began.
    _split_app(sqlite_hw, 0).scan([tmp_path / "seized"], tmp_path / "case", resume=True)
    app.close()
    paths = [json.loads(line)["path"] for line in _lines(tmp_path / "case")]
    assert len(paths) == len(set(paths)) == 13  # the zip, its 11 members, the tar's picture
