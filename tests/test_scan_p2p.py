"""An investigator scans seized P2P client folders: known files named by eMule and BitTorrent
records are found by hash even though the files are gone.

Benign generated pictures stand in for known material: the curator hashes them into a known
list with ``hashwatch lists add-media`` (so ED2K, SHA-1 and the BitTorrent v2 root are in the
list). The evidence holds only P2P records (built from the clients' documented layouts by the
builders) naming some of those pictures and some unknown files, plus one damaged known.met.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.review.rows import queue_targets
from hashwatch.scan.p2p import scan_records
from hashwatch.scan.walk import walk_evidence
from hashwatch.scan.worker import WorkerOptions, process_unit
from hashwatch.signals.digests import digest_bytes
from hashwatch.store.users import UserStore
from hashwatch.web.app import create_app
from hashwatch.web.pages.p2p_item import p2p_item_block
from tests import inprocess_cli
from tests import p2p_bt_builders as bt
from tests import p2p_emule_builders as emule
from tests.inprocess_cli import Run
from tests.media import jpeg_bytes, scene
from tests.serve_helpers import settings
from tests.test_review_consensus import CHEAP

run = inprocess_cli.run  # the fixture: ``hashwatch ...`` in this process, as the entry runs it

KNOWN_NAMES = ("beach-day.jpg", "garden-party.jpg")


def _media(tmp: Path) -> list[dict[str, Any]]:
    """Three benign pictures; the first two are the curator's known media."""
    folder = tmp / "curator"
    folder.mkdir()
    facts = []
    for n in range(3):
        path = folder / f"scene-{n}.jpg"
        path.write_bytes(jpeg_bytes(scene(100 + n)))  # over 16 KiB: a v2 root of its own
        facts.append({"path": path})
    return facts


def _hashes(paths: list[Path]) -> list[dict[str, Any]]:
    """The digests ``hashwatch hash`` prints for each file (ED2K, SHA-1, ...)."""
    return [digest_bytes(p.read_bytes()).as_dict() for p in paths]


def _known_met(entries: list[tuple[str, str, int]]) -> bytes:
    """A known.met naming files by (ED2K hex, name, size), in that order."""
    met = []
    for i, (ed2k, name, size) in enumerate(entries):
        entry = emule.known_entry(i, name=name, size=size)
        entry.ed2k = bytes.fromhex(ed2k)
        met.append(entry)
    return emule.known_met(met)


@pytest.fixture
def story(tmp_path: Path, run: Run) -> dict[str, Any]:
    media = _media(tmp_path)
    hashed = _hashes([m["path"] for m in media])
    add = run(
        "lists", "add-media", "seized-known", str(media[0]["path"]), str(media[1]["path"]),
        "--category", "1",
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    entries = [
        (hashed[0]["ed2k"], KNOWN_NAMES[0], hashed[0]["size"]),
        (emule.fake_ed2k("not in any list").hex(), "unknown-file.avi", 12_345),
        (hashed[1]["ed2k"], KNOWN_NAMES[1], hashed[1]["size"]),
        (hashed[2]["ed2k"], "not-listed.jpg", hashed[2]["size"]),
    ]
    met = _known_met(entries)
    return {"media": media, "hashed": hashed, "met": met, "tmp": tmp_path}


def _results(case: Path) -> list[dict[str, Any]]:
    lines = (case / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _scan(run: Run, evidence: Path, case: Path) -> list[dict[str, Any]]:
    out = run("scan", str(evidence), "--out", str(case), "--workers", "1")
    assert out.returncode in (0, 1), out.stderr  # 1: known material found
    assert "P2P client records" in out.stdout + out.stderr, out
    return _results(case)


def test_a_folder_of_p2p_records_finds_the_known_files(run: Run, story: dict[str, Any]) -> None:
    tmp = story["tmp"]
    evidence = tmp / "seized"
    (evidence / "eMule" / "config").mkdir(parents=True)
    (evidence / "eMule" / "config" / "known.met").write_bytes(story["met"])
    (evidence / "old").mkdir()
    damaged = story["met"][: len(story["met"]) - 40]  # the last record cut short
    (evidence / "old" / "known.met").write_bytes(damaged)
    pictures = [m["path"].read_bytes() for m in story["media"]]
    # A v2 torrent of the first picture and an unknown file; a qBittorrent download of the
    # second; saved magnet links (one by ED2K, one by info hash only).
    files = [(f"pics/{KNOWN_NAMES[0]}", pictures[0]), ("readme.txt", bt.benign(9, 2_000))]
    (evidence / "Torrents").mkdir()
    (evidence / "Torrents" / "holiday.torrent").write_bytes(
        bt.torrent(bt.info_dict(files, v2=True))
    )
    resume = bt.fastresume(
        bt.info_dict([(f"g/{KNOWN_NAMES[1]}", pictures[1])], v2=True), have=1, pieces=2
    )
    (evidence / "BT_backup").mkdir()
    (evidence / "BT_backup" / f"{'ab' * 20}.fastresume").write_bytes(resume)
    ed2k = story["hashed"][0]["ed2k"]
    links = f"magnet:?xt=urn:ed2k:{ed2k}&dn=beach.jpg\nmagnet:?xt=urn:btih:{'cd' * 20}&dn=x\n"
    (evidence / "links.txt").write_text(links)

    records = _scan(run, evidence, tmp / "case")
    by_path = {r["path"]: r for r in records}
    met_path = str(evidence / "eMule" / "config" / "known.met")
    known = [r for r in records if r.get("p2p") and r["status"] == "known"]
    names = sorted(r["p2p"]["name"] for r in known if r["p2p"]["artifact_path"] == met_path)
    assert names == sorted(KNOWN_NAMES)
    first = by_path[f"{met_path}!/#0"]
    assert first["p2p"]["client"] == "emule" and first["p2p"]["artifact"] == "known.met"
    assert first["ed2k"] == story["hashed"][0]["ed2k"]
    assert first["matches"][0]["list"] == "seized-known"
    assert first["matches"][0]["category"] == "1"
    assert first["p2p"]["dates"], first["p2p"]  # last shared, as eMule recorded it
    assert by_path[f"{met_path}!/#1"]["status"] == "other"  # no picture: not "new"
    assert by_path[f"{met_path}!/#3"]["status"] == "other"

    # The damaged copy: reported on the artifact, the records before the damage kept.
    old = str(evidence / "old" / "known.met")
    assert "not read in full" in (by_path[old]["error"] or "")
    kept = [r for r in records if r.get("p2p") and r["p2p"]["artifact_path"] == old]
    assert 1 <= len(kept) < 4
    assert by_path[f"{old}!/#0"]["status"] == "known"

    # BitTorrent: the torrent's and the resume data's files by their v2 root, the magnet by ED2K.
    torrent = [r for r in records if r.get("p2p") and r["p2p"]["artifact"] == "torrent"]
    beach = next(r for r in torrent if r["p2p"]["name"].endswith(KNOWN_NAMES[0]))
    assert beach["status"] == "known"
    assert {m["hash_type"] for m in beach["matches"]} == {"bt_v2_root"}
    assert all(r["status"] == "other" for r in torrent if r is not beach)
    resumed = [r for r in records if r.get("p2p") and r["p2p"]["client"] == "qbittorrent"]
    assert [r["status"] for r in resumed] == ["known"] and resumed[0]["p2p"]["dates"]["added"]
    magnets = [r for r in records if r.get("p2p") and r["p2p"]["artifact"] == "magnet"]
    assert [r["status"] for r in magnets] == ["known", "other"]
    assert "info-hash only" in magnets[1]["p2p"]["unmatchable"]

    report = (tmp / "case" / "report.html").read_text(encoding="utf-8")
    assert 'id="p2p"' in report and KNOWN_NAMES[0] in report
    assert "Records that cannot be matched" in report
    vics = json.loads((tmp / "case" / "case.vics.json").read_text(encoding="utf-8"))
    media = vics["value"][0]["Media"]
    p2p_media = [m for m in media if "P2P client record" in (m.get("Comments") or "")]
    assert {m["MediaFiles"][0]["FileName"] for m in p2p_media} >= set(KNOWN_NAMES)
    ed2k = {a["HashValue"].lower() for m in p2p_media for a in m.get("AlternativeHashes", [])}
    assert story["hashed"][0]["ed2k"] in ed2k


def test_a_record_whose_file_is_in_the_evidence_is_linked(run: Run, story: dict[str, Any]) -> None:
    tmp = story["tmp"]
    evidence = tmp / "seized"
    evidence.mkdir()
    (evidence / "known.met").write_bytes(story["met"])
    kept = evidence / "Incoming" / "renamed.jpg"
    kept.parent.mkdir()
    kept.write_bytes(story["media"][1]["path"].read_bytes())

    by_path = {r["path"]: r for r in _scan(run, evidence, tmp / "case")}
    record = by_path[f"{evidence / 'known.met'}!/#2"]
    assert record["p2p"]["linked_paths"] == [str(kept)]
    assert "P2P record" in by_path[str(kept)]["note"]
    assert by_path[str(kept)]["status"] == "known"
    assert "linked_paths" not in by_path[f"{evidence / 'known.met'}!/#0"]["p2p"]


def test_a_known_met_inside_a_zip_is_read(run: Run, story: dict[str, Any]) -> None:
    tmp = story["tmp"]
    evidence = tmp / "seized"
    evidence.mkdir()
    with zipfile.ZipFile(evidence / "backup.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("eMule/config/known.met", story["met"])

    by_path = {r["path"]: r for r in _scan(run, evidence, tmp / "case")}
    inner = f"{evidence / 'backup.zip'}!/eMule/config/known.met"
    assert by_path[f"{inner}!/#0"]["status"] == "known"
    assert by_path[f"{inner}!/#2"]["p2p"]["name"] == KNOWN_NAMES[1]


def test_known_records_wait_in_the_review_queue_with_their_facts(
    run: Run, story: dict[str, Any]
) -> None:
    tmp = story["tmp"]
    evidence = tmp / "seized"
    evidence.mkdir()
    (evidence / "known.met").write_bytes(story["met"])
    _scan(run, evidence, tmp / "case")
    imported = run("cases", "import", str(tmp / "case"))
    assert imported.returncode == 0, imported.stderr

    hw = Hashwatch(Settings(database_url=f"sqlite:///{tmp / 'hw.sqlite3'}", data_dir=tmp / "data"))
    try:
        case = hw.cases.all()[0]
        items = {i.path: i for i in hw.cases.items(case.case_uid)}
        record = items[f"{evidence / 'known.met'}!/#0"]
        assert record.scan_status == "known" and record.p2p is not None
        assert record.p2p["name"] == KNOWN_NAMES[0]
        with hw.db.read() as conn:
            queued = queue_targets(conn, case.id, ["pending"])
        targets = {str(q.target) for q in queued}
        known_ids = {i.id for i in items.values() if i.p2p and i.scan_status == "known"}
        assert {f"item:{n}" for n in known_ids} <= targets  # to confirm, like known files
        assert not hw.cases.media(record.id).available  # a record holds no media

        # A reviewer opens it: the record's facts, no picture; the API carries them too.
        UserStore(hw.db, hasher=CHEAP).add("ann", "reviewer", "ann's long passphrase", actor="t")
        app = create_app(hw, settings(background=False))
        with TestClient(app, follow_redirects=False) as browser:
            token = app.state.sign_in_links.issue("ann")
            assert browser.get("/review/login", params={"token": token}).status_code == 303
            page = browser.get(f"/review/cases/{case.case_uid}/targets/item:{record.id}")
            assert page.status_code == 200, page.text
            shown = page.text
            assert KNOWN_NAMES[0] in shown and "P2P client record" in shown
            assert f'id="pic-{record.id}"' not in shown  # nothing to reveal
            api = browser.get(f"/v1/cases/{case.case_uid}/items/{record.id}").json()
            assert api["p2p"]["client"] == "emule" and api["p2p"]["name"] == KNOWN_NAMES[0]
        block = p2p_item_block(record)
        assert KNOWN_NAMES[0] in block and "seized-known" in block and "<img" not in block
    finally:
        hw.close()


def test_records_are_read_from_a_streamed_tar_and_capped_per_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tar member cannot be rewound: the artifact is held in memory and read from there.
    An artifact with more records than the cap says where reading stopped."""
    met = _known_met([(emule.fake_ed2k(f"r{i}").hex(), f"file-{i}.bin", 10 + i) for i in range(5)])
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("config/known.met")
        info.size = len(met)
        tf.addfile(info, io.BytesIO(met))
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "backup.tar.gz").write_bytes(buf.getvalue())
    monkeypatch.setattr(scan_records, "MAX_RECORDS", 3)

    unit = list(walk_evidence([str(tmp_path / "ev")]))
    result = process_unit(WorkerOptions(), unit)
    by_path = {r.path: r for r in result.records}
    inner = f"{tmp_path / 'ev' / 'backup.tar.gz'}!/config/known.met"
    assert [by_path[f"{inner}!/#{i}"].p2p["name"] for i in range(3)] == [  # type: ignore[index]
        "file-0.bin",
        "file-1.bin",
        "file-2.bin",
    ]
    assert f"{inner}!/#3" not in by_path
    assert "more than 3 records" in (by_path[inner].error or "")
    assert len(result.queries) == len(result.records)
