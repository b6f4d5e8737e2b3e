"""An investigator's scan on a Ray cluster gives what the local scan gives, whatever fails.

One local cluster of two nodes (one CPU each) is started once for the test run; the same generated
evidence is scanned by the local runner and by Ray. A node removed mid-scan, or a driver that
stops, loses no file and doubles none.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.errors import ConfigError
from hashwatch.index.base import hex_to_rows, rows_to_hex
from hashwatch.lists.model import ListKind
from hashwatch.matching.index_sync import SyncedPdqIndex
from hashwatch.matching.sharded import ShardedSyncedIndex, ShardUnavailableError, shard_path
from hashwatch.runner import make_runner
from tests import inprocess_cli
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene
from tests.test_archive_split import SPLIT, album
from tests.test_scan import build_evidence, make_lists

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'hashwatch[ray]')")


@pytest.fixture(scope="module")
def cluster(ray_cluster: Any) -> Any:
    """The session's two-node cluster (tests/conftest.py)."""
    return ray_cluster


def _results(case: Path) -> list[str]:
    return sorted((case / "results.jsonl").read_text().splitlines())


def _manifest_evidence(case: Path) -> Any:
    return json.loads((case / "manifest.json").read_text())["evidence"]


class _StopAfterFirstFile:
    """A scan's progress that runs ``action`` once, when the first file is reported."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.fired = threading.Event()

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, files: int, nbytes: int) -> None:
        if not self.fired.is_set():
            self.fired.set()
            self.action()

    def phase(self, text: str) -> None:
        pass


def _many_pictures(root: Path, count: int) -> set[str]:
    root.mkdir(parents=True)
    for n in range(count):
        (root / f"picture-{n:03d}.jpg").write_bytes(jpeg_bytes(scene(100 + n).resize((96, 72))))
    return {str(root / f"picture-{n:03d}.jpg") for n in range(count)}


def test_a_ray_scan_gives_the_local_scan_s_outputs(
    cluster: Any, sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    make_lists(sqlite_hw, tmp_path / "lists")
    evidence = tmp_path / "seized"
    expected = build_evidence(evidence)
    local = sqlite_hw.scan([evidence], tmp_path / "local", workers=2, unit_files=3)
    on_ray = sqlite_hw.scan([evidence], tmp_path / "ray", runner="ray", unit_files=3)
    assert _results(tmp_path / "ray") == _results(tmp_path / "local")
    statuses = {
        json.loads(line)["path"].removeprefix(f"{evidence}/"): json.loads(line)["status"]
        for line in _results(tmp_path / "ray")
    }
    assert {name: statuses[name] for name in expected} == expected
    for name in ("clusters.jsonl", "thumbnails.jsonl"):  # case.vics.json: its own CaseID
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert _manifest_evidence(tmp_path / "ray") == _manifest_evidence(tmp_path / "local")
    assert on_ray.summary.by_status == local.summary.by_status
    assert on_ray.summary.new_clusters == local.summary.new_clusters


def test_a_zip_split_into_parts_gives_on_ray_what_it_gives_whole(
    cluster: Any, sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    album(tmp_path / "seized")
    whole_app = Hashwatch(replace(sqlite_hw.settings, archive_split_bytes=0))
    split_app = Hashwatch(replace(sqlite_hw.settings, archive_split_bytes=SPLIT))
    whole_app.scan([tmp_path / "seized"], tmp_path / "whole", workers=1)
    split_app.scan([tmp_path / "seized"], tmp_path / "ray", runner="ray", unit_files=1)
    whole_app.close()
    split_app.close()
    assert set(_results(tmp_path / "ray")) == set(_results(tmp_path / "whole"))
    assert _manifest_evidence(tmp_path / "ray") == _manifest_evidence(tmp_path / "whole")


def test_the_command_line_scans_on_the_cluster(cluster: Any, run: Run, tmp_path: Path) -> None:
    files = _many_pictures(tmp_path / "seized", 3)
    done = run("scan", str(tmp_path / "seized"), "--out", str(tmp_path / "case"), "--runner", "ray")
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["path"] for line in _results(tmp_path / "case")) == sorted(files)
    elsewhere = run(
        "scan", str(tmp_path / "seized"), "--out", str(tmp_path / "other"), "--runner", "nowhere"
    )
    assert elsewhere.returncode != 0 and "unknown runner 'nowhere'" in elsewhere.stderr


def test_every_node_must_read_the_evidence(cluster: Any, tmp_path: Path) -> None:
    alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    missing = str(tmp_path / "not-mounted-here")
    with make_runner("ray") as runner:
        runner.check_readable([str(tmp_path)])  # readable everywhere: no error
        with pytest.raises(ConfigError, match="readable from every node") as caught:
            runner.check_readable([missing])
    for node in alive:  # every node that cannot read it is named
        assert node[:12] in str(caught.value)
    assert "not-mounted-here" in str(caught.value)


def test_a_driver_stopped_mid_scan_resumes_with_every_file_once(
    cluster: Any, sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    files = _many_pictures(tmp_path / "seized", 12)

    def stop() -> None:
        raise KeyboardInterrupt  # the operator's Ctrl-C, after the first file

    with pytest.raises(KeyboardInterrupt):
        sqlite_hw.scan(
            [tmp_path / "seized"],
            tmp_path / "case",
            runner="ray",
            unit_files=2,
            progress=_StopAfterFirstFile(stop),
        )
    assert not (tmp_path / "case" / "results.jsonl").exists()
    sqlite_hw.scan([tmp_path / "seized"], tmp_path / "case", runner="ray", resume=True)
    paths = [json.loads(line)["path"] for line in _results(tmp_path / "case")]
    assert sorted(paths) == sorted(files)


def _pdq_list(hw: Hashwatch, tmp: Path, name: str, count: int, seed: int) -> list[str]:
    """A known list of ``count`` random PDQ hashes (benign stand-ins): returns them."""
    rng = np.random.default_rng(seed)
    hashes = rows_to_hex(rng.integers(0, 256, size=(count, 32), dtype=np.uint8))
    lines = ["pdq,category"] + [f"{h},1" for h in hashes]
    (tmp / f"{name}.csv").write_text("\n".join(lines) + "\n")
    hw.lists.import_file(name, tmp / f"{name}.csv", kind=ListKind.KNOWN)
    return hashes


def _near(hashes: list[str], seed: int) -> np.ndarray[Any, Any]:
    """Queries: each stored hash with 0 to 40 bits flipped, and as many random hashes."""
    rng = np.random.default_rng(seed)
    rows = hex_to_rows(hashes).copy()
    bits = np.unpackbits(rows, axis=1)
    for row, flips in zip(bits, rng.integers(0, 41, size=len(bits)), strict=True):
        row[rng.choice(256, size=flips, replace=False)] ^= 1
    noise = rng.integers(0, 256, size=(len(hashes), 32), dtype=np.uint8)
    return np.concatenate([np.packbits(bits, axis=1), noise])


def _same(a: Any, b: Any) -> bool:
    return bool(
        np.array_equal(a.query, b.query)
        and np.array_equal(a.ids, b.ids)
        and np.array_equal(a.distances, b.distances)
    )


def _sharded_app(tmp: Path, shards: int, wait_s: float = 0.0) -> Hashwatch:
    url = f"sqlite:///{tmp / 'lists.sqlite3'}"
    return Hashwatch(Settings(url, tmp, index=f"ray-shards:{shards}", index_wait_s=wait_s))


def test_sharded_matching_answers_as_the_whole_index(cluster: Any, tmp_path: Path) -> None:
    hw = _sharded_app(tmp_path, 3)
    try:
        first = _pdq_list(hw, tmp_path, "known-a", 300, seed=1)
        matcher = hw.matcher()
        assert isinstance(hw.pdq_index, ShardedSyncedIndex) and len(hw.pdq_index) == 300
        whole = SyncedPdqIndex(hw.db, None).open()
        queries = _near(first, seed=2)
        assert _same(hw.pdq_index.index.query(queries, 31), whole.index.query(queries, 31))
        # A list imported later reaches the shards through the change sequence.
        second = _pdq_list(hw, tmp_path, "known-b", 200, seed=3)
        matcher.refresh()
        whole.refresh()
        assert len(hw.pdq_index) == 500
        queries = _near(first + second, seed=4)
        assert _same(hw.pdq_index.index.query(queries, 31), whole.index.query(queries, 31))
        # Through the matcher, as scan, match, serve and watch use it.
        found = matcher.match_fields([{"pdq": second[7], "pdq_quality": 100}])[0]
        assert [m.list for m in found.matches] == ["known-b"]
        # 'hashwatch index rebuild' rebuilds every shard from the database.
        hw.pdq_index.watermark = -1
        assert hw.pdq_index.refresh() == 500
        assert _same(hw.pdq_index.index.query(queries, 31), whole.index.query(queries, 31))
    finally:
        hw.close()  # stops the shards too


def test_a_dead_shard_reloads_while_queries_fail_clearly_or_wait(
    cluster: Any, tmp_path: Path
) -> None:
    hw = _sharded_app(tmp_path, 2)
    try:
        hashes = _pdq_list(hw, tmp_path, "known", 200, seed=5)
        index = hw.pdq_index
        assert isinstance(index, ShardedSyncedIndex)
        expected = SyncedPdqIndex(hw.db, None).open().index.query(_near(hashes, 6), 31)
        # Shard 0's snapshot becomes a pipe nobody writes yet: once killed, the shard's
        # reload waits there until this test lets it go on.
        snapshot = shard_path(hw.settings.index_path, 0, 2)
        assert snapshot is not None and snapshot.exists()
        snapshot.unlink()
        os.mkfifo(snapshot)
        ray.kill(index.sharded.shards[0], no_restart=False)
        deadline = time.monotonic() + 60
        while True:  # until Ray says the shard is restarting (an event, bounded)
            try:
                ray.get(index.sharded.shards[0].stats.remote())
            except ray.exceptions.ActorUnavailableError:
                break
            assert time.monotonic() < deadline, "the killed shard never went away"
        with pytest.raises(ShardUnavailableError, match="shard 0 of 2"):
            index.index.query(_near(hashes, 6), 31)
        index.sharded.wait_s = 120  # now a query waits for the shard
        answers: list[Any] = []
        asking = threading.Thread(
            target=lambda: answers.append(index.index.query(_near(hashes, 6), 31))
        )
        asking.start()
        with open(snapshot, "wb"):  # the reload goes on (an empty file: rebuilt from the db)
            pass
        asking.join(timeout=120)
        assert answers and _same(answers[0], expected)
    finally:
        hw.close()  # stops the shards too


# Last in the module: it leaves the cluster with one node (the head, where the tests run).
def test_a_node_removed_mid_scan_loses_no_file_and_doubles_none(
    cluster: Any, sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    files = _many_pictures(tmp_path / "seized", 16)
    worker = cluster.list_all_nodes()[1]  # not the head: the driver's node stays

    progress = _StopAfterFirstFile(lambda: cluster.remove_node(worker))
    outcome = sqlite_hw.scan(
        [tmp_path / "seized"], tmp_path / "case", runner="ray", unit_files=2, progress=progress
    )
    assert progress.fired.is_set()
    assert len([n for n in ray.nodes() if n["Alive"]]) == 1
    paths = [json.loads(line)["path"] for line in _results(tmp_path / "case")]
    assert sorted(paths) == sorted(files)  # each file exactly once
    assert outcome.summary.files == len(files)
