"""EXIF leads of a scanned picture come from the decode that hashed it, and say what a fresh
read of the file says: camera, owner, serial, capture time, GPS, orientation; nothing for a
picture without EXIF or with a damaged block."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from hashwatch.signals.exif import read_exif_leads
from hashwatch.signals.hasher import HashOptions, hash_stream


def _photo(fmt: str = "JPEG", orientation: int = 6) -> bytes:
    img = Image.new("RGB", (320, 240))
    img.paste((200, 40, 40), (40, 30, 200, 150))
    exif = Image.Exif()
    ifd0 = {0x010F: "Acme", 0x0110: "Phone 9", 0x0131: "Editor 2.1", 0x0112: orientation}
    for tag, value in ifd0.items():
        exif[tag] = value
    exif.get_ifd(0x8769).update({0x9003: "2024:05:06 07:08:09", 0xA431: "SN-1234"})
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.5), 3: "W", 4: (13.0, 24.0, 1.25)})
    out = io.BytesIO()
    img.save(out, fmt, exif=exif)
    return out.getvalue()


def _damaged() -> bytes:
    data = bytearray(_photo())
    at = data.index(b"Exif\x00\x00") + 6
    data[at + 4 : at + 8] = b"\xff\xff\xff\x7f"  # IFD0 points far past the block
    return bytes(data)


def _plain() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (9, 9, 9)).save(out, "JPEG")
    return out.getvalue()


SCAN = replace(HashOptions(), exif=True, thumbnail=True, dihedral=True)


@pytest.mark.parametrize(
    "data",
    [_photo(), _photo(orientation=1), _damaged(), _plain(), _photo("PNG"), _photo("WEBP")],
    ids=["jpeg", "jpeg-upright", "jpeg-damaged-exif", "jpeg-no-exif", "png", "webp"],
)
def test_a_scanned_picture_s_exif_leads_match_a_fresh_read_of_the_file(data: bytes) -> None:
    signals = hash_stream(io.BytesIO(data), "evidence/picture", len(data), SCAN)
    assert signals.pdq is not None and signals.error is None
    assert signals.exif == read_exif_leads(data)


def test_a_phone_photo_s_leads_are_found() -> None:
    data = _photo()
    leads = hash_stream(io.BytesIO(data), "evidence/photo.jpg", len(data), SCAN).exif
    assert leads is not None
    assert leads["make"] == "Acme" and leads["model"] == "Phone 9"
    assert leads["serial"] == "SN-1234" and leads["capture_time"] == "2024:05:06 07:08:09"
    assert leads["orientation"] == 6
    assert leads["gps"] == {"lat": pytest.approx(52.520139), "lon": pytest.approx(-13.400347)}
