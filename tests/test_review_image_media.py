"""A reviewer's full-size view of what a scan found inside disk images: a file, a deleted
file, a carved picture and a picture in a zip inside the image are read back from the image
in place, read-only, through the scan's own image reader; an image that is gone, incomplete
or changed gives "not available" and why. The images are the generated benign fixtures of
tests/data/images/ (see its README); ``expected.json`` holds the SHA-256 of what they hold.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from PIL import Image

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.review.cases import CaseItem
from hashwatch.review.media import read_evidence_item
from hashwatch.scan.image_lookup import read_image_item
from hashwatch.store.service import KeyStore, Role
from hashwatch.store.users import UserRole, UserStore
from hashwatch.web.app import create_app
from tests.serve_helpers import bearer, settings

DATA = Path(__file__).parent / "data" / "images"
EXPECTED: dict[str, Any] = json.loads((DATA / "expected.json").read_text())
OLD = 1_000_000_000
# What a reviewer opens: (image, path inside it) -> what it is.
SHOWN = {
    ("disk.E01", "p2(ext4)/photos/a.jpg"): "files",
    ("disk.E01", "p3(NTFS)/a.jpg"): "files",
    ("disk.E01", "p1(FAT16)/DCIM/IMG_0002.PNG"): "files",
    ("disk.E01", "p2(ext4)/archive.zip!/inner/photo.jpg"): "files",
    ("disk.E01", "p1(FAT16)/_LD.JPG"): "deleted",
    ("disk.E01", "p2(ext4)/gone.jpg"): "deleted",
    ("disk.E01", "$Unallocated/offset-16252928.png"): "carved",
    ("disk.E01", "p1(FAT16)/$Unallocated/offset-6225920.jpg"): "carved",
    ("disk.E01", "p2(ext4)/$Unallocated/offset-11468800.gif"): "carved",
    ("usb.E01", "fs(FAT12)/PICS/CAT.JPG"): "files",
    ("usb.E01", "fs(FAT12)/_RASH.PNG"): "deleted",
    ("usb.E01", "fs(FAT12)/$Unallocated/offset-1425408.jpg"): "carved",
    ("gpt.dd", "p1(ext4)/home/user/pic.jpg"): "files",
}


def _sha(image: str, inside: str, kind: str) -> str:
    key = image.split(".", 1)[0]
    return str(EXPECTED["gpt" if key == "gpt" else key][kind][inside])


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(evidence, case directory): the split E01, the floppy E01 and a raw GPT disk, scanned
    with carving."""
    tmp = tmp_path_factory.mktemp("images")
    evidence = tmp / "seized"
    evidence.mkdir()
    for name in ("disk.E01", "disk.E02", "usb.E01"):
        shutil.copyfile(DATA / name, evidence / name)
    (evidence / "gpt.dd").write_bytes(gzip.decompress((DATA / "gpt.raw.gz").read_bytes()))
    app = Hashwatch(Settings(database_url=f"sqlite:///{tmp / 'scan.sqlite3'}", data_dir=tmp))
    try:
        app.scan([evidence], tmp / "case", workers=1, carve=True)
    finally:
        app.close()
    yield evidence, tmp / "case"


def _items(hw: Hashwatch, case_dir: Path) -> tuple[str, dict[str, CaseItem]]:
    done = hw.cases.import_case(case_dir, actor="examiner")
    items = hw.cases.items(done.case.case_uid)
    return done.case.case_uid, {i.path: i for i in items}


def _item(evidence: Path, items: dict[str, CaseItem], image: str, inside: str) -> CaseItem:
    return items[f"{evidence}/{image}!/{inside}"]


def _freeze(evidence: Path) -> dict[Path, tuple[str, int, int]]:
    """Each image's digest, mtime and atime, with atime set before mtime (a read would move
    it, even under relatime)."""
    state = {}
    for n, path in enumerate(sorted(evidence.iterdir())):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        os.utime(path, ns=(OLD * 10**9, (OLD + 1000 + n) * 10**9))
        st = path.stat()
        state[path] = (digest, st.st_mtime_ns, st.st_atime_ns)
    return state


def _state(paths: Any) -> dict[Path, tuple[str, int, int]]:
    out = {}
    for path in paths:
        st = path.stat()  # before reading the bytes (which may move atime)
        times = (st.st_mtime_ns, st.st_atime_ns)
        out[path] = (hashlib.sha256(path.read_bytes()).hexdigest(), *times)
    return out


def test_files_deleted_files_carved_pictures_and_members_are_read_from_the_image(
    hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    evidence, case_dir = scanned
    _, items = _items(hw, case_dir)
    before = _freeze(evidence)
    for (image, inside), kind in SHOWN.items():
        item = _item(evidence, items, image, inside)
        read = hw.cases.media(item.id)
        assert read.available, (inside, read.reason)
        assert read.data is not None
        assert hashlib.sha256(read.data).hexdigest() == _sha(image, inside, kind), inside
    carved = _item(evidence, items, "disk.E01", "$Unallocated/offset-16252928.png")
    read = hw.cases.media(carved.id)
    assert (
        read.data is not None and read.data.startswith(b"\x89PNG") and carved.size == len(read.data)
    )  # the carver's own length, not the rest of the free space
    assert _state(before) == before  # bytes, mtime and atime of every image as they were
    assert sorted(p.name for p in evidence.iterdir()) == [
        "disk.E01",
        "disk.E02",
        "gpt.dd",
        "usb.E01",
    ]  # nothing written beside the images


def test_a_gone_incomplete_or_changed_image_is_not_available(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    evidence, case_dir = scanned
    _, items = _items(sqlite_hw, case_dir)
    photo = _item(evidence, items, "disk.E01", "p2(ext4)/photos/a.jpg")
    carved = _item(evidence, items, "disk.E01", "$Unallocated/offset-16252928.png")
    aside = evidence.parent / "aside"
    aside.mkdir(exist_ok=True)

    shutil.move(evidence / "disk.E01", aside / "disk.E01")
    try:
        for item in (photo, carved):
            gone = sqlite_hw.cases.media(item.id)
            assert not gone.available and gone.data is None
            assert gone.reason == (
                "not available: the evidence file is not reachable at its recorded path"
            )
    finally:
        shutil.move(aside / "disk.E01", evidence / "disk.E01")

    shutil.move(evidence / "disk.E02", aside / "disk.E02")
    try:
        cut = sqlite_hw.cases.media(photo.id)
        assert not cut.available and cut.reason
        assert cut.reason.startswith("not available: the E01 image cannot be read to its end")
        assert "missing segment file" in cut.reason
    finally:
        shutil.move(aside / "disk.E02", evidence / "disk.E02")
    assert sqlite_hw.cases.media(photo.id).available  # back where the scan found it

    raw = evidence / "gpt.dd"
    pic = _item(evidence, items, "gpt.dd", "p1(ext4)/home/user/pic.jpg")
    original = raw.read_bytes()
    held = sqlite_hw.cases.media(pic.id).data
    assert held is not None and original.count(held) == 1
    at = original.index(held) + len(held) // 2
    try:
        raw.write_bytes(original[:at] + bytes([original[at] ^ 0xFF]) + original[at + 1 :])
        changed = sqlite_hw.cases.media(pic.id)
        assert not changed.available
        assert changed.reason == (
            "not available: the evidence changed since the scan (SHA-256 differs)"
        )
        # A carved item that is no longer there: the same offset in another image.
        usb = _item(evidence, items, "usb.E01", "fs(FAT12)/$Unallocated/offset-1425408.jpg")
        offset = int(usb.path.rsplit("offset-", 1)[1].split(".")[0])
        image = str(evidence / "gpt.dd")
        elsewhere = read_image_item(image, f"{image}!/$Unallocated/offset-{offset}.jpg", 1 << 20)
        assert elsewhere is not None and elsewhere.data is None
        assert elsewhere.reason == f"nothing is carved at byte {offset} of the media now"
    finally:
        raw.write_bytes(original)
    assert sqlite_hw.cases.media(pic.id).available


def test_a_file_that_is_not_an_image_is_still_read_as_an_archive(tmp_path: Path) -> None:
    """Bytes that look like a boot sector are not a disk image unless The Sleuth Kit reads
    one there: a zip whose bytes 510-511 happen to be 55 AA is still read as a zip."""
    import zipfile

    member = b"\x00" * 400 + b"\x55\xaa" * 600
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a/" + "x" * (510 - 30 - 2 - 400), member)  # 55 AA lands at 510
    data = path.read_bytes()
    assert data[510:512] == b"\x55\xaa"
    name = zipfile.ZipFile(path).namelist()[0]
    shown = f"{path}!/{name}"
    assert read_image_item(str(path), shown, 1 << 20) is None
    read = read_evidence_item(shown, hashlib.sha256(member).hexdigest())
    assert read.available and read.data == member


def _pixels(data: bytes) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_the_media_endpoint_shows_a_carved_picture_and_says_why_one_is_not_available(
    sqlite_hw: Hashwatch, scanned: tuple[Path, Path]
) -> None:
    evidence, case_dir = scanned
    case, items = _items(sqlite_hw, case_dir)
    UserStore(sqlite_hw.db, hasher=PasswordHasher(1, 8 * 1024, 1)).add(
        "ann", UserRole.REVIEWER, "ann's long passphrase", actor="setup"
    )
    ann = bearer(KeyStore(sqlite_hw.db).create("ann-key", Role.MATCHER, user="ann").token)
    carved = _item(evidence, items, "usb.E01", "fs(FAT12)/$Unallocated/offset-1425408.jpg")
    deleted = _item(evidence, items, "disk.E01", "p1(FAT16)/_LD.JPG")
    expected = sqlite_hw.cases.media(carved.id).data
    assert expected is not None
    with TestClient(create_app(sqlite_hw, settings(background=False))) as client:
        url = f"/v1/cases/{quote(case)}/items/{carved.id}/media?reveal=1"
        shown = client.get(url, headers=ann)
        assert shown.status_code == 200, shown.text
        assert shown.headers["cache-control"] == "no-store"
        assert (_pixels(shown.content) == _pixels(expected)).all()  # the picture as it is
        aside = evidence.parent / "aside-http"
        aside.mkdir(exist_ok=True)
        shutil.move(evidence / "disk.E02", aside / "disk.E02")
        try:
            url = f"/v1/cases/{quote(case)}/items/{deleted.id}/media"
            missing = client.get(url, headers=ann)
        finally:
            shutil.move(aside / "disk.E02", evidence / "disk.E02")
        assert missing.status_code == 404
        assert missing.json()["detail"].startswith(
            "not available: the E01 image cannot be read to its end"
        )
