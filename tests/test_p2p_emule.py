"""eMule/aMule records read from artifacts written by the documented layouts: every field, damage
at any byte (the records before it and one problem, never an exception), and a 100,000-record
known.met read in bounded memory."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hashwatch.scan.p2p import emule
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord
from tests import p2p_emule_builders as b


def _read(reader: P2PArtifactReader, data: bytes) -> list[P2PRecord | P2PReadProblem]:
    return list(reader.read(io.BytesIO(data), len(data)))


def _records(items: list[P2PRecord | P2PReadProblem]) -> list[P2PRecord]:
    return [i for i in items if isinstance(i, P2PRecord)]


def _problems(items: list[P2PRecord | P2PReadProblem]) -> list[P2PReadProblem]:
    return [i for i in items if isinstance(i, P2PReadProblem)]


def test_known_met_every_field() -> None:
    extra = [
        b.tag_short_str(0x03, "Image"),
        b.tag_str(0xD2, "A Title"),
        b.tag_u16(0xD4, 320),
        b.tag_u8(0xF7, 4),
        b.tag_float(0x60, 1.5),
        b.tag_bool(0x61, True),
        b.tag_bool_array(0x62, 20),
        b.tag_bsob(0x63, b"\x01\x02"),
        b.tag_hash(0x64, b"\xab" * 16),
        b.tag_u32(b"custom", 9),
        b.tag_u32(0x21, 1_700_000_100, short=True),
        b.tag_u32(0x26, 1_700_000_200),
        b.tag_blob(0x35, b"\x00" * 42),
    ]
    big = 5 * (1 << 32) + 12_345  # a large file: 64-bit size tag, part hashes by size
    entries = [b.known_entry(0, extra=extra), b.known_entry(1, name="Straße.png", size=big)]
    data = b.known_met(entries, header=0x0F)
    reader = emule.KnownMetReader()
    assert reader.recognises("known.met", data[:4096])
    assert not reader.recognises("known.met", b"\x02")
    items = _read(reader, data)
    assert not _problems(items)
    first, second = _records(items)
    assert first.client == "emule" and first.artifact == "known.met" and first.index == 0
    assert first.name == "holiday-000000.jpg" and first.size == 1000
    assert first.hashes == {
        "ed2k": b.fake_ed2k("f0").hex(),
        "aich": base64.b32encode(b.fake_aich("a0")).decode(),
    }
    assert first.dates == {
        "file_modified": "2023-07-22T04:26:40Z",
        "last_shared": "2023-11-14T22:13:20Z",
        "kad_published_sources": "2023-11-14T22:15:00Z",
        "kad_published_notes": "2023-11-14T22:16:40Z",
    }
    assert first.complete is True and first.completeness is None and first.unmatchable is None
    assert first.details == {
        "part_hashes": 0,
        "all_time_transferred": (1 << 32) + 5000,
        "all_time_requests": 3,
        "all_time_accepted": 2,
        "upload_priority": 5,
        "file_type": "Image",
        "media_title": "A Title",
        "media_bitrate": 320,
        "rating": 4,
        "tag_0x60": 1.5,
        "tag_0x61": True,
        "tag_0x63": "0102",
        "tag_0x64": "ab" * 16,
        "tag_custom": 9,
        "aich_hashset_bytes": 42,
    }
    assert second.name == "Straße.png" and second.size == big and second.index == 1
    assert second.details["part_hashes"] == big // b.PARTSIZE + 1


def test_known_met_old_size_split_and_code_page_name() -> None:
    """FT_FILESIZE_HI carries the upper 32 bits; a name without a BOM that is not UTF-8 is
    read in Windows-1252."""
    raw_name = "café.jpg".encode("cp1252")
    tags = [
        b"\x02\x01\x00\x01" + len(raw_name).to_bytes(2, "little") + raw_name,
        b.tag_u32(0x02, 7),
        b.tag_u32(0x3A, 1),
    ]
    entry = b.MetEntry(0, b.fake_ed2k("x"), (1 << 32) + 7, tags)
    (record,) = _records(_read(emule.KnownMetReader(), b.known_met([entry])))
    assert record.name == "café.jpg" and record.size == (1 << 32) + 7
    assert "file_modified" not in record.dates  # a zero date is no date


def test_known_met_record_issues_are_reported_and_reading_goes_on() -> None:
    wrong = b.MetEntry(1, b.fake_ed2k("w"), 20_000_000, [b.tag_u32(0x01, 5)], part_hashes=1)
    items = _read(emule.KnownMetReader(), b.known_met([wrong, b.known_entry(2)]))
    assert [type(i).__name__ for i in items] == ["P2PRecord", "P2PReadProblem", "P2PRecord"]
    problem = items[1]
    assert isinstance(problem, P2PReadProblem) and problem.index == 0
    assert "file name tag is not a string" in problem.message


def test_part_met_fields_and_completeness() -> None:
    data = b.sample_part()
    reader = emule.PartMetReader()
    assert reader.recognises("001.part.met", data[:4096])
    assert not reader.recognises("known.met", data[:4096])
    (record,) = _read(reader, data)
    assert isinstance(record, P2PRecord)
    assert record.name == "garden-video.mp4" and record.size == 30_000_000
    assert record.hashes == {
        "ed2k": b.fake_ed2k("part").hex(),
        "aich": base64.b32encode(b.fake_aich("part")).decode(),
    }
    assert record.complete is False
    assert record.completeness == 1 - 1_500_000 / 30_000_000
    assert record.dates == {
        "file_modified": "2023-11-14T22:21:40Z",
        "last_seen_complete": "2023-11-16T02:00:00Z",
    }
    assert record.details == {
        "part_hashes": 4,
        "gaps": [[0, 1_000_000], [2_000_000, 2_500_000]],
        "transferred": 15_000_000,
        "paused": True,
        "download_priority": 5,
        "upload_priority": 5,
        "category": 2,
        "download_active_seconds": 3600,
        "corrupted_parts": "0,2",
    }


def test_part_met_large_file_and_layouts_not_read() -> None:
    entry = b.part_entry()
    entry.tags[1] = b.tag_u64(0x02, 6 << 30)
    entry.part_hashes = 0
    (record,) = _read(emule.PartMetReader(), b.part_met(entry, version=0xE2))
    assert isinstance(record, P2PRecord) and record.size == 6 << 30
    (problem,) = _read(emule.PartMetReader(), b"\xe1" + b"\x00" * 40)
    assert isinstance(problem, P2PReadProblem) and "0xe1" in problem.message
    edonkey = bytearray(b.sample_part())
    edonkey[24:28] = b"\x00\x00\x02\x01"
    (problem,) = _read(emule.PartMetReader(), bytes(edonkey))
    assert isinstance(problem, P2PReadProblem) and "eDonkey" in problem.message


def test_known2_met_aich_roots() -> None:
    items = _read(emule.Known2MetReader(), b.sample_known2())
    assert [(r.index, r.hashes, r.details) for r in _records(items)] == [
        (0, {"aich": base64.b32encode(b.fake_aich("a0")).decode()}, {"block_hashes": 3}),
        (1, {"aich": base64.b32encode(b.fake_aich("a1")).decode()}, {"block_hashes": 1}),
    ]
    assert len(items) == 2


def test_cancelled_met_salted_and_old_layout() -> None:
    hashes = [b.fake_ed2k("c0"), b.fake_ed2k("c1")]
    salted = _read(emule.CancelledMetReader(), b.cancelled_met(hashes, seed=77))
    assert [r.details for r in _records(salted)] == [
        {"salted_hash": b.salted(77, h).hex(), "seed": 77, "version": 1} for h in hashes
    ]
    assert all(r.hashes == {} and r.unmatchable and "salted" in r.unmatchable for r in salted)  # type: ignore[union-attr]
    old = _records(_read(emule.CancelledMetReader(), b.cancelled_met(hashes, seed=None)))
    assert [r.hashes for r in old] == [{"ed2k": h.hex()} for h in hashes]
    assert all(r.unmatchable is None and r.complete is False for r in old)


def test_amule_canceled_met() -> None:
    data = b.sample_amule_canceled()
    reader = emule.AmuleCanceledMetReader()
    assert reader.recognises("canceled.met", data[:4096])
    records = _records(_read(reader, data))
    assert [(r.client, r.hashes["ed2k"]) for r in records] == [
        ("amule", b.fake_ed2k("c0").hex()),
        ("amule", b.fake_ed2k("c1").hex()),
    ]


def test_truncated_at_every_cut_point_reads_what_came_before() -> None:
    # known2_64.met has no record count: cut between two hash sets it is a shorter valid file.
    set_ends = {1, 1 + 24 + 3 * 20}
    for reader in emule.READERS:
        data = b.SAMPLES[(reader.client, reader.artifact)]()
        whole = _read(reader, data)
        assert not _problems(whole)
        for cut in range(len(data)):
            items = _read(reader, data[:cut])
            problems = _problems(items)
            if reader.artifact == "known2_64.met" and cut in set_ends:
                assert not problems and _records(items) == _records(whole)[: len(items)]
                continue
            assert len(problems) == 1, (reader.artifact, cut, items)
            assert items[-1] is problems[0]
            assert _records(items) == _records(whole)[: len(items) - 1]


def test_malformed_counts_types_and_lengths() -> None:
    two = b.known_met([b.known_entry(0), b.known_entry(1)])
    first_len = len(b.known_entry(0).encode())
    cases = {
        "unknown tag type": b.known_met(
            [b.known_entry(0), b.MetEntry(1, b"\x00" * 16, 5, [b"\x8c\x01"])]
        ),
        "tag count": two[: 5 + first_len + 22] + (4_000_000_000).to_bytes(4, "little"),
        "blob": b.known_met(
            [b.known_entry(0), b.MetEntry(1, b"\x00" * 16, 5, [b"\x07\x01\x00\x35" + b"\xff" * 4])]
        ),
        "ends": b.known_met([b.known_entry(0), b.known_entry(1)], count=4_000_000_000),
    }
    for what, data in cases.items():
        items = _read(emule.KnownMetReader(), data)
        assert [r.index for r in _records(items)] == ([0, 1] if what == "ends" else [0]), what
        (problem,) = _problems(items)
        assert problem.offset is not None and 0 < problem.offset <= len(data), what
    (bad_header,) = _read(emule.KnownMetReader(), b"\x33" + b"\x00" * 8)
    assert isinstance(bad_header, P2PReadProblem) and "header" in bad_header.message
    (too_many,) = _read(emule.Known2MetReader(), b"\x02" + b"\x00" * 20 + b"\xff\xff\xff\xff")
    assert isinstance(too_many, P2PReadProblem) and "block hashes" in too_many.message


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_random_corruption_never_raises(data: st.DataObject) -> None:
    reader = data.draw(st.sampled_from(emule.READERS))
    sample = bytearray(b.SAMPLES[(reader.client, reader.artifact)]())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(sample) - 1))
        sample[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(sample)))
    for item in reader.read(io.BytesIO(bytes(sample[:cut])), cut):
        assert isinstance(item, P2PRecord | P2PReadProblem)


_RSS_READER = """
import resource, sys
from hashwatch.scan.p2p.emule import KnownMetReader
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(sys.argv[1], "rb") as f:
    count = sum(1 for _ in KnownMetReader().read(f, None))
print(count, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""


def test_large_known_met_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """100,000 records (25.8 MB): a reader holding the file or its records would grow by tens
    of MB. Peak RSS of a fresh process (tracemalloc makes this read ~3x slower)."""
    path = tmp_path / "known.met"
    with path.open("wb") as out:
        b.write_large_known_met(out, 100_000)
    done = subprocess.run(
        [sys.executable, "-c", _RSS_READER, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    count, growth = (int(v) for v in done.stdout.split())
    assert count == 100_000
    assert growth < 6 << 20, growth
