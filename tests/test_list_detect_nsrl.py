"""NSRL RDSv3 reading, and format detection from content whatever the file is called.

The RDS databases here are generated: digests of benign bytes (``b"benign-1"`` ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats import NSRL, detect_format, open_list
from hashwatch.lists.formats.nsrl import ReadBudget, connect_readonly
from hashwatch.lists.model import CategoryScheme, ListKind
from hashwatch.signals.types import HashType


def _digests(i: int) -> tuple[str, str, str]:
    data = f"benign-{i}".encode()
    return (
        hashlib.sha256(data).hexdigest().upper(),
        hashlib.sha1(data).hexdigest().upper(),
        hashlib.md5(data).hexdigest().upper(),
    )


def make_rds(
    path: Path, distinct: int, copies: int = 2, *, crc32: bool = True, index: bool = False
) -> Path:
    """An RDSv3-shaped database: each distinct file appears in ``copies`` packages."""
    db = sqlite3.connect(path)
    crc = "crc32 VARCHAR NOT NULL, " if crc32 else ""
    db.executescript(
        f"""
        CREATE TABLE FILE (sha256 VARCHAR NOT NULL, sha1 VARCHAR NOT NULL, md5 VARCHAR NOT NULL,
            {crc}file_name VARCHAR NOT NULL, file_size INTEGER NOT NULL,
            package_id INTEGER NOT NULL);
        CREATE TABLE PKG (package_id INTEGER NOT NULL, name VARCHAR NOT NULL,
            version VARCHAR NOT NULL, operating_system_id INTEGER, manufacturer_id INTEGER,
            language VARCHAR, application_type VARCHAR);
        CREATE TABLE OS (operating_system_id INTEGER, name VARCHAR, version VARCHAR,
            manufacturer_id INTEGER);
        CREATE TABLE MFG (manufacturer_id INTEGER, name VARCHAR);
        CREATE TABLE VERSION (version VARCHAR, build_set VARCHAR, build_date VARCHAR,
            release_date VARCHAR, description VARCHAR);
        CREATE VIEW DISTINCT_HASH AS SELECT DISTINCT sha256, sha1, md5 FROM FILE;
        INSERT INTO VERSION VALUES ('2026.09.1', 'modern', '2026-09-01', '2026-09-15', 'test');
        """
    )
    db.executemany(
        "INSERT INTO PKG VALUES (?, ?, '1.0', 1, 1, 'English', 'Utility')",
        [(p, f"Product {p}") for p in range(copies)],
    )
    rows = []
    for copy in range(copies):
        for i in range(distinct):
            extra = [f"{i:08X}"] if crc32 else []
            rows.append([*_digests(i), *extra, f"file{i}.dll", 100 + i, copy])
    marks = ", ".join("?" * len(rows[0]))
    db.executemany(f"INSERT INTO FILE VALUES ({marks})", rows)
    if index:
        db.execute("CREATE INDEX FILE_sha1 ON FILE(sha1)")
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("crc32", [True, False])
def test_nsrl_distinct_triples_normalised(tmp_path: Path, crc32: bool) -> None:
    path = make_rds(tmp_path / "rds.db", distinct=50, copies=3, crc32=crc32)
    before = sorted(os.listdir(tmp_path)), path.stat().st_mtime_ns
    parsed = open_list(path)
    assert parsed.header.format == NSRL
    assert parsed.header.suggested_kind is ListKind.IGNORABLE
    assert parsed.header.scheme is CategoryScheme.NONE
    assert parsed.header.metadata["version"] == "2026.09.1"
    records = list(parsed.records)
    assert len(records) == 50
    by_md5 = {r.hash_of(HashType.MD5): r for r in records}
    sha256, sha1, md5 = (d.lower() for d in _digests(7))
    record = by_md5[md5]
    assert record.hashes == ((HashType.MD5, md5), (HashType.SHA1, sha1), (HashType.SHA256, sha256))
    assert record.comment is not None and record.comment.startswith("file7.dll (Product ")
    assert record.extra["file_size"] == 107
    assert ("crc32" in record.extra) is crc32
    assert [r.source for r in records[:2]] == ["record 1", "record 2"]
    # Read-only: nothing created beside it, the database untouched.
    assert (sorted(os.listdir(tmp_path)), path.stat().st_mtime_ns) == before


def test_nsrl_uses_an_index_and_gives_the_same_triples(tmp_path: Path) -> None:
    plain = make_rds(tmp_path / "plain.db", distinct=40, copies=2)
    indexed = make_rds(tmp_path / "indexed.db", distinct=40, copies=2, index=True)
    hashes = [sorted(r.hashes for r in open_list(p).records) for p in (plain, indexed)]
    assert hashes[0] == hashes[1] and len(hashes[0]) == 40


def test_nsrl_bad_digest_names_the_record(tmp_path: Path) -> None:
    path = make_rds(tmp_path / "rds.db", distinct=3, copies=1)
    db = sqlite3.connect(path)
    db.execute("UPDATE FILE SET md5 = 'XYZ' WHERE file_name = 'file0.dll'")
    db.commit()
    db.close()
    with pytest.raises(ListFormatError, match="md5") as info:
        list(open_list(path, fmt=NSRL).records)
    assert info.value.where is not None and info.value.where.startswith("record ")


def test_nsrl_missing_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(ListFormatError, match="cannot open"):
        open_list(tmp_path / "absent.db", fmt=NSRL)
    assert not (tmp_path / "absent.db").exists()


# --- detection ------------------------------------------------------------------------------

MD5_1 = hashlib.md5(b"benign-1").hexdigest()
SHA1_1 = hashlib.sha1(b"benign-1").hexdigest()
CTX2 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"
CTX1 = "http://github.com/ICMEC/ProjectVic/DataModels/1.2.xml#Cases"


def test_detect_vics_by_content_whatever_the_extension(tmp_path: Path) -> None:
    v2 = {"@odata.context": CTX2, "value": [{"CaseID": "x", "Media": [{"MD5": MD5_1}]}]}
    v1 = {"odata.metadata": CTX1, "value": [{"Media": [{"MD5": MD5_1}]}]}
    (tmp_path / "hashes.csv").write_bytes(b"\xef\xbb\xbf \n\t" + json.dumps(v2).encode())
    (tmp_path / "old.txt").write_text(json.dumps(v1))
    (tmp_path / "set.db").write_text(json.dumps({"value": [{"MD5": MD5_1}]}))
    assert detect_format(tmp_path / "hashes.csv") == "vics2"
    assert detect_format(tmp_path / "old.txt") == "vics1"
    assert detect_format(tmp_path / "set.db") == "vics2"
    assert [r.hashes for r in open_list(tmp_path / "hashes.csv").records] == [
        ((HashType.MD5, MD5_1),)
    ]


def test_detect_csv_text_and_nsrl_by_content(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text(f"Category,MD5\n1,{MD5_1}\n")
    (tmp_path / "pairs.vics").write_text(f"hash_type;hash\nmd5;{MD5_1}\n")
    (tmp_path / "list.csv").write_text(f"# exported\n\n{MD5_1}\nsha1 {SHA1_1}\n")
    (tmp_path / "tabs.csv").write_text(f"md5\t{MD5_1}\n")  # a <type><TAB><hash> line
    make_rds(tmp_path / "nsrl.txt", distinct=2)
    assert detect_format(tmp_path / "list.json") == "csv"
    assert detect_format(tmp_path / "pairs.vics") == "csv"
    assert detect_format(tmp_path / "list.csv") == "text"
    assert detect_format(tmp_path / "tabs.csv") == "text"
    assert detect_format(tmp_path / "nsrl.txt") == "nsrl"
    assert len(list(open_list(tmp_path / "nsrl.txt").records)) == 2


def test_detect_bare_64_hex_text(tmp_path: Path) -> None:
    path = tmp_path / "pdq.dat"
    path.write_text(hashlib.sha256(b"benign-1").hexdigest() + "\n")
    assert detect_format(path) == "text"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"", "empty"),
        (b"\xff\xfeh\x00", "UTF-16"),
        (json.dumps({"data": [1]}).encode(), "not a VICS list"),
        (b"name,size\nreport.pdf,12\n", "not a recognised hash list"),
        (b"# only a comment\n\n", "holds no hash"),
        (b"\xc3\x28 not utf-8 at all, more text here", "neither UTF-8"),
    ],
)
def test_detect_rejects_unknown_content(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    with pytest.raises(ListFormatError, match=fragment):
        detect_format(path)


def test_detect_rejects_sqlite_that_is_not_nsrl(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(ListFormatError, match="no NSRL RDSv3 FILE table"):
        detect_format(path)


RECURSIVE_FILE = """
    CREATE TABLE PKG (package_id INTEGER, name VARCHAR, version VARCHAR);
    CREATE VIEW FILE AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
        SELECT printf('%032d', n % 7) AS md5, 'f' AS file_name, 1 AS package_id FROM r;
"""


def _crafted(path: Path, script: str) -> Path:
    db = sqlite3.connect(path)
    db.executescript(script)
    db.commit()
    db.close()
    return path


def _bounded(fn: Callable[[], object], seconds: float = 60.0) -> BaseException | None:
    """Run ``fn`` in a thread; fail the test if it is still running after ``seconds``."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:  # the test asserts on it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    return outcome[0]


def test_a_crafted_nsrl_file_with_a_recursive_view_is_refused_quickly(tmp_path: Path) -> None:
    path = _crafted(tmp_path / "crafted.db", RECURSIVE_FILE)
    assert path.stat().st_size < 16_384
    for read in (
        lambda: detect_format(path),
        lambda: list(open_list(path, "nsrl").records),
    ):
        error = _bounded(read)
        assert isinstance(error, ListFormatError), error
        assert "no NSRL RDSv3 FILE table" in str(error)
    # A view under another name the reader uses is refused too: PKG must be a real table.
    rds = make_rds(tmp_path / "rds.db", 3)
    with sqlite3.connect(rds) as db:
        db.executescript(
            "DROP TABLE PKG; CREATE VIEW PKG AS WITH RECURSIVE r(n) AS "
            "(SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n AS package_id, 'p' AS name, "
            "'1' AS version FROM r;"
        )
    error = _bounded(lambda: list(open_list(rds, "nsrl").records))
    assert isinstance(error, ListFormatError) and "PKG is a view, not a table" in str(error)


def test_a_generated_digest_column_is_not_read(tmp_path: Path) -> None:
    path = _crafted(
        tmp_path / "generated.db",
        "CREATE TABLE FILE (x INTEGER, md5 VARCHAR GENERATED ALWAYS AS (printf('%032d', x)));"
        "INSERT INTO FILE (x) VALUES (1);",
    )
    with pytest.raises(ListFormatError, match="no NSRL RDSv3 FILE table"):
        detect_format(path)


def test_the_read_budget_stops_a_query_that_runs_away(tmp_path: Path) -> None:
    path = make_rds(tmp_path / "rds.db", 2)
    budget = ReadBudget(path.stat().st_size, steps=1_000_000)
    runaway = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r"

    def run_away() -> None:
        db = connect_readonly(path, budget)
        try:
            db.execute(runaway).fetchall()
        finally:
            db.close()

    error = _bounded(run_away)
    assert isinstance(error, sqlite3.OperationalError) and budget.exceeded
    assert "steps" in str(budget.error(str(path)))
    # The file is opened read-only: nothing can be written through the connection.
    db = connect_readonly(path)
    with pytest.raises(sqlite3.OperationalError):
        db.execute("DELETE FROM FILE")
    db.close()
