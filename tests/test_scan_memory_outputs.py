"""A scan's outputs written from its state hold nothing per item, and say the same bytes.

An examiner's scan of a million files ends by writing the VICS case, the evidence roots of the
manifest, report.html and clusters.jsonl from the scan's state database. Each used to hold
something per record (a record per MD5, a digest per file, every cluster); now the state
hands them over grouped and ordered by SQL. These tests check that the outputs are byte for
byte what the in-memory writers make of the same records, and that the writers' Python
memory does not grow with the number of records.
"""

from __future__ import annotations

import hashlib
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from hashwatch.matching.match import Match
from hashwatch.report import collect, html, p2p, sections
from hashwatch.report.html import ClusterSource, write_html_report
from hashwatch.report.manifest import roots_from_records, roots_from_sorted_records
from hashwatch.report.review_data import write_clusters
from hashwatch.report.vics_case import write_vics_case, write_vics_case_from_state
from hashwatch.scan.cluster import MediaColumns, cluster_columns
from hashwatch.scan.model import Cluster, ItemRecord, ItemStatus, ScanSummary
from hashwatch.scan.state import ScanState

ROOT = "/evidence/disk1"
CASE: dict[str, Any] = {"case_number": "MEM-1", "case_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}


def _hex(n: int, width: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:width]


def _known(category: str | None, scheme: str, list_name: str = "agency") -> Match:
    return Match(list_name, "known", "md5", 0, category, scheme, None, 7)


def _records(n: int) -> list[ItemRecord]:
    """Generated benign records of a scan: new pictures (every 5th the same bytes as the one
    before it, every 7th a near copy), known pictures of two category schemes, a known
    document, ignorable and other files, a known P2P client record, an archive member, a
    file that could not be read."""
    out: list[ItemRecord] = []
    for i in range(n):
        seed = i - (i % 5 == 1)  # the same file again
        status = ItemStatus.NEW
        matches: list[Match] = []
        if i % 11 == 3:
            status, matches = ItemStatus.KNOWN, [_known("1", "US")]
        elif i % 13 == 4:
            status, matches = ItemStatus.KNOWN, [_known("A", "CUSTOM", "other")]
        elif i % 17 == 5:
            status = ItemStatus.IGNORABLE
        pdq = _hex(seed if i % 7 else max(i - 1, 0), 64)  # every 7th: the picture before it
        pdq = pdq if i % 7 else pdq[:-1] + ("0" if pdq[-1] != "0" else "1")  # near, not equal
        md5 = _hex(seed if i % 23 else max(i - 2, 0), 32)  # every 23rd: spelt in capitals
        out.append(
            ItemRecord(
                path=f"{ROOT}/d{i % 9}/img{i:05d}.jpg",
                root=ROOT,
                size=1000 + seed,
                mtime="2024-01-01T00:00:00Z",
                md5=md5 if i % 23 else md5.upper(),
                sha256=_hex(-seed, 64),
                media_type="image",
                mime="image/jpeg",
                width=320,
                height=240,
                pdq=pdq,
                pdq_quality=90,
                pdq_dihedral=[pdq],
                status=status,
                matches=matches,
                exif={"make": "Generated", "serial": f"S{i % 3}"} if i % 4 == 0 else None,
            )
        )
    out += [
        ItemRecord(path=f"{ROOT}/docs/list.pdf", root=ROOT, size=9, md5=_hex(999_001, 32),
                   status=ItemStatus.KNOWN, matches=[_known("2", "US")]),
        ItemRecord(path=f"{ROOT}/notes.txt", root=ROOT, size=5, md5=_hex(999_002, 32),
                   sha256=_hex(999_002, 64), status=ItemStatus.OTHER),
        ItemRecord(path=f"{ROOT}/a.zip!/inner/img00001.jpg", root=ROOT, size=3,
                   md5=_hex(1, 32), media_type="image", status=ItemStatus.NEW),
        ItemRecord(path=f"{ROOT}/bad.jpg", root=ROOT, status=ItemStatus.ERROR, error="truncated"),
        ItemRecord(path=f"{ROOT}/p2p/known.met#3", root=ROOT, md5=_hex(999_003, 32),
                   status=ItemStatus.KNOWN, matches=[_known("1", "US")],
                   p2p={"client": "eMule", "artifact_path": f"{ROOT}/p2p/known.met",
                        "name": "shared.jpg"}),
        ItemRecord(path="/evidence/single.jpg", root="/evidence/single.jpg", size=77,
                   md5=_hex(999_004, 32), sha256=_hex(999_004, 64), media_type="image",
                   status=ItemStatus.NEW),
    ]  # fmt: skip
    return out


def _state(tmp: Path, records: list[ItemRecord]) -> tuple[ScanState, list[Cluster]]:
    """The records in a scan's state, clustered as the finish clusters them."""
    state = ScanState(tmp)
    for start in range(0, len(records), 64):
        unit = records[start : start + 64]
        state.save_unit([r.path for r in unit], unit)
    media = MediaColumns(state.new_media())
    numbers, clusters = cluster_columns(media, threshold=31)
    state.set_clusters(media.keys, numbers)
    state.set_cluster_list(clusters)
    return state, clusters


def _page(path: Path) -> str:
    # what differs between two writes: the time the page was written ("Report written",
    # ISO 8601 to the second, and the footer's "... UTC"); two writes a second apart differ
    return re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( UTC|Z)", "TIME", path.read_text())


def test_outputs_from_the_state_are_the_bytes_of_the_in_memory_writers(tmp_path: Path) -> None:
    state, clusters = _state(tmp_path, _records(600))
    records = list(state.records(thumbnails=True))  # as the finish reads them: path order

    write_vics_case(tmp_path / "memory.vics.json", records, CASE)
    count = write_vics_case_from_state(tmp_path / "state.vics.json", state, CASE)
    vics = (tmp_path / "state.vics.json").read_bytes()
    assert vics == (tmp_path / "memory.vics.json").read_bytes()
    assert count > 400 and b"shared.jpg" in vics  # the P2P record is a Media too

    assert roots_from_sorted_records(state.files) == roots_from_records(records)

    summary = ScanSummary(files=len(records), new_clusters=len(clusters))
    write_html_report(tmp_path / "memory.html", records, clusters, summary, CASE)
    source = ClusterSource(
        len(clusters), state.cluster_sizes, lambda n: list(state.cluster_list(n))
    )
    write_html_report(tmp_path / "state.html", iter(records), source, summary, CASE)
    assert _page(tmp_path / "state.html") == _page(tmp_path / "memory.html")

    write_clusters(tmp_path / "memory.jsonl", clusters)
    write_clusters(tmp_path / "state.jsonl", state.cluster_list())
    assert (tmp_path / "state.jsonl").read_bytes() == (tmp_path / "memory.jsonl").read_bytes()


def test_evidence_roots_out_of_path_order_are_still_exact(tmp_path: Path) -> None:
    records = _records(50)
    shuffled = records[1::2] + records[::2]  # no longer in path order: read again, held
    assert roots_from_sorted_records(lambda: iter(shuffled)) == roots_from_records(records)
    twice = [*records, records[0]]  # a path given twice: the last one counts, as before
    assert roots_from_sorted_records(lambda: iter(twice)) == roots_from_records(twice)


def _writers_peak(tmp: Path, n: int) -> int:
    """Python's peak memory while the finish's writers run over a state of ``n`` records."""
    state, clusters = _state(tmp, _records(n))
    summary = ScanSummary(files=n, new_clusters=len(clusters))
    source = ClusterSource(
        len(clusters), state.cluster_sizes, lambda k: list(state.cluster_list(k))
    )
    del clusters
    tracemalloc.start(1)
    try:
        write_vics_case_from_state(tmp / "case.vics.json", state, CASE)
        roots_from_sorted_records(state.files)
        write_html_report(
            tmp / "report.html", state.records(), source, summary, CASE, max_thumbnails=40
        )
        write_clusters(tmp / "clusters.jsonl", state.cluster_list())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        state.close()


def test_the_writers_memory_does_not_grow_with_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page's caps made small, so that both sizes reach them: what the page holds is
    # then the same at both, and anything the writers hold per record, cluster or MD5
    # would show four times over.
    for module in (html, sections):
        monkeypatch.setattr(module, "DETAILED_CLUSTERS", 20)
        monkeypatch.setattr(module, "CLUSTER_ROWS", 50)
    for module in (collect, sections, p2p):
        monkeypatch.setattr(module, "LISTED", 20)
    for module in (collect, p2p):
        monkeypatch.setattr(module, "KNOWN_ROWS", 50)
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small = _writers_peak(tmp_path / "small", 400)
    large = _writers_peak(tmp_path / "large", 1_600)
    assert large < small * 1.25, (small, large)
