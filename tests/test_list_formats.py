"""Hash-list formats: VICS and CSV reading, writing, errors, round trips; the registry.

Every hash here is a digest of generated benign bytes (``b"benign-1"`` ...).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hashwatch.errors import ListFormatError
from hashwatch.lists.formats import (
    CSV,
    FORMATS,
    TEXT,
    VICS1,
    VICS2,
    VPDQ,
    open_list,
    write_list,
)
from hashwatch.lists.formats.csv_format import write_csv
from hashwatch.lists.model import (
    CategoryScheme,
    EntryRecord,
    EntryStatus,
    ListHeader,
    VideoFrameHash,
)
from hashwatch.signals.types import HashType

BOM = b"\xef\xbb\xbf"
CTX2 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{}/$metadata#{}"
CTX1 = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Cases"


def md5(i: int) -> str:
    return hashlib.md5(f"benign-{i}".encode()).hexdigest()


def sha1(i: int) -> str:
    return hashlib.sha1(f"benign-{i}".encode()).hexdigest()


def sha256(i: int) -> str:
    return hashlib.sha256(f"benign-{i}".encode()).hexdigest()


def pdq(i: int) -> str:
    # Any 256-bit value is a well-formed PDQ hash; derive one from benign bytes.
    return hashlib.sha256(f"benign-pdq-{i}".encode()).hexdigest()


def ed2k(i: int) -> str:
    return hashlib.md5(f"benign-ed2k-{i}".encode()).hexdigest()


def write_json(path: Path, data: Any, bom: bool = False) -> Path:
    path.write_bytes((BOM if bom else b"") + json.dumps(data, indent=1).encode())
    return path


def read_all(path: Path, **kwargs: Any) -> tuple[ListHeader, list[EntryRecord]]:
    parsed = open_list(path, **kwargs)
    return parsed.header, list(parsed.records)


def without_source(records: list[EntryRecord]) -> list[EntryRecord]:
    return [dataclasses.replace(r, source="") for r in records]


# --- VICS -----------------------------------------------------------------------------------


def test_vics1_case_file(tmp_path: Path) -> None:
    data = {
        "odata.metadata": CTX1,
        "value": [
            {
                "CaseID": "8c7d5f3e-0000-4000-8000-000000000001",
                "CaseNumber": "2026-001",
                "ContactName": "Analyst",
                "Media": [
                    {
                        "odata.id": f'Media("{md5(1).upper()}")',
                        "MediaID": 1,
                        "Category": 1,
                        "MD5": md5(1).upper(),
                        "SHA1": sha1(1).upper(),
                        "VictimIdentified": False,
                        "MediaFiles": [{"FileName": "a.jpg", "FilePath": "C:/x"}],
                    },
                    # No MD5 field: the key comes from odata.id.
                    {"odata.id": f'Media("{md5(2)}")', "MediaID": 2, "Category": None},
                ],
            }
        ],
    }
    header, records = read_all(write_json(tmp_path / "case.json", data))
    assert header.format == VICS1
    assert header.scheme is CategoryScheme.US
    assert header.metadata == {
        "CaseID": "8c7d5f3e-0000-4000-8000-000000000001",
        "CaseNumber": "2026-001",
        "ContactName": "Analyst",
    }
    assert records[0].hashes == ((HashType.MD5, md5(1)), (HashType.SHA1, sha1(1)))
    assert records[0].category == "1"
    assert records[0].victim_identified is False
    assert records[0].source == "record 1"
    assert records[0].extra["MediaFiles"] == [{"FileName": "a.jpg", "FilePath": "C:/x"}]
    assert "odata.id" not in records[0].extra
    assert records[1].hashes == ((HashType.MD5, md5(2)),)
    assert records[1].category is None


def _vics2_case(scheme: str = "UK") -> dict[str, Any]:
    return {
        "@odata.context": CTX2.format(scheme, "Cases"),
        "value": [
            {
                "CaseID": "8c7d5f3e-0000-4000-8000-000000000002",
                "SourceApplicationName": "test",
                "Media": [
                    {
                        "MediaID": 10,
                        "Category": "A",
                        "MD5": md5(1),
                        "SHA1": sha1(1),
                        "VictimIdentified": "true",
                        "OffenderIdentified": "false",
                        "IsDistributed": "1",
                        "Series": "series-x",
                        "Tags": "tag one, tag2,,",
                        "Comments": "first",
                        "DateUpdated": "2026-11-01T10:00:00Z",
                        "MediaSize": 12345,
                        "MimeType": "image/jpeg",
                        "Segments": [{"Start": 0, "End": 5, "Category": "A"}],
                        "AlternativeHashes": [
                            {"HashName": "SHA-256", "HashValue": sha256(1).upper()},
                            {"HashName": "pdq", "HashValue": pdq(1)},
                            {"HashName": "ED2K", "HashValue": ed2k(1)},
                            {"HashName": "PhotoDNA", "HashValue": "AAAA/opaque=="},
                        ],
                    },
                    {
                        "MediaID": 11,
                        "Category": None,
                        "MD5": md5(2),
                        "VictimIdentified": "1",
                        "AlternativeHashes": [{"HashName": "SHA256", "HashValue": sha256(2)}],
                    },
                    {"MediaID": 12, "Category": 3, "MD5": md5(3), "VictimIdentified": "false"},
                    {
                        "MediaID": 13,
                        "Category": "2",
                        "AlternativeHashes": [{"HashName": "PDQ", "HashValue": pdq(4)}],
                    },
                ],
            }
        ],
    }


def test_vics2_case_file_with_bom_string_booleans_and_alternative_hashes(tmp_path: Path) -> None:
    header, records = read_all(write_json(tmp_path / "c.json", _vics2_case(), bom=True))
    assert header.format == VICS2
    assert header.scheme is CategoryScheme.UK
    assert header.metadata["CaseID"] == "8c7d5f3e-0000-4000-8000-000000000002"
    first = records[0]
    assert first.hashes == (
        (HashType.MD5, md5(1)),
        (HashType.SHA1, sha1(1)),
        (HashType.SHA256, sha256(1)),
        (HashType.PDQ, pdq(1)),
        (HashType.ED2K, ed2k(1)),
    )
    assert first.category == "A"
    assert first.victim_identified is True
    assert first.series == "series-x"
    assert first.tags == ("tag one", "tag2")
    assert first.comment == "first"
    assert first.date == "2026-11-01T10:00:00Z"
    # Unmodelled fields are kept as written, unknown hash names included.
    assert first.extra["OffenderIdentified"] == "false"
    assert first.extra["IsDistributed"] == "1"
    assert first.extra["MediaSize"] == 12345
    assert first.extra["Segments"] == [{"Start": 0, "End": 5, "Category": "A"}]
    assert first.extra["AlternativeHashes"] == [
        {"HashName": "PhotoDNA", "HashValue": "AAAA/opaque=="}
    ]
    assert first.extra["MediaID"] == 10
    assert records[1].victim_identified is True
    assert records[1].category is None
    assert records[1].hash_of(HashType.SHA256) == sha256(2)
    assert records[2].victim_identified is False
    assert records[2].category == "3"
    assert records[3].hashes == ((HashType.PDQ, pdq(4)),)
    assert [r.source for r in records] == ["record 1", "record 2", "record 3", "record 4"]


def test_vics2_flat_hash_set_with_bom(tmp_path: Path) -> None:
    data = {
        "@odata.context": CTX2.format("Default", "Media"),
        "value": [
            {"MediaID": 1, "Category": 0, "MD5": md5(1), "SHA1": sha1(1)},
            {"MediaID": 2, "Category": "5", "MD5": md5(2), "VictimIdentified": None},
        ],
    }
    header, records = read_all(write_json(tmp_path / "set.json", data, bom=True))
    assert header.format == VICS2
    assert header.scheme is CategoryScheme.US  # Default -> US
    assert header.metadata == {}
    assert [r.hash_of(HashType.MD5) for r in records] == [md5(1), md5(2)]
    assert [r.category for r in records] == ["0", "5"]


def test_vics_bare_value_hash_set_without_context(tmp_path: Path) -> None:
    data = {"value": [{"MD5": md5(1)}, {"MD5": md5(2), "Category": 2}]}
    header, records = read_all(write_json(tmp_path / "bare.json", data))
    assert header.format == VICS2
    assert len(records) == 2


def test_vics_custom_and_unknown_scheme(tmp_path: Path) -> None:
    header, _ = read_all(write_json(tmp_path / "c.json", _vics2_case("CUSTOM")))
    assert header.scheme is CategoryScheme.CUSTOM
    with pytest.raises(ListFormatError, match="unknown VICS category scheme 'XX'"):
        open_list(write_json(tmp_path / "x.json", _vics2_case("XX")))


def _media_error(tmp_path: Path, bad: dict[str, Any]) -> ListFormatError:
    data = _vics2_case("US")
    data["value"][0]["Media"].insert(1, bad)  # becomes record 2
    parsed = open_list(write_json(tmp_path / "bad.json", data), fmt=VICS2)
    with pytest.raises(ListFormatError) as info:
        list(parsed.records)
    return info.value


def test_vics_record_without_hash_names_its_position(tmp_path: Path) -> None:
    exc = _media_error(tmp_path, {"MediaID": 99, "Category": 1, "MD5": ""})
    assert exc.where == "record 2"
    assert "no usable hash" in str(exc)


def test_vics_malformed_hashes_name_record_and_field(tmp_path: Path) -> None:
    exc = _media_error(tmp_path, {"MD5": "abc123"})
    assert exc.where == "record 2"
    assert "MD5" in str(exc) and "32 hex" in str(exc)
    bad_alt = {"MD5": md5(9), "AlternativeHashes": [{"HashName": "SHA256", "HashValue": "zz"}]}
    exc = _media_error(tmp_path, bad_alt)
    assert exc.where == "record 2" and "AlternativeHashes[0]" in str(exc)
    exc = _media_error(tmp_path, {"MD5": md5(9), "AlternativeHashes": [{"Value": "x"}]})
    assert exc.where == "record 2" and "HashName" in str(exc)


def test_vics_bad_fields_name_the_record(tmp_path: Path) -> None:
    exc = _media_error(tmp_path, {"MD5": md5(9), "VictimIdentified": "maybe"})
    assert exc.where == "record 2" and "VictimIdentified" in str(exc)
    exc = _media_error(tmp_path, {"MD5": md5(9), "Category": [1]})
    assert exc.where == "record 2" and "Category" in str(exc)
    exc = _media_error(tmp_path, "not an object")  # type: ignore[arg-type]
    assert exc.where == "record 2"


def test_vics_truncated_json_names_the_record(tmp_path: Path) -> None:
    text = json.dumps(_vics2_case("US"))
    cut = text.index(md5(3)) + 5  # inside record 3
    path = tmp_path / "cut.json"
    path.write_text(text[:cut])
    parsed = open_list(path)
    with pytest.raises(ListFormatError) as info:
        list(parsed.records)
    assert info.value.where == "record 3"


def test_vics_not_vics_json(tmp_path: Path) -> None:
    with pytest.raises(ListFormatError, match="no 'value' array"):
        open_list(write_json(tmp_path / "x.json", {"hashes": []}), fmt=VICS2)
    with pytest.raises(ListFormatError, match="not a JSON object"):
        open_list(write_json(tmp_path / "y.json", [1, 2]), fmt=VICS2)


def test_vics2_round_trip_is_lossless(tmp_path: Path) -> None:
    source = write_json(tmp_path / "in.json", _vics2_case("UK"), bom=True)
    header, records = read_all(source)
    out = tmp_path / "out.json"
    assert write_list(out, VICS2, header, records) == len(records)
    header2, records2 = read_all(out)
    assert header2 == header
    assert [r.extra.pop("MediaID") for r in records2] == [1, 2, 3, 4]  # renumbered
    for r in records:
        r.extra.pop("MediaID")
    assert records2 == records
    assert [r.extra for r in records2] == [r.extra for r in records]


def _code_records() -> list[EntryRecord]:
    """Records as the API might build them: every field, odd orders, non-text extras."""
    return [
        EntryRecord(
            hashes=((HashType.MD5, md5(1)), (HashType.SHA1, sha1(1)), (HashType.PDQ, pdq(1))),
            category="1",
            series="s1",
            victim_identified=True,
            tags=("a", "b c"),
            comment="line one\nline two, with comma",
            date="2026-11-24",
            extra={"OffenderIdentified": True, "MediaFiles": [{"FileName": "x.jpg"}], "n": 1.5},
        ),
        EntryRecord(
            hashes=((HashType.SHA256, sha256(2)), (HashType.MD5, md5(2))),
            category="B",
            status=EntryStatus.REVOKED,
            victim_identified=False,
        ),
        EntryRecord(
            hashes=(
                (HashType.MD5, md5(3)),
                (HashType.SHA1_BASE32, "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"),
            ),
            status=EntryStatus.DISPUTED,
            extra={"note": "ünïcödé"},
        ),
        EntryRecord(hashes=((HashType.ED2K, ed2k(4)),), category="07"),
        EntryRecord(
            hashes=((HashType.PDQ, pdq(5)), (HashType.PDQ, pdq(6))),
            status=EntryStatus.WITHDRAWN,
        ),
    ]


def test_vics2_round_trip_of_api_records(tmp_path: Path) -> None:
    records = _code_records()
    header = ListHeader(format=VICS2, scheme=CategoryScheme.CUSTOM, metadata={"CaseID": "c-1"})
    out = tmp_path / "o.json"
    write_list(out, VICS2, header, iter(records))
    header2, back = read_all(out)
    assert header2.scheme is CategoryScheme.CUSTOM and header2.metadata == {"CaseID": "c-1"}
    for r in back:
        r.extra.pop("MediaID")
    # Record 2 is keyed by SHA-256 but also has an MD5: HashOrder keeps SHA-256 first.
    assert back[1].hashes[0][0] is HashType.SHA256
    assert without_source(back) == without_source(records)
    assert [r.extra for r in back] == [r.extra for r in records]
    doc = json.loads(out.read_bytes())
    assert ["HashOrder" in m for m in doc["value"][0]["Media"]] == [
        False,
        True,
        False,
        False,
        False,
    ]


def test_vics2_writer_case_file_or_flat_set(tmp_path: Path) -> None:
    records = _code_records()[:2]
    flat = io.BytesIO()
    write_list(flat, VICS2, ListHeader(format=VICS2), records)
    doc = json.loads(flat.getvalue())
    assert doc["@odata.context"].endswith("/Default/$metadata#Media")
    assert [m["MediaID"] for m in doc["value"]] == [1, 2]
    assert doc["value"][0]["Category"] == 1 and doc["value"][1]["Category"] == "B"
    case = io.BytesIO()
    header = ListHeader(format=VICS2, scheme=CategoryScheme.US, metadata={"CaseNumber": "7"})
    write_list(case, VICS2, header, records)
    doc = json.loads(case.getvalue())
    assert doc["@odata.context"].endswith("/US/$metadata#Cases")
    assert doc["value"][0]["CaseNumber"] == "7"
    assert [m["MD5"] for m in doc["value"][0]["Media"]] == [md5(1), md5(2)]
    empty = io.BytesIO()
    write_list(empty, VICS2, header, [])
    assert json.loads(empty.getvalue())["value"][0]["Media"] == []


# --- CSV ------------------------------------------------------------------------------------


def test_csv_hash_columns_by_type(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(
        BOM
        + (
            "MD5,Sha1,SHA-256,Category,Tags,victim_identified,Notes,status,date,comment\n"
            f'{md5(1).upper()},{sha1(1)},{sha256(1)},1,"a, b",yes,note one,,2026-01-02,hi\n'
            f"{md5(2)},,,,,0,,revoked,,\n"
            ",,,,,,,,,\n"
            f",{sha1(3)},,2,,,,,,\n"
        ).encode()
    )
    header, records = read_all(path)
    assert header.format == CSV and header.scheme is None
    assert records[0].hashes == (
        (HashType.MD5, md5(1)),
        (HashType.SHA1, sha1(1)),
        (HashType.SHA256, sha256(1)),
    )
    assert records[0].tags == ("a", "b")
    assert records[0].victim_identified is True
    assert records[0].extra == {"Notes": "note one"}
    assert records[0].date == "2026-01-02" and records[0].comment == "hi"
    assert records[1].status is EntryStatus.REVOKED and records[1].victim_identified is False
    assert records[2].hashes == ((HashType.SHA1, sha1(3)),)
    assert [r.source for r in records] == ["line 2", "line 3", "line 5"]


def test_csv_hash_type_and_hash_columns(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(
        f"hash_type,hash,series\npdq,{pdq(1)},s\nSHA256,{sha256(2)},\n,{md5(3)},\n,{pdq(4)},\n"
    )
    header, records = read_all(path, default_hash_type=HashType.PDQ)
    assert header.scheme is CategoryScheme.NONE
    assert [r.hashes[0] for r in records] == [
        (HashType.PDQ, pdq(1)),
        (HashType.SHA256, sha256(2)),
        (HashType.MD5, md5(3)),
        (HashType.PDQ, pdq(4)),
    ]
    with pytest.raises(ListFormatError, match="SHA-256 or PDQ") as info:
        list(open_list(path).records)
    assert info.value.where == "line 5"


def test_csv_semicolon_and_tab_delimiters(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(f"md5;category\n{md5(1)};2\n")
    (tmp_path / "t.csv").write_text(f"sha1\tcategory\n{sha1(1)}\t2\n")
    assert read_all(tmp_path / "s.csv")[1][0].category == "2"
    assert read_all(tmp_path / "t.csv")[1][0].hashes == ((HashType.SHA1, sha1(1)),)


@pytest.mark.parametrize(
    ("body", "where", "fragment"),
    [
        (f"{md5(1)},1\n{md5(2)[:-1]},2\n", "line 3", "column md5"),
        (f"{md5(1)},1\n,2\n", "line 3", "no hash"),
        (f"{md5(1)},1\n{md5(2)},1,extra\n", "line 3", "3 fields"),
        (f'{md5(1)},"multi\nline"\n{md5(2)},{"x" * 3}\nzz,1\n', "line 5", "column md5"),
    ],
)
def test_csv_errors_name_the_line(tmp_path: Path, body: str, where: str, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("md5,comment\n" + body)
    with pytest.raises(ListFormatError) as info:
        list(open_list(path, fmt=CSV).records)
    assert info.value.where == where
    assert fragment in str(info.value)


def test_csv_field_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"md5,status,victim_identified\n{md5(1)},gone,\n")
    with pytest.raises(ListFormatError, match="status: unknown value 'gone'"):
        list(open_list(path).records)
    path.write_text(f"md5,status,victim_identified\n{md5(1)},,perhaps\n")
    with pytest.raises(ListFormatError, match="victim_identified: expected a boolean"):
        list(open_list(path).records)
    path.write_text(f"md5,hash_order\n{md5(1)},sha256 md5\n")
    with pytest.raises(ListFormatError, match="hash_order names 'sha256'") as info:
        list(open_list(path).records)
    assert info.value.where == "line 2"
    path.write_text(f"md5,comment,Comments\n{md5(1)},a,b\n")
    with pytest.raises(ListFormatError, match="repeat a field"):
        open_list(path)
    path.write_text("name,size\nx,1\n")
    with pytest.raises(ListFormatError, match="names no hash column") as info:
        open_list(path, fmt=CSV)
    assert info.value.where == "line 1"


def test_csv_round_trip_is_lossless(tmp_path: Path) -> None:
    records = _code_records()
    out = tmp_path / "o.csv"
    assert write_list(out, CSV, ListHeader(format=CSV), iter(records)) == len(records)
    _, back = read_all(out)
    assert without_source(back) == without_source(records)
    assert [r.extra for r in back] == [r.extra for r in records]
    header_line = out.read_text().splitlines()[0]
    assert header_line.startswith("md5,sha1,pdq,sha256,sha1_base32,ed2k,category")
    assert header_line.endswith("hash_order,extra")


def test_csv_round_trip_of_vics_records(tmp_path: Path) -> None:
    _, records = read_all(write_json(tmp_path / "in.json", _vics2_case("UK")))
    out = tmp_path / "o.csv"
    write_list(out, CSV, ListHeader(format=CSV), records)
    _, back = read_all(out)
    assert without_source(back) == without_source(records)
    assert [r.extra for r in back] == [r.extra for r in records]


def test_csv_writer_streams_and_sequences_agree(tmp_path: Path) -> None:
    records = _code_records()
    from_list, from_iter = io.BytesIO(), io.BytesIO()

    def gen() -> Iterator[EntryRecord]:
        yield from records

    write_csv(from_list, ListHeader(format=CSV), records)
    write_csv(from_iter, ListHeader(format=CSV), gen())
    assert from_list.getvalue() == from_iter.getvalue()
    assert not from_iter.closed  # the caller's stream stays open


def test_csv_minimal_columns_without_extra(tmp_path: Path) -> None:
    out = io.BytesIO()
    write_csv(out, ListHeader(format=CSV), [EntryRecord(hashes=((HashType.MD5, md5(1)),))])
    assert out.getvalue().decode().splitlines()[0] == (
        "md5,category,series,victim_identified,tags,comment,date,status"
    )


FORMULAS = ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx", "'=quoted", "''", "'", "'plain"]


def test_csv_export_neutralises_formulas_and_reads_them_back(tmp_path: Path) -> None:
    records = [
        EntryRecord(
            hashes=((HashType.MD5, md5(n)),),
            category=None if value[:1] in "\t\r" else value,  # a category cell is stripped
            series=value,
            comment=value,
            extra={"note": value},
        )
        for n, value in enumerate(FORMULAS)
    ]
    out = tmp_path / "o.csv"
    write_list(out, CSV, ListHeader(format=CSV), records)
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    for row in rows[1:]:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), row  # no formula runs
    series = [row[rows[0].index("series")] for row in rows[1:]]
    assert series[:6] == ["'=1+1", "'+cmd", "'-2", "'@SUM(A1)", "'\tx", "'\rx"]
    assert series[6:] == ["''=quoted", "'''", "'", "'plain"]
    _, back = read_all(out)
    assert without_source(back) == without_source(records)
    assert [r.extra for r in back] == [r.extra for r in records]


def test_csv_import_strips_exactly_the_neutralising_quote(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(
        f"md5,category,series,comment\n{md5(1)},'-1,'=A1,'plain\n{md5(2)},1,''=x,'@home\n"
    )
    _, records = read_all(path)
    assert [(r.category, r.series, r.comment) for r in records] == [
        ("-1", "=A1", "'plain"),
        ("1", "'=x", "@home"),
    ]


def test_writers_refuse_tags_that_would_not_read_back() -> None:
    bad = [EntryRecord(hashes=((HashType.MD5, md5(1)),), tags=("a,b",))]
    for fmt in (CSV, VICS2):
        with pytest.raises(ListFormatError, match="comma") as info:
            write_list(io.BytesIO(), fmt, ListHeader(format=fmt), bad)
        assert info.value.where == "record 1"


# --- registry -------------------------------------------------------------------------------


def test_registry_names_and_api() -> None:
    import hashwatch.lists.formats as formats

    assert set(FORMATS) == {"vics1", "vics2", "csv", "text", "nsrl", "vpdq"}
    assert all(name == fmt.name for name, fmt in FORMATS.items())
    assert {n for n, f in FORMATS.items() if f.write is not None} == {VICS2, CSV, TEXT, "vpdq"}
    for name in formats.__all__:
        assert hasattr(formats, name), name
    with pytest.raises(ValueError, match="twice"):
        formats._registry(FORMATS[CSV], FORMATS[CSV])


def test_write_list_refuses_unwritable_and_unknown_formats() -> None:
    with pytest.raises(ListFormatError, match="cannot be written"):
        write_list(io.BytesIO(), "nsrl", ListHeader(format="nsrl"), [])
    with pytest.raises(ListFormatError, match="unknown list format 'xml'"):
        write_list(io.BytesIO(), "xml", ListHeader(format="xml"), [])


def test_write_list_to_a_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    def failing() -> Iterator[EntryRecord]:
        yield EntryRecord(hashes=((HashType.MD5, md5(1)),))
        raise RuntimeError("source went away")

    out = tmp_path / "o.json"
    with pytest.raises(RuntimeError):
        write_list(out, VICS2, ListHeader(format=VICS2), failing())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", sorted(n for n, f in FORMATS.items() if f.write is not None))
def test_every_writable_format_reads_back_its_hashes(tmp_path: Path, fmt: str) -> None:
    """The contract every writer/reader pair keeps: hashes survive, format is detected.

    vPDQ files hold videos only: their key hash and frames survive; VICS keeps frames too."""
    frames = tuple(VideoFrameHash(n * 30, float(n), pdq(100 + n), 90) for n in range(3))
    records = [
        EntryRecord(
            hashes=((HashType.MD5, md5(i)), (HashType.PDQ, pdq(i))),
            frames=frames if fmt in (VICS2, VPDQ) else (),
        )
        for i in range(5)
    ]
    out = tmp_path / "export.bin"
    write_list(out, fmt, ListHeader(format=fmt), records)
    header, back = read_all(out)
    assert header.format == fmt
    if fmt == VPDQ:
        assert [r.hashes for r in back] == [r.hashes[:1] for r in records]
    else:
        assert sorted(p for r in back for p in r.hashes) == sorted(
            p for r in records for p in r.hashes
        )
    if fmt in (VICS2, VPDQ):
        assert all(r.frames == frames for r in back)
