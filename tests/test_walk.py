"""The evidence walk: stable order, links never followed, special and unreadable files reported."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hashwatch.scan.walk import SYMLINK_NOT_FOLLOWED, EvidenceFile, walk_evidence

NOBODY = 65534


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with the effective ids of ``nobody`` (root can switch back)."""
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory ``nobody`` can traverse (pytest's tmp_path sits under a 0700 parent)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to read files as another user")
    path = Path(tempfile.mkdtemp(prefix="hashwatch-walk-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            with contextlib.suppress(OSError):
                if not sub.is_symlink():
                    sub.chmod(0o700)
        shutil.rmtree(path)


def test_sorted_depth_first_and_root_file(tmp_path: Path) -> None:
    for name in ["b/z.txt", "b/a.txt", "a.txt", "c/d/e.txt", "B.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "empty_dir").mkdir()
    found = [f.path for f in walk_evidence([tmp_path])]
    rel = [os.path.relpath(p, tmp_path) for p in found]
    assert rel == ["B.txt", "a.txt", "b/a.txt", "b/z.txt", "c/d/e.txt"]
    single = list(walk_evidence([tmp_path / "a.txt"]))
    assert single == [
        EvidenceFile(
            str(tmp_path / "a.txt"),
            str(tmp_path / "a.txt"),
            5,
            (tmp_path / "a.txt").stat().st_mtime_ns,
        )
    ]
    assert all(f.root == str(tmp_path) for f in walk_evidence([tmp_path]))


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_bytes(b"1")
    monkeypatch.chdir(tmp_path)
    (ef,) = walk_evidence(["x"])
    assert ef.root == str(tmp_path / "x") and ef.path == str(tmp_path / "x" / "f")


def test_symlink_loop_terminates_and_is_reported(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_bytes(b"x")
    (tmp_path / "d" / "loop").symlink_to("..")  # a directory link to its parent
    (tmp_path / "d" / "self").symlink_to("self")  # a link to itself
    (tmp_path / "d" / "out").symlink_to("/etc/passwd")
    found = {os.path.relpath(f.path, tmp_path): f for f in walk_evidence([tmp_path])}
    assert set(found) == {"d/f.txt", "d/loop", "d/self", "d/out"}
    for name in ("d/loop", "d/self", "d/out"):
        assert found[name].error == SYMLINK_NOT_FOLLOWED
        assert found[name].size == 0
    assert found["d/f.txt"].error is None
    # A root that is itself a link is reported, not followed.
    (link_root,) = walk_evidence([tmp_path / "d" / "loop"])
    assert link_root.error == SYMLINK_NOT_FOLLOWED


def test_fifo_reported_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "z.txt").write_bytes(b"z")
    found = list(walk_evidence([tmp_path]))  # would hang here if the FIFO were opened
    assert [Path(f.path).name for f in found] == ["pipe", "z.txt"]
    assert found[0].error == "special file not read (FIFO)"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_missing_root(tmp_path: Path) -> None:
    (ef,) = walk_evidence([tmp_path / "nope"])
    assert ef.error == "cannot read: No such file or directory"


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    (ef,) = walk_evidence([tmp_path])
    assert ef.size == 0 and ef.error is None


def test_key_is_stable_and_record_pickles(tmp_path: Path) -> None:
    name = "we\u0301ird \n name"
    (tmp_path / name).write_bytes(b"abc")
    (ef,) = walk_evidence([tmp_path])
    again = pickle.loads(pickle.dumps(ef))
    assert again == ef and again.key == ef.key
    (second,) = walk_evidence([tmp_path])
    assert second.key == ef.key
    assert json.loads(ef.key) == [str(tmp_path), str(tmp_path / name), 3, ef.mtime_ns]
    os.utime(tmp_path / name, ns=(0, 10**18))
    (changed,) = walk_evidence([tmp_path])
    assert changed.key != ef.key  # a modified file is not "done" on resume


def test_unreadable_file_and_directory(shared_dir: Path) -> None:
    secret = shared_dir / "secret.bin"
    secret.write_bytes(b"private")
    secret.chmod(0o000)
    locked = shared_dir / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_bytes(b"x")
    locked.chmod(0o000)
    (shared_dir / "ok.txt").write_bytes(b"ok")
    (shared_dir / "ok.txt").chmod(0o644)
    with as_nobody():
        found = {Path(f.path).name: f for f in walk_evidence([shared_dir])}
    assert found["secret.bin"].error == "cannot read: Permission denied"
    assert found["locked"].error == "cannot list directory: Permission denied"
    assert found["ok.txt"].error is None
    assert "inside.txt" not in found
