"""The scan's outputs: HTML report, VICS case, manifest + verify, hash-chained audit log.

Every record is built in code from benign generated pictures; nothing touches a database.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from hashwatch.audit import (
    GENESIS,
    AuditLog,
    audit_head,
    canonical_bytes,
    verify_audit_log,
)
from hashwatch.lists.formats import open_list
from hashwatch.matching.match import Match
from hashwatch.report import html as html_report
from hashwatch.report.charts import bar_chart
from hashwatch.report.html import write_html_report
from hashwatch.report.manifest import (
    EvidenceRoot,
    TreeDigest,
    roots_from_digests,
    roots_from_records,
    verify_case,
    write_manifest,
)
from hashwatch.report.vics_case import write_vics_case
from hashwatch.scan.model import Cluster, ItemRecord, ItemStatus, ScanSummary
from hashwatch.signals.types import HashType
from tests.media import jpeg_bytes, scene

ROOT = "/evidence/disk1"
EVIL = f"{ROOT}/dl/<script>alert(1)</script>\x1b[31m\u202egpj.exe"


def _h(text: str, n: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _thumb(seed: int) -> bytes:
    img = scene(seed, (96, 72))
    return jpeg_bytes(img, 70)


def _image(path: str, status: ItemStatus, seed: int, **kw: Any) -> ItemRecord:
    return ItemRecord(
        path=path, root=ROOT, size=1000 + seed, md5=_h(path, 32), sha1=_h(path + "1", 40),
        sha256=_h(path + "2", 64), pdq=_h(path + "3", 64), ed2k=_h(path + "4", 32),
        media_type="image", mime="image/jpeg", status=status, thumbnail=_thumb(seed), **kw,
    )  # fmt: skip


def _known_match(category: str, list_name: str = "test-known", **kw: Any) -> Match:
    facts: dict[str, Any] = {
        "list": list_name,
        "kind": "known",
        "hash_type": "pdq",
        "distance": 6,
        "category": category,
        "scheme": "US",
        "series": "Series K",
        "entry_id": 42,
        "category_label": f"category {category}",
        "entry_status": "active",
        "list_version": 2,
    }
    return Match(**{**facts, **kw})


def _ignorable_match() -> Match:
    return Match("nsrl", "ignorable", "sha1", 0, None, "custom", None, 7)


def _scan() -> tuple[list[ItemRecord], list[Cluster]]:
    records: list[ItemRecord] = []
    clusters: list[Cluster] = []
    for number in (1, 2):
        members = []
        for i in range(3 if number == 1 else 10):
            path = f"{ROOT}/pics/c{number}/img{i}.jpg"
            exif = {"make": "Canon", "model": "EOS", "serial": "SN-1", "capture_time": "2023:01:01"}
            records.append(_image(path, ItemStatus.NEW, number * 50 + i, cluster=number, exif=exif))
            members.append(path)
        clusters.append(Cluster(number, members, members[0], 1.0 / number, ["near-duplicates"]))
    records.append(_image(EVIL, ItemStatus.NEW, 7, cluster=2, exif=None))
    clusters[1].members.append(EVIL)
    records.append(_image(f"{ROOT}/k/a.jpg", ItemStatus.KNOWN, 90, matches=[_known_match("1")]))
    records.append(_image(f"{ROOT}/k/b.jpg", ItemStatus.KNOWN, 91, matches=[_known_match("3")]))
    records.append(
        ItemRecord(path=f"{ROOT}/sys/x.dll", root=ROOT, md5=_h("dll", 32),
                   status=ItemStatus.IGNORABLE, matches=[_ignorable_match()])
    )  # fmt: skip
    records.append(ItemRecord(path=f"{ROOT}/notes.txt", root=ROOT, md5=_h("t", 32)))
    records.append(
        ItemRecord(path=f"{ROOT}/bad.jpg", root=ROOT, status=ItemStatus.ERROR,
                   error="truncated <JPEG>")
    )  # fmt: skip
    return records, clusters


def _summary(records: list[ItemRecord], clusters: list[Cluster]) -> ScanSummary:
    by_status: dict[str, int] = {}
    for r in records:
        by_status[r.status.value] = by_status.get(r.status.value, 0) + 1
    return ScanSummary(files=len(records), bytes=12345, by_status=by_status,
                       new_clusters=len(clusters))  # fmt: skip


CASE: dict[str, Any] = {
    "case_number": "TEST-1",
    "case_id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "started": "2024-01-01T00:00:00Z",
    "finished": "2024-01-01T00:01:00Z",
    "lists": [{"name": "test-known", "kind": "known", "version": 2, "source": "/l/k.json"}],
    "settings": {"pdq_policy": "dihedral", "pdq_threshold": 31},
}


# -- HTML ------------------------------------------------------------------------------------

VOID = {"meta", "img", "input", "br", "hr", "link", "source", "rect"}


class _Collector(HTMLParser):
    """Collects tags and attributes and checks that elements nest properly."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-3:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, _Collector]:
    records, clusters = _scan()
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_html_report(path, iter(records), clusters, _summary(records, clusters), CASE)
    text = path.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    parser.close()
    assert parser.stack == [], f"unclosed elements: {parser.stack}"
    return text, parser


def test_html_references_nothing_outside_the_file(report: tuple[str, _Collector]) -> None:
    text, parser = report
    for tag, attrs in parser.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed", "base"), tag
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith(("data:", "#")), f"<{tag} {name}={value[:60]!r}>"
    assert "http://" not in text and "https://" not in text
    assert "@import" not in text and "url(" not in text


def test_every_thumbnail_is_inline_and_blurred_by_default(report: tuple[str, _Collector]) -> None:
    _, parser = report
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) >= 10
    for attrs in images:
        assert (attrs.get("src") or "").startswith("data:image/jpeg;base64,")
        assert "blur" in (attrs.get("class") or "").split()
        assert attrs.get("alt")
    toggles = [a for t, a in parser.tags if t == "input" and "reveal" in (a.get("class") or "")]
    assert len(toggles) == len(images)
    assert all("checked" not in a for a in toggles)  # nothing revealed when the page opens
    labels = {a.get("for") for t, a in parser.tags if t == "label"}
    assert {a["id"] for a in toggles} <= labels  # each image has its own control


def test_new_clusters_come_before_known(report: tuple[str, _Collector]) -> None:
    text, _ = report
    positions = [text.index(f'id="{i}"') for i in ("cluster-1", "cluster-2", "known", "errors")]
    assert positions == sorted(positions)
    assert text.index('id="new"') < text.index('id="known"') < text.index('id="ignorable"')


def test_hostile_names_are_escaped(report: tuple[str, _Collector]) -> None:
    text, _ = report
    assert "<script" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\x1b" not in text and "\u202e" not in text  # shown as visible codes instead
    assert "\\x1b" in text and "\\u202e" in text
    assert "truncated &lt;JPEG&gt;" in text


def test_report_explains_itself(report: tuple[str, _Collector]) -> None:
    text, parser = report
    words = " ".join(parser.text)
    assert "lead for review, not a verdict" in words
    for _, explanation in html_report.STATUS_TEXT.values():
        assert explanation in words
    assert "TEST-1" in words and "test-known" in words and "SN-1" in words
    assert "Content-Security-Policy" in text


def test_thumbnail_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_report, "MAX_THUMBNAILS", 6)
    monkeypatch.setattr(html_report, "NEW_THUMBNAILS", 4)
    records = [_image(f"{ROOT}/n{i}.jpg", ItemStatus.NEW, i, cluster=i + 1) for i in range(8)]
    records += [
        _image(f"{ROOT}/k{i}.jpg", ItemStatus.KNOWN, 20 + i, matches=[_known_match("1")])
        for i in range(8)
    ]
    clusters = [Cluster(i + 1, [f"{ROOT}/n{i}.jpg"], f"{ROOT}/n{i}.jpg", 1.0, []) for i in range(8)]
    path = tmp_path / "r.html"
    write_html_report(path, records, clusters, ScanSummary(), {})
    text = path.read_text()
    assert text.count("<img ") == 6
    assert f"{ROOT}/n7.jpg" in text  # beyond the cap the path is still listed


# -- VICS case --------------------------------------------------------------------------------


def test_vics_case_reimports(tmp_path: Path) -> None:
    records, _ = _scan()
    dup = ItemRecord(**{**records[0].__dict__, "path": f"{ROOT}/copy.zip!/img0.jpg"})
    doc = ItemRecord(
        path=f"{ROOT}/k/list.pdf", root=ROOT, md5=_h("pdf", 32), sha1=_h("pdf1", 40),
        media_type=None, status=ItemStatus.KNOWN, matches=[_known_match("2", hash_type="md5")],
    )  # fmt: skip
    path = tmp_path / "case.vics.json"
    count = write_vics_case(path, [*records, dup, doc], CASE)
    parsed = open_list(path)  # format detected from the content
    assert parsed.header.format == "vics2"
    meta = parsed.header.metadata
    assert meta["CaseID"] == CASE["case_id"] and meta["CaseNumber"] == "TEST-1"
    assert meta["SourceApplicationName"] == "hashwatch"
    entries = {e.hash_of(HashType.MD5): e for e in parsed.records}
    assert len(entries) == count == 17  # 16 images (one of them twice) + the known PDF
    assert _h(f"{ROOT}/notes.txt", 32) not in entries and _h("dll", 32) not in entries

    first = entries[records[0].md5]
    assert first.hash_of(HashType.SHA1) == records[0].sha1
    assert first.hash_of(HashType.SHA256) == records[0].sha256
    assert first.hash_of(HashType.PDQ) == records[0].pdq
    assert first.hash_of(HashType.ED2K) == records[0].ed2k
    assert first.category is None  # new media are not graded
    assert first.extra["IsPrecategorized"] is False
    files = first.extra["MediaFiles"]
    assert [f["FilePath"] for f in files] == [records[0].path, dup.path]
    assert files[1]["FileName"] == "img0.jpg"
    assert files[1]["ParentFilePath"] == f"{ROOT}/copy.zip"
    assert first.extra["MediaSize"] == records[0].size
    assert first.extra["MimeType"] == "image/jpeg"

    known = entries[_h(f"{ROOT}/k/a.jpg", 32)]
    assert known.category == "1" and known.series == "Series K"
    # A list match is a pre-categorised lead (the list's code), never a reviewer's category.
    assert known.extra["IsPrecategorized"] is True
    assert known.extra["PrecategorizationSource"] == "hashwatch: known list test-known"
    assert all(e.extra["IsPrecategorized"] for e in entries.values() if e.category is not None)
    assert entries[_h("pdf", 32)].category == "2"  # a known non-media file is included
    props = {p["PropertyName"]: p["PropertyValue"] for p in known.extra["MediaMetadata"]}
    assert props["hashwatch.status"] == "known" and props["hashwatch.list"] == "test-known"
    raw = json.loads(path.read_text())
    assert raw["@odata.context"].endswith("/US/$metadata#Cases")
    assert raw["value"][0]["Media"][0]["Category"] == 1  # known media first, code as number


# -- manifest and verify ----------------------------------------------------------------------


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    records, clusters = _scan()
    case = tmp_path / "case"
    case.mkdir()
    log = AuditLog(case / "audit.log")
    log.append("scan.started", roots=[ROOT])
    with open(case / "results.jsonl", "w") as out:
        out.writelines(json.dumps(r.as_json()) + "\n" for r in records)
    write_html_report(case / "report.html", records, clusters, _summary(records, clusters), CASE)
    write_vics_case(case / "case.vics.json", records, CASE)
    log.append("scan.finished", files=len(records))
    write_manifest(
        case, started=CASE["started"], finished=CASE["finished"],
        evidence=roots_from_records(records), lists=CASE["lists"], settings=CASE["settings"],
        case_info={"case_number": "TEST-1"},
    )  # fmt: skip
    return case


def test_manifest_records_everything(case_dir: Path) -> None:
    manifest = json.loads((case_dir / "manifest.json").read_text())
    assert set(manifest["outputs"]) == {"results.jsonl", "report.html", "case.vics.json"}
    data = (case_dir / "results.jsonl").read_bytes()
    assert manifest["outputs"]["results.jsonl"] == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    assert manifest["audit_log"]["lines"] == 2
    assert manifest["evidence"][0]["kind"] == "directory"
    assert manifest["evidence"][0]["files"] == 16  # archive members are not tree files
    assert manifest["lists"][0]["version"] == 2 and manifest["settings"]["pdq_threshold"] == 31
    result = verify_case(case_dir)
    assert result.ok, result.problems
    AuditLog(case_dir / "audit.log").append("case.exported", to="usb")  # the log goes on
    assert verify_case(case_dir).ok


def _problems(case_dir: Path) -> set[tuple[str, str]]:
    result = verify_case(case_dir)
    assert not result.ok
    return {(p.kind, p.path) for p in result.problems}


def test_verify_reports_a_modified_byte(case_dir: Path) -> None:
    path = case_dir / "results.jsonl"
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    assert _problems(case_dir) == {("modified", "results.jsonl")}


def test_verify_reports_missing_and_added_files(case_dir: Path) -> None:
    (case_dir / "report.html").unlink()
    (case_dir / "extra.txt").write_text("x")
    assert _problems(case_dir) == {("missing", "report.html"), ("added", "extra.txt")}


def test_verify_reports_a_broken_audit_chain(case_dir: Path) -> None:
    log = case_dir / "audit.log"
    lines = log.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b"scan.started", b"scan.startex")
    log.write_bytes(b"".join(lines))
    assert ("audit", "audit.log") in _problems(case_dir)


def test_verify_reports_an_edited_manifest(case_dir: Path) -> None:
    path = case_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["settings"]["pdq_threshold"] = 70
    path.write_text(json.dumps(manifest))
    assert _problems(case_dir) == {("manifest", "manifest.json")}


def test_tree_digest_is_sha256sum_of_sorted_lines(tmp_path: Path) -> None:
    files = {"b.txt": b"bee", "a/z.bin": b"\x00\x01", "a/b c.txt": b"space", "é.txt": b"e"}
    tree = TreeDigest()
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
        tree.add(rel, hashlib.sha256(data).hexdigest(), len(data))
    tree.add("unreadable.jpg", None)
    listing = "".join(
        f"{hashlib.sha256(files[r]).hexdigest()}  {r}\n" for r in sorted(files, key=str.encode)
    )
    assert tree.hexdigest() == hashlib.sha256(listing.encode()).hexdigest()
    assert (tree.files, tree.not_hashed, tree.bytes) == (4, 1, 11)
    root = EvidenceRoot.of_directory(str(tmp_path), tree)
    assert root.digest == "tree-sha256-v1" and root.sha256 == tree.hexdigest()
    if shutil.which("sha256sum") and shutil.which("find"):
        shell = "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum"
        shell += " | sha256sum"
        out = subprocess.run(shell, shell=True, cwd=tmp_path, capture_output=True, text=True)
        assert out.stdout.split()[0] == tree.hexdigest()


# -- audit log --------------------------------------------------------------------------------


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    log = AuditLog(path)
    for n in range(1, 6):
        log.append("step", n=n, note=f"step {n}")
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _found(path: Path) -> list[tuple[int, str]]:
    result = verify_audit_log(path)
    assert not result.ok
    return [(p.line, p.kind) for p in result.problems]


def test_intact_log_verifies_and_chains(log_path: Path) -> None:
    result = verify_audit_log(log_path)
    assert result.ok and result.lines == 5 and result.problems == []
    entries = [json.loads(line) for line in _lines(log_path)]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == GENESIS
    raw = _lines(log_path)
    for before, entry in zip(raw, entries[1:], strict=False):
        assert entry["prev"] == hashlib.sha256(before.rstrip(b"\n")).hexdigest()
    for entry in entries:
        assert entry["hash"] == hashlib.sha256(canonical_bytes(entry)).hexdigest()
        assert entry["time"].endswith("Z")


def test_edited_line_is_found(log_path: Path) -> None:
    lines = _lines(log_path)
    lines[2] = lines[2].replace(b'"n":3', b'"n":9')
    log_path.write_bytes(b"".join(lines))
    assert _found(log_path) == [(3, "edited")]


def test_edited_line_with_recomputed_hash_is_found(log_path: Path) -> None:
    lines = _lines(log_path)
    entry = json.loads(lines[2])
    entry["details"]["n"] = 9
    entry["hash"] = hashlib.sha256(canonical_bytes(entry)).hexdigest()
    lines[2] = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
    log_path.write_bytes(b"".join(lines))
    problems = verify_audit_log(log_path).problems
    assert [(p.line, p.kind) for p in problems] == [(4, "chain")]
    assert "line 3" in problems[0].message


def test_removed_line_is_found(log_path: Path) -> None:
    lines = _lines(log_path)
    del lines[2]
    log_path.write_bytes(b"".join(lines))
    assert _found(log_path) == [(3, "removed")]


def test_reordered_lines_are_found(log_path: Path) -> None:
    lines = _lines(log_path)
    lines[2], lines[3] = lines[3], lines[2]
    log_path.write_bytes(b"".join(lines))
    assert _found(log_path) == [(3, "reordered"), (4, "reordered")]


def test_inserted_line_is_found(log_path: Path) -> None:
    lines = _lines(log_path)
    lines.insert(3, lines[1])
    log_path.write_bytes(b"".join(lines))
    assert _found(log_path) == [(4, "inserted")]


def test_bad_json_is_found(log_path: Path) -> None:
    lines = _lines(log_path)
    lines[1] = b"{not json\n"
    log_path.write_bytes(b"".join(lines))
    assert _found(log_path) == [(2, "bad_json")]


def test_torn_tail_is_found_and_repaired_on_append(log_path: Path) -> None:
    data = log_path.read_bytes()
    log_path.write_bytes(data[:-20])  # a crash in the middle of writing line 5
    assert _found(log_path) == [(5, "torn")]
    entry = AuditLog(log_path).append("scan.resumed")
    result = verify_audit_log(log_path)
    assert result.ok, result.problems
    events = [json.loads(line)["event"] for line in _lines(log_path)]
    assert events[-2:] == ["audit.torn_tail", "scan.resumed"]
    assert entry.seq == 6 and result.lines == 6


def test_truncation_at_a_line_end_needs_the_anchor(log_path: Path) -> None:
    anchor = audit_head(log_path)
    assert anchor.lines == 5
    log_path.write_bytes(b"".join(_lines(log_path)[:3]))
    assert verify_audit_log(log_path).ok  # a shorter chain is still a chain...
    problems = verify_audit_log(log_path, anchor=anchor).problems
    assert [(p.line, p.kind) for p in problems] == [(4, "truncated")]  # ...but not the one kept


def test_append_after_reopen_continues_the_chain(log_path: Path) -> None:
    last = _lines(log_path)[-1].rstrip(b"\n")
    entry = AuditLog(log_path).append("report.written", path=Path("/case/report.html"))
    assert entry.seq == 6
    assert json.loads(_lines(log_path)[-1])["prev"] == hashlib.sha256(last).hexdigest()
    assert json.loads(_lines(log_path)[-1])["details"] == {"path": "/case/report.html"}
    assert verify_audit_log(log_path).ok


def test_bulk_details_are_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.log")
    with pytest.raises(ValueError, match="small facts"):
        log.append("list.loaded", hashes=["0" * 64] * 5000)
    with pytest.raises(TypeError):
        log.append("odd", value=object())


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"

    def write(worker: int) -> None:
        log = AuditLog(path)  # one instance each: only the file lock serialises them
        for n in range(25):
            log.append("step", worker=worker, n=n, name="caf\u00e9 \udcff")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify_audit_log(path)
    assert result.ok, result.problems
    assert result.lines == 100


def test_chart_colours_stay_with_their_items() -> None:
    svg = bar_chart([("a", 1), ("b", 0), ("c", 2)], title="t", chart_id="x",
                    colors=["#111111", "#222222", "#333333"])  # fmt: skip
    assert "#111111" in svg and "#333333" in svg and "#222222" not in svg
    assert "<title>a: 1</title>" in svg and "b: 0" not in svg


def test_roots_from_digests_tells_files_from_directories() -> None:
    roots = roots_from_digests(
        {"/ev/disk.img": {"/ev/disk.img": "ab" * 32}, "/ev/dir": {"/ev/dir/x/y.jpg": "cd" * 32}}
    )
    by_path = {r.path: r for r in roots}
    assert by_path["/ev/disk.img"].kind == "file"
    assert by_path["/ev/disk.img"].sha256 == "ab" * 32
    tree = by_path["/ev/dir"]
    assert tree.kind == "directory" and tree.files == 1
    expected = hashlib.sha256(f"{'cd' * 32}  x/y.jpg\n".encode()).hexdigest()
    assert tree.sha256 == expected
