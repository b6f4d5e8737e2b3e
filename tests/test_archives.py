"""Archives read in place: nesting, content sniffing, bombs, hostile names, corrupt data, and
evidence left exactly as it was. Everything is generated here: benign bytes and pictures."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import lzma
import os
import sys
import tarfile
import tempfile
import threading
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import py7zr
import pytest

from hashwatch.scan.archives import (
    ArchiveLimits,
    ArchiveReader,
    Expanded,
    expand_evidence,
    safe_display,
    sniff_archive,
)
from hashwatch.scan.walk import EvidenceFile, walk_evidence
from hashwatch.signals.digests import READ_BLOCK_SIZE
from hashwatch.signals.hasher import FileSignals, hash_stream
from tests.media import jpeg_bytes, scene
from tests.test_walk import as_nobody, shared_dir  # noqa: F401 (a fixture)

MiB = 1 << 20


def sha(stream: BinaryIO, path: str, size: int | None, mtime: str | None) -> str:
    h = hashlib.sha256()
    while block := stream.read(READ_BLOCK_SIZE):
        h.update(block)
    return h.hexdigest()


def signals(stream: BinaryIO, path: str, size: int | None, mtime: str | None) -> FileSignals:
    return hash_stream(stream, path, size)


def expand(path: Path, limits: ArchiveLimits | None = None, handle: Any = sha) -> list[Any]:
    """Every record of every evidence file under ``path``, in walk order."""
    return [r for ef in walk_evidence([path]) for r in expand_evidence(ef, handle, limits)]


def rel(records: list[Expanded[Any]], base: Path) -> dict[str, Expanded[Any]]:
    """Records by display path relative to the evidence file's directory."""
    out = {}
    for r in records:
        assert r.display_path.startswith(str(base) + "/")
        out[r.display_path[len(str(base)) + 1 :]] = r
    assert len(out) == len(records), "display paths are unique"
    return out


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: dict[str, bytes], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sevenzip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(data, name)
    return buf.getvalue()


JPEG = jpeg_bytes(scene(7, (160, 120)))


def test_nested_zip_targz_7z_jpg(tmp_path: Path) -> None:
    inner7z = sevenzip_bytes({"photos/c.jpg": JPEG, "readme.txt": b"benign"})
    targz = tar_bytes({"b/inner.7z": inner7z}, "w:gz")
    (tmp_path / "a.zip").write_bytes(zip_bytes({"x/b.tar.gz": targz}))
    records = expand(tmp_path / "a.zip", handle=signals)
    found = rel(records, tmp_path)
    assert list(found) == [
        "a.zip!/x/b.tar.gz!/b/inner.7z!/photos/c.jpg",
        "a.zip!/x/b.tar.gz!/b/inner.7z!/readme.txt",
        "a.zip!/x/b.tar.gz!/b/inner.7z",
        "a.zip!/x/b.tar.gz",
        "a.zip",
    ]
    jpg = found["a.zip!/x/b.tar.gz!/b/inner.7z!/photos/c.jpg"]
    assert jpg.result is not None and jpg.result.digests is not None
    assert jpg.result.digests.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert jpg.result.mime == "image/jpeg" and jpg.result.pdq is not None
    assert (jpg.depth, jpg.size, jpg.is_archive, jpg.error) == (3, len(JPEG), False, None)
    kinds = [(r.is_archive, r.kind, r.error) for r in records[2:]]
    assert kinds == [(True, "7z", None), (True, "tar.gz", None), (True, "zip", None)]
    assert found["a.zip!/x/b.tar.gz"].mtime is not None
    assert found["a.zip!/x/b.tar.gz!/b/inner.7z"].mtime == "2023-11-14T22:13:20Z"
    assert records == expand(tmp_path / "a.zip", handle=signals), "deterministic"


def test_type_from_content_not_name(tmp_path: Path) -> None:
    inner = zip_bytes({"deep.txt": b"x"})
    (tmp_path / "e.zip").write_bytes(
        zip_bytes({"system32/driver.dll": JPEG, "holiday.jpg": inner, "a.zip": b"plain text"})
    )
    found = rel(expand(tmp_path / "e.zip", handle=signals), tmp_path)
    dll = found["e.zip!/system32/driver.dll"]
    assert not dll.is_archive and dll.result is not None and dll.result.mime == "image/jpeg"
    assert found["e.zip!/holiday.jpg"].kind == "zip"
    assert "e.zip!/holiday.jpg!/deep.txt" in found
    assert not found["e.zip!/a.zip"].is_archive


@pytest.mark.parametrize(
    "mode,kind", [("w", "tar"), ("w:gz", "tar.gz"), ("w:bz2", "tar.bz2"), ("w:xz", "tar.xz")]
)
def test_tar_variants(tmp_path: Path, mode: str, kind: str) -> None:
    data = tar_bytes({"d/one.txt": b"one", "d/two.bin": os.urandom(3000), "empty": b""}, mode)
    (tmp_path / "t").write_bytes(data)  # no suffix: the type comes from the content
    records = expand(tmp_path / "t")
    found = rel(records, tmp_path)
    assert list(found) == ["t!/d/one.txt", "t!/d/two.bin", "t!/empty", "t"]
    assert found["t"].kind == kind and found["t"].error is None
    assert found["t!/d/one.txt"].result == hashlib.sha256(b"one").hexdigest()
    assert found["t!/empty"].result == hashlib.sha256(b"").hexdigest()
    assert found["t!/d/one.txt"].mtime == "2023-11-14T22:13:20Z"


def test_tar_links_and_special_members_reported(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, target in [
            ("dir", tarfile.DIRTYPE, ""),
            ("sym", tarfile.SYMTYPE, "/etc/passwd"),
            ("hard", tarfile.LNKTYPE, "dir/file"),
            ("fifo", tarfile.FIFOTYPE, ""),
        ]:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
    (tmp_path / "l.tar").write_bytes(buf.getvalue())
    found = rel(expand(tmp_path / "l.tar"), tmp_path)
    assert "l.tar!/dir" not in found  # directories have no content: no record
    assert found["l.tar!/sym"].error == "symbolic link not followed"
    assert found["l.tar!/hard"].error.startswith("hard link not followed")  # type: ignore[union-attr]
    assert found["l.tar!/fifo"].error == "special file not read"
    assert all(found[k].result is None for k in ("l.tar!/sym", "l.tar!/hard", "l.tar!/fifo"))


def test_7z_with_directories_and_empty_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub" / "empty_dir").mkdir(parents=True)
    (src / "sub" / "a.txt").write_bytes(b"a" * 5000)
    (src / "zero").write_bytes(b"")
    with py7zr.SevenZipFile(tmp_path / "s.7z", "w") as z:
        z.writeall(src, "src")
    found = rel(expand(tmp_path / "s.7z"), tmp_path)
    assert found["s.7z!/src/sub/a.txt"].result == hashlib.sha256(b"a" * 5000).hexdigest()
    assert found["s.7z!/src/zero"].result == hashlib.sha256(b"").hexdigest()
    assert found["s.7z"].kind == "7z" and found["s.7z"].error is None
    assert not any(k.endswith("empty_dir") for k in found)


def test_lone_compressed_files_are_single_member_containers(tmp_path: Path) -> None:
    (tmp_path / "notes.txt.gz").write_bytes(gzip.compress(b"hello notes"))
    (tmp_path / "blob").write_bytes(lzma.compress(b"no suffix"))
    (tmp_path / "inner.zip.bz2").write_bytes(bz2.compress(zip_bytes({"m.txt": b"m"})))
    found = rel(expand(tmp_path), tmp_path)
    assert found["notes.txt.gz!/notes.txt"].result == hashlib.sha256(b"hello notes").hexdigest()
    assert found["notes.txt.gz"].kind == "gz"
    assert found["blob!/blob~"].result == hashlib.sha256(b"no suffix").hexdigest()
    assert found["inner.zip.bz2!/inner.zip!/m.txt"].result == hashlib.sha256(b"m").hexdigest()
    assert found["inner.zip.bz2!/inner.zip"].kind == "zip"


def test_sniff_archive() -> None:
    assert sniff_archive(zip_bytes({"a": b"a"})[:512]) == "zip"
    assert sniff_archive(zip_bytes({})[:512]) == "zip"
    assert sniff_archive(sevenzip_bytes({"a": b"a"})[:512]) == "7z"
    assert sniff_archive(tar_bytes({"a": b"a"})[:512]) == "tar"
    assert sniff_archive(tar_bytes({"a": b"a"}, "w:gz")[:512]) == "tar.gz"
    assert sniff_archive(tar_bytes({"a": b"a"}, "w:xz")[:512]) == "tar.xz"
    assert sniff_archive(tar_bytes({"a": b"a"}, "w:bz2")[:512]) == "tar.bz2"
    assert sniff_archive(gzip.compress(b"text")[:512]) == "gz"
    assert sniff_archive(bz2.compress(b"")[:512]) == "bz2"
    for other in (JPEG, b"", b"BZh9 is just text", b"PK but not a zip", b"\x1f\x8b\x08\xff"):
        assert sniff_archive(other[:512]) is None


def test_zip_bomb_by_ratio_stops_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w", force_zip64=True) as w:
            block = bytes(MiB)
            for _ in range(200):  # 200 MB of zeros, about 200 KB compressed
                w.write(block)
        zf.writestr("after.txt", b"still read")
    tracemalloc.start()
    try:
        records = expand(bomb, ArchiveLimits(max_ratio=50), handle=signals)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    found = rel(records, tmp_path)
    zeros = found["bomb.zip!/zeros.bin"]
    assert zeros.error == "zip bomb: expansion ratio above 50"
    assert zeros.result is not None and zeros.result.digests is None  # no digests of a part
    assert found["bomb.zip!/after.txt"].error is None  # zip members are independent
    assert found["bomb.zip"].error is None and found["bomb.zip"].result is not None
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_zip_bomb_by_total_size_flat_and_nested(tmp_path: Path) -> None:
    zeros = bytes(4 * MiB)
    (tmp_path / "flat.zip").write_bytes(zip_bytes({f"z{i:02}": zeros for i in range(12)}))
    inner = {f"in{i}.zip": zip_bytes({"z": zeros}) for i in range(4)}
    (tmp_path / "nested.zip").write_bytes(zip_bytes(inner))
    limits = ArchiveLimits(max_ratio=1e9, max_total_bytes=10 * MiB, max_total_factor=1)
    message = "zip bomb: more than 10 MiB uncompressed from one file"
    flat = rel(expand(tmp_path / "flat.zip", limits), tmp_path)
    assert [k for k, r in flat.items() if r.error is None] == ["flat.zip!/z00", "flat.zip!/z01"]
    assert flat["flat.zip!/z02"].error == message
    assert flat["flat.zip"].error == message and "flat.zip!/z03" not in flat
    nested = rel(expand(tmp_path / "nested.zip", limits), tmp_path)
    assert nested["nested.zip!/in2.zip!/z"].error == message
    assert nested["nested.zip!/in2.zip"].error == message
    assert nested["nested.zip"].error == message and "nested.zip!/in3.zip" not in nested


def test_7z_bomb_stops_the_archive_in_bounded_memory(tmp_path: Path) -> None:
    with py7zr.SevenZipFile(tmp_path / "b.7z", "w") as z:
        z.writestr(bytes(100 * MiB), "zeros.bin")
        z.writestr(b"after", "after.txt")
    tracemalloc.start()
    try:
        found = rel(expand(tmp_path / "b.7z", ArchiveLimits(max_ratio=100)), tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found["b.7z!/zeros.bin"].error == "zip bomb: expansion ratio above 100"
    assert found["b.7z"].error == "zip bomb: expansion ratio above 100"  # a solid stream
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert not [t for t in threading.enumerate() if t.name == "hashwatch-7z"], "thread ended"


_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CHANGES = {"mkdir", "rename", "replace", "remove", "unlink", "rmdir", "symlink", "link",
            "utime", "chmod", "chown", "truncate", "move", "copyfile"}  # fmt: skip
_watch: list[tuple[str, tuple[Any, ...]]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watch is None:
        return
    if event == "open":
        _, mode, flags = args
        if (isinstance(mode, str) and set(mode) & set("wax+")) or (flags or 0) & _WRITES:
            _watch.append((event, args))
    elif event.split(".")[0] in ("os", "shutil") and event.split(".")[-1] in _CHANGES:
        _watch.append((event, args))


sys.addaudithook(_audit)


@contextlib.contextmanager
def no_writes() -> Iterator[None]:
    """Fail if anything is opened for writing, created, moved or changed meanwhile."""
    global _watch
    _watch = []
    try:
        yield
        assert _watch == [], _watch
    finally:
        _watch = None


def test_hostile_member_names_never_touch_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["../../escape.txt", "/etc/passwd", "C:\\Windows\\x.txt", "red\x1b[31m.txt",
             "rtl\u202egpj.exe", "new\nline", "ok/fine.txt"]  # fmt: skip
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "n.zip").write_bytes(zip_bytes({n: n.encode() for n in names}))
    (tmp_path / "ev" / "n.tar").write_bytes(tar_bytes({n: n.encode() for n in names}))
    work = tmp_path / "ev" / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = sorted(p for p in tmp_path.rglob("*"))
    passwd = os.stat("/etc/passwd")
    with no_writes():
        records = expand(tmp_path / "ev")
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert os.stat("/etc/passwd") == passwd
    found = rel(records, tmp_path / "ev")
    for archive in ("n.zip", "n.tar"):
        shown = {safe_display(n): n for n in names}
        for display, name in shown.items():
            record = found[f"{archive}!/{display}"]
            assert record.result == hashlib.sha256(name.encode()).hexdigest()
            assert record.note == (None if name == "ok/fine.txt" else "unsafe member name")
        assert f"{archive}!/red\\x1b[31m.txt" in found
        assert f"{archive}!/rtl\\u202egpj.exe" in found
        assert f"{archive}!/new\\x0aline" in found
    assert safe_display("a\x00b\udcff") == "a\\x00b\\xff"
    assert safe_display("ordinary/ünïcode name.jpg") == "ordinary/ünïcode name.jpg"


def test_duplicate_member_names_stay_distinct(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf, pytest.warns(UserWarning):
        zf.writestr("same.txt", b"first")
        zf.writestr("same.txt", b"second")
    found = rel(expand(tmp_path / "d.zip"), tmp_path)
    assert found["d.zip!/same.txt"].result == hashlib.sha256(b"first").hexdigest()
    assert found["d.zip!/same.txt [#2]"].result == hashlib.sha256(b"second").hexdigest()
    assert found["d.zip!/same.txt [#2]"].note == "duplicate member name"


def test_truncated_and_corrupt_archives_never_raise(tmp_path: Path) -> None:
    good_zip = zip_bytes({"a.txt": b"a", "b.txt": b"b"})
    (tmp_path / "cut.zip").write_bytes(good_zip[: len(good_zip) // 2])
    blocks = {f"m{i}.bin": os.urandom(200_000) for i in range(3)}
    targz = tar_bytes(blocks, "w:gz")
    (tmp_path / "cut.tar.gz").write_bytes(targz[: int(len(targz) * 0.6)])
    crc = bytearray(zip_bytes({"s.txt": b"stored content"}, zipfile.ZIP_STORED))
    crc[crc.index(b"stored content")] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(crc))
    with no_writes():
        found = rel(expand(tmp_path), tmp_path)
    assert found["cut.zip"].error.startswith("corrupt archive")  # type: ignore[union-attr]
    assert found["cut.zip"].result is not None  # still hashed as a file
    assert found["cut.zip!/a.txt"].result == hashlib.sha256(b"a").hexdigest()  # before the cut
    assert found["cut.tar.gz!/m0.bin"].result == hashlib.sha256(blocks["m0.bin"]).hexdigest()
    assert found["cut.tar.gz"].error is not None and found["cut.tar.gz"].kind == "tar.gz"
    assert any(r.error for k, r in found.items() if k.startswith("cut.tar.gz!/"))
    assert found["crc.zip!/s.txt"].error.startswith("corrupt data: Bad CRC-32")  # type: ignore[union-attr]


def test_encrypted_zip_member(tmp_path: Path) -> None:
    data = bytearray(zip_bytes({"secret.txt": b"opaque", "plain.txt": b"plain"}))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(signature) + flags_at] |= 0x1  # the first entry marked encrypted
    (tmp_path / "enc.zip").write_bytes(bytes(data))
    found = rel(expand(tmp_path / "enc.zip"), tmp_path)
    assert found["enc.zip!/secret.txt"].error == "encrypted member"
    assert found["enc.zip!/secret.txt"].result is None
    assert found["enc.zip!/plain.txt"].error is None


def test_large_nested_archives_reopened_or_reported(tmp_path: Path) -> None:
    inner = zip_bytes({f"f{i}.bin": os.urandom(2000) for i in range(3)})
    (tmp_path / "outer.zip").write_bytes(zip_bytes({"inner.zip": inner}))
    (tmp_path / "outer.7z").write_bytes(sevenzip_bytes({"inner.zip": inner}))
    (tmp_path / "outer.tgz").write_bytes(tar_bytes({"inner.zip": inner}, "w:gz"))
    limits = ArchiveLimits(max_in_memory=1024)  # every nested archive is "too large"
    found = rel(expand(tmp_path, limits), tmp_path)
    digest = hashlib.sha256(inner).hexdigest()
    for outer in ("outer.zip", "outer.tgz"):  # random access: read again from the archive
        assert found[f"{outer}!/inner.zip"].error is None
        assert found[f"{outer}!/inner.zip"].result == digest
        assert f"{outer}!/inner.zip!/f2.bin" in found
    in7z = found["outer.7z!/inner.zip"]
    assert in7z.error == "nested archive too large to expand in memory"
    assert in7z.result == digest and in7z.is_archive  # digests still computed
    assert not any(k.startswith("outer.7z!/inner.zip!/") for k in found)


def test_depth_and_member_count_limits(tmp_path: Path) -> None:
    level3 = zip_bytes({"deep.txt": b"deep"})
    (tmp_path / "n.zip").write_bytes(zip_bytes({"l2.zip": zip_bytes({"l3.zip": level3})}))
    found = rel(expand(tmp_path / "n.zip", ArchiveLimits(max_depth=2)), tmp_path)
    assert found["n.zip!/l2.zip!/l3.zip"].error == "archive nested deeper than 2: not expanded"
    assert found["n.zip!/l2.zip!/l3.zip"].result == hashlib.sha256(level3).hexdigest()
    assert "n.zip!/l2.zip!/l3.zip!/deep.txt" not in found
    (tmp_path / "many.zip").write_bytes(zip_bytes({f"{i}": b"x" for i in range(5)}))
    many = rel(expand(tmp_path / "many.zip", ArchiveLimits(max_members=3)), tmp_path)
    assert many["many.zip"].error == "too many members: more than 3"
    assert sorted(many) == ["many.zip", "many.zip!/0", "many.zip!/1", "many.zip!/2"]


def test_archive_reader_lists_members_with_directories() -> None:
    data = zip_bytes({"dir/": b"", "dir/a.txt": b"a"})
    reader = ArchiveReader(io.BytesIO(data), "x.zip", "zip")
    members = list(reader)
    shown = [(m.display_path, m.is_dir) for m in members]
    assert shown == [("x.zip!/dir/", True), ("x.zip!/dir/a.txt", False)]
    assert reader.error is None
    broken = ArchiveReader(io.BytesIO(b"PK\x03\x04 nothing else"), "y.zip", "zip")
    assert list(broken) == [] and broken.error is not None


def test_zero_byte_file_fifo_and_vanished_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    os.mkfifo(tmp_path / "pipe")
    found = rel(expand(tmp_path), tmp_path)
    assert found["empty"].result == hashlib.sha256(b"").hexdigest()
    assert found["pipe"].error == "special file not read (FIFO)" and found["pipe"].result is None
    # A record made before the path became a FIFO (or by hand) is checked again, not opened.
    raced = EvidenceFile(str(tmp_path), str(tmp_path / "pipe"), 0, 0)
    (record,) = expand_evidence(raced, sha)
    assert record.error == "not a regular file (changed since the walk)"
    gone = EvidenceFile(str(tmp_path), str(tmp_path / "gone"), 3, 0)
    assert next(iter(expand_evidence(gone, sha))).error == "cannot read: No such file or directory"


def test_unreadable_evidence_file(shared_dir: Path) -> None:  # noqa: F811
    secret = shared_dir / "secret.zip"
    secret.write_bytes(zip_bytes({"a": b"a"}))
    secret.chmod(0o000)
    ef = EvidenceFile(str(shared_dir), str(secret), secret.stat().st_size, 0)
    with as_nobody():
        records = list(expand_evidence(ef, sha))
    assert [r.error for r in records] == ["cannot read: Permission denied"]


def test_evidence_unchanged_after_expansion(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(zip_bytes({"in.tar.gz": tar_bytes({"j.jpg": JPEG}, "w:gz")}))
    (tmp_path / "b.7z").write_bytes(sevenzip_bytes({"x.txt": b"x", "j.jpg": JPEG}))
    (tmp_path / "c.jpg").write_bytes(JPEG)
    (tmp_path / "d.tar.xz").write_bytes(tar_bytes({"y": b"y"}, "w:xz"))
    digests = {p: hashlib.sha256(p.read_bytes()).digest() for p in tmp_path.iterdir()}
    for path in digests:  # atime before mtime: a relatime mount would update it on a read
        mtime = path.stat().st_mtime_ns
        os.utime(path, ns=(mtime - 10**12, mtime))
    times = {p: (p.stat().st_size, p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in digests}
    with no_writes():
        records = expand(tmp_path, handle=signals)
    assert len(records) == 3 + 3 + 1 + 2
    assert {
        p: (p.stat().st_size, p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in digests
    } == times
    assert {p: hashlib.sha256(p.read_bytes()).digest() for p in digests} == digests


@pytest.fixture
def sparse_dir(tmp_path: Path) -> Iterator[Path]:
    """tmpfs where there is one: its holes read as the shared zero page (0.2 s for 5 GB);
    on a disk file system the kernel fills the page cache first (3 to 14 s measured)."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="hashwatch-test-") as name:
        yield Path(name)


def test_sparse_5gb_file_streams_in_constant_memory(sparse_dir: Path) -> None:
    sparse = sparse_dir / "sparse.img"
    with open(sparse, "wb") as f:
        f.truncate(5 << 30)
    counted: list[int] = []

    def count(stream: BinaryIO, path: str, size: int | None, mtime: str | None) -> int:
        n = 0
        while block := stream.read(READ_BLOCK_SIZE):
            n += len(block)
        counted.append(n)
        return n

    tracemalloc.start()
    try:
        (record,) = expand(sparse, handle=count)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert record.result == 5 << 30 and record.error is None and not record.is_archive
    assert peak < 16 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_the_write_watch_itself_sees_writes(tmp_path: Path) -> None:
    for write in (
        lambda: (tmp_path / "w").write_bytes(b"x"),
        lambda: os.close(os.open(tmp_path / "o", os.O_WRONLY | os.O_CREAT)),
        lambda: tempfile.TemporaryFile().close(),
        lambda: os.utime(tmp_path),
    ):
        with pytest.raises(AssertionError), no_writes():
            write()


def test_zip_without_central_directory_read_from_local_headers(tmp_path: Path) -> None:
    """Carved or cut zips: members up to the damage are read, deflated with data descriptors
    (streamed zips) included; the member the cut goes through is an error, not a crash."""
    files = {f"f{i}.bin": os.urandom(50_000) for i in range(4)} | {"z.txt": b"z" * 99_999}
    streamed = io.BytesIO()
    with zipfile.ZipFile(_Unseekable(streamed), "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)  # written to a pipe: sizes follow in data descriptors
    plain = zip_bytes(files)
    for label, data in (("streamed", streamed.getvalue()), ("plain", plain)):
        end = data.index(b"PK\x01\x02")  # the central directory and all after it: lost
        (tmp_path / f"{label}.zip").write_bytes(data[:end])
        (tmp_path / f"{label}-cut.zip").write_bytes(data[: end - 60_000])
    found = rel(expand(tmp_path), tmp_path)
    for label in ("streamed", "plain"):
        for name, content in files.items():
            record = found[f"{label}.zip!/{name}"]
            assert record.result == hashlib.sha256(content).hexdigest(), (label, name)
        assert "members read from local headers" in str(found[f"{label}.zip"].error)
        cut = {k: r for k, r in found.items() if k.startswith(f"{label}-cut.zip!/")}
        ok = [k for k, r in cut.items() if r.error is None]
        assert ok == [f"{label}-cut.zip!/f{i}.bin" for i in range(len(ok))] and len(ok) >= 2
        assert found[f"{label}-cut.zip"].error is not None


def test_bomb_in_zip_without_central_directory_stops_the_walk(tmp_path: Path) -> None:
    streamed = io.BytesIO()
    with zipfile.ZipFile(_Unseekable(streamed), "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("zeros.bin", "w") as w:
            for _ in range(30):
                w.write(bytes(MiB))
        zf.writestr("after.txt", b"after")
    data = streamed.getvalue()
    (tmp_path / "s.zip").write_bytes(data[: data.index(b"PK\x01\x02")])
    found = rel(expand(tmp_path / "s.zip", ArchiveLimits(max_ratio=50)), tmp_path)
    assert found["s.zip!/zeros.bin"].error == "zip bomb: expansion ratio above 50"
    assert found["s.zip"].error == "zip bomb: expansion ratio above 50"
    assert "s.zip!/after.txt" not in found  # its start is only known past the bomb


class _Unseekable(io.RawIOBase):
    def __init__(self, sink: io.BytesIO) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        return self.sink.write(b)


def test_overlapping_zip_members_are_a_bomb(tmp_path: Path) -> None:
    """Two central entries sharing one local header (the trick behind 42 KB -> 5.5 GB zips)."""
    data = zip_bytes({"k": bytes(MiB), "plain.txt": b"plain"})
    cd, eocd = data.index(b"PK\x01\x02"), data.index(b"PK\x05\x06")
    first = bytearray(data[cd : data.index(b"PK\x01\x02", cd + 4)])
    first[46:47] = b"j"  # the same entry again under another name
    entries = int.from_bytes(data[eocd + 10 : eocd + 12], "little") + 1
    tail = bytearray(data[eocd:])
    tail[8:12] = entries.to_bytes(2, "little") * 2
    tail[12:16] = (eocd - cd + len(first)).to_bytes(4, "little")
    (tmp_path / "o.zip").write_bytes(data[:eocd] + bytes(first) + bytes(tail))
    found = rel(expand(tmp_path / "o.zip"), tmp_path)
    for name in ("o.zip!/k", "o.zip!/j"):
        assert found[name].error == "zip bomb: member data overlaps another member"
        assert found[name].result is None
    assert found["o.zip!/plain.txt"].result == hashlib.sha256(b"plain").hexdigest()
