"""Clustering from the scan's state (hash columns read by SQL) gives the clusters, numbers and
reasons that clustering the decoded records gives, and writes the numbers into the state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hashwatch.matching.match import Match
from hashwatch.scan import cluster
from hashwatch.scan.cluster import MediaColumns, cluster_columns, cluster_new_media
from hashwatch.scan.model import ItemRecord, ItemStatus
from hashwatch.scan.state import ScanState


def _records() -> list[ItemRecord]:
    """Generated benign records: pictures with near and exact copies, EXIF leads, a flat
    picture below the quality minimum, a file that is not media."""
    rng = np.random.default_rng(7)
    records: list[ItemRecord] = []
    for n in range(60):
        base = rng.integers(0, 256, 32, dtype=np.uint8)
        copies = 1 + n % 3
        for c in range(copies):
            h = base.copy()
            h[c] ^= 0x0F  # 4 bits from the base: a near-duplicate
            dihedral = [h.tobytes().hex()] + [rng.bytes(32).hex() for _ in range(7)]
            exif = {"make": "Generated", "serial": "S1"} if n % 5 == 0 else {"software": "x"}
            records.append(
                ItemRecord(
                    path=f"/e/{n:03d}-{c}.jpg",
                    root="/e",
                    md5=f"{n:030x}{c % 2:02x}",  # copies 0 and 2 are the same bytes
                    sha256=f"{n:062x}{c % 2:02x}",
                    media_type="image",
                    width=2000 if n % 7 == 0 else 320,
                    height=1200 if n % 7 == 0 else 240,
                    pdq=dihedral[0],
                    pdq_quality=20 if n == 3 else 90,
                    pdq_dihedral=dihedral,
                    status=ItemStatus.NEW,
                    exif=exif if c == 0 else None,
                )
            )
    records.append(ItemRecord(path="/e/notes.txt", root="/e", status=ItemStatus.OTHER))
    return records


def test_clusters_from_the_state_equal_clusters_of_the_records(tmp_path: Path) -> None:
    records = _records()
    state = ScanState(tmp_path)
    state.save_unit(["unit"], records)
    media = MediaColumns(state.new_media())
    numbers, from_state = cluster_columns(media, threshold=31)
    state.set_clusters(media.keys, numbers)
    new = [r for r in records if r.status is ItemStatus.NEW]
    from_records = cluster_new_media(new, threshold=31)
    assert [c.as_json() for c in from_state] == [c.as_json() for c in from_records]
    assert any(len(c.members) == 3 for c in from_state)  # near copies joined
    assert any("camera serial number in EXIF" in c.reasons for c in from_state)
    assert any(c.reasons[-1].startswith("large picture") for c in from_state)
    stored = {r.path: r.cluster for r in state.records()}
    assert stored == {r.path: r.cluster for r in new} | {"/e/notes.txt": None}
    state.close()


def test_outputs_read_from_the_state_without_decoding_equal_the_records(tmp_path: Path) -> None:
    """results.jsonl lines, the manifest's file facts and thumbnails.jsonl's rows read from
    the state by SQL are what the decoded records give."""
    records = _records()
    records[0].thumbnail = b"\xff\xd8generated"
    records[1].exif = {"make": "Caf\u00e9 Cam"}  # text beyond ASCII
    state = ScanState(tmp_path)
    state.save_unit(["unit"], records)
    decoded = list(state.records(thumbnails=True))
    texts = [json.dumps(json.loads(t), ensure_ascii=False) for t in state.record_texts()]
    assert texts == [json.dumps(r.as_json(), ensure_ascii=False) for r in decoded]
    files = [(r.path, r.root, r.size, r.sha256) for r in state.files()]
    assert files == [(r.path, r.root, r.size, r.sha256) for r in decoded]
    thumbs = [(r.path, r.thumbnail) for r in state.thumbnails()]
    assert thumbs == [(r.path, r.thumbnail) for r in decoded if r.thumbnail]
    assert thumbs == [(records[0].path, b"\xff\xd8generated")]
    state.close()


def test_dihedral_queries_joined_in_blocks_give_the_same_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At a million items the dihedral queries are joined a block at a time: blocks of any
    size give the clusters one join gives."""
    new = [r for r in _records() if r.status is ItemStatus.NEW]
    whole = [c.as_json() for c in cluster_new_media(new, threshold=31)]
    monkeypatch.setattr(cluster, "_JOIN_BLOCK", 37)
    assert [c.as_json() for c in cluster_new_media(new, threshold=31)] == whole


def test_summary_fields_read_by_sql_equal_the_decoded_records(tmp_path: Path) -> None:
    records = _records()
    known = ItemRecord(path="/e/k.jpg", root="/e", size=5, media_type="image")
    known.status = ItemStatus.KNOWN
    known.matches = [Match("l", "known", "md5", 0, "A1", "baseline", None, 1)]
    peer = ItemRecord(path="/e/known.met", root="/e", p2p={"artifact": "known.met", "index": 0})
    state = ScanState(tmp_path)
    state.save_unit(["unit"], [*records, known, peer])

    def fields(r: ItemRecord) -> tuple[object, ...]:
        matches = r.matches if r.status is ItemStatus.KNOWN else []
        exif = r.exif if r.status is ItemStatus.NEW else None
        return (r.path, r.root, r.size, r.status, r.media_type, r.p2p, exif, matches)

    got = [fields(r) for r in state.summary_records()]
    assert got == [fields(r) for r in state.records()]
    assert ("/e/k.jpg", "/e", 5, ItemStatus.KNOWN, "image", None, None, known.matches) in got
    state.close()
