"""LimeWire/FrostWire caches read from the byte streams Java's ObjectOutputStream writes for
them (built from the serialisation spec): every field, every LimeWire layout of the URN sets,
damage at any byte, malformed streams."""

from __future__ import annotations

import io
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from hashwatch.scan.p2p import gnutella
from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord
from tests import p2p_emule_builders as b


def _read(reader: P2PArtifactReader, data: bytes) -> list[P2PRecord | P2PReadProblem]:
    return list(reader.read(io.BytesIO(data), len(data)))


def _records(items: list[P2PRecord | P2PReadProblem]) -> list[P2PRecord]:
    return [i for i in items if isinstance(i, P2PRecord)]


def test_fileurns_cache_every_field_in_each_limewire_layout() -> None:
    files = b.shared_files(3)
    reader = gnutella.FileUrnsCacheReader()
    for style in ("urnset", "hashset", "file"):
        data = b.fileurns_cache(files, style=style)
        assert reader.recognises("fileurns.cache", data[:4096])
        assert reader.recognises("fileurns.bak", data[:4096])
        items = _read(reader, data)
        assert all(isinstance(i, P2PRecord) for i in items), items
        for record, f in zip(_records(items), files, strict=True):
            assert (record.client, record.artifact) == ("limewire", "fileurns.cache")
            assert record.save_path == f.path
            assert record.name == f.path.rsplit("\\", 1)[1]
            expected = {"sha1_base32": f.sha1_base32}
            if f.tth_base32:
                expected["tth"] = f.tth_base32
            assert record.hashes == expected
            assert record.complete is True and record.size is None
            if style == "file":  # a File key carries no time
                assert record.dates == {}
            else:
                assert record.dates["file_modified"].startswith("2020-09-13T12:26:4")
        assert [r.index for r in _records(items)] == [0, 1, 2]
    (first,) = _records(_read(reader, b.fileurns_cache(files[:1])))
    assert first.dates == {"file_modified": "2020-09-13T12:26:40Z"}


def test_createtimes_cache_fields() -> None:
    items = _read(gnutella.CreateTimesCacheReader(), b.sample_createtimes())
    records = _records(items)
    assert len(items) == len(records) == 2
    files = b.shared_files(2)
    assert [(r.hashes, r.dates) for r in records] == [
        ({"sha1_base32": files[0].sha1_base32}, {"added": "2020-09-13T12:26:40.005Z"}),
        ({"sha1_base32": files[1].sha1_base32}, {"added": "2020-09-13T12:26:41.006Z"}),
    ]


def test_names_and_paths_in_java_modified_utf8() -> None:
    path = "/home/sam/Shared/Ünïcode 🌻 \x00 name.png"
    f = b.SharedFile(path, 1, b"\x01" * 20)
    (record,) = _records(_read(gnutella.FileUrnsCacheReader(), b.fileurns_cache([f])))
    assert record.save_path == path and record.name == "Ünïcode 🌻 \x00 name.png"


def test_truncated_at_every_cut_point() -> None:
    for reader in gnutella.READERS:
        data = b.SAMPLES[(reader.client, reader.artifact)]()
        whole = _records(_read(reader, data))
        for cut in range(len(data)):
            items = _read(reader, data[:cut])
            assert isinstance(items[-1], P2PReadProblem), (reader.artifact, cut)
            assert sum(isinstance(i, P2PReadProblem) for i in items) == 1
            assert _records(items) == whole[: len(items) - 1]


def test_malformed_streams() -> None:
    reader = gnutella.FileUrnsCacheReader()
    data = b.sample_fileurns()
    other = b.JavaWriter()
    other.long(5)
    cases = {
        "not a Java serialisation stream": b"\xac\xed\x00\x04" + data[4:],
        "java.lang.Long, not a HashMap": bytes(other.out),
        "does not start with an object": b"\xac\xed\x00\x05\x74\x00\x01x",
        "HashMap of": data.replace(struct.pack(">ii", 16, 2), struct.pack(">ii", 16, -5), 1),
        "unknown stream element": data[:-1] + b"\x7f",
        "a reference to object": data.replace(b"\x71\x00\x7e\x00", b"\x71\x00\x7f\x00", 1),
    }
    for message, damaged in cases.items():
        items = _read(reader, damaged)
        problem = items[-1]
        assert isinstance(problem, P2PReadProblem), message
        assert message in problem.message, (message, problem.message)
    # An entry with neither a path nor a URN is reported, and the next is still read.
    w = b.JavaWriter()
    w.hashmap(2)
    w.null()
    w.null()
    w.string("/shared/b.jpg")
    w.urn("urn:sha1:" + "A" * 32)
    w.end()
    items = _read(reader, bytes(w.out))
    assert isinstance(items[0], P2PReadProblem) and items[0].index == 0
    assert isinstance(items[1], P2PRecord) and items[1].save_path == "/shared/b.jpg"


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_random_corruption_never_raises(data: st.DataObject) -> None:
    reader = data.draw(st.sampled_from(gnutella.READERS))
    sample = bytearray(b.SAMPLES[(reader.client, reader.artifact)]())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(4, len(sample) - 1))
        sample[at] = data.draw(st.integers(0, 255))
    for item in reader.read(io.BytesIO(bytes(sample)), len(sample)):
        assert isinstance(item, P2PRecord | P2PReadProblem)
