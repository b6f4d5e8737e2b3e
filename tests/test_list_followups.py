"""Lists as a curator meets them over HTTP and the CLI: a refused upload is named by its own
name (never the server's spool path), one list-name rule everywhere (``/`` included), an
archive member given to add-media is explained, category_map codes fit a category, and an
NSRL file's PKG and VERSION must be real tables.

List data are digests of generated benign strings; media are generated pictures.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import update

from hashwatch.app import Hashwatch
from hashwatch.errors import ListFormatError
from hashwatch.lists.formats import open_list
from hashwatch.store.models import LISTS
from hashwatch.store.service import Role
from tests.inprocess_cli import Run, run
from tests.media import jpeg_bytes, scene
from tests.serve_helpers import client, make_key

__all__ = ["run"]  # the fixture

CASES = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"


def md5(i: int) -> str:
    return hashlib.md5(f"benign-{i}".encode()).hexdigest()


def flat(text: str) -> str:
    return " ".join(text.split())


def rds(path: Path, *, file_view: bool = False, pkg: str = "table", version: str = "table") -> Path:
    """A small RDSv3-shaped database of benign digests; FILE, PKG, VERSION as asked."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE F (md5 VARCHAR, file_name VARCHAR, package_id INTEGER)")
    db.executemany("INSERT INTO F VALUES (?, 'f.bin', 1)", [(md5(i).upper(),) for i in range(5)])
    db.execute(
        "CREATE VIEW FILE AS SELECT * FROM F"
        if file_view
        else "CREATE TABLE FILE AS SELECT * FROM F"
    )
    if pkg == "table":
        db.execute("CREATE TABLE PKG (package_id INTEGER, name VARCHAR, version VARCHAR)")
        db.execute("INSERT INTO PKG VALUES (1, 'Product', '1.0')")
    else:  # a recursive view: endless unless the reader refuses it
        db.execute(
            "CREATE VIEW PKG AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
            "SELECT n AS package_id, 'p' AS name, '1' AS version FROM r"
        )
    if version == "table":
        db.execute("CREATE TABLE VERSION (version VARCHAR)")
        db.execute("INSERT INTO VERSION VALUES ('2026.09.1')")
    else:
        db.execute("CREATE VIEW VERSION AS SELECT '2026.09.1' AS version")
    db.commit()
    db.close()
    return path


def vics_media_object(path: Path) -> Path:
    media = {"records": [{"MediaID": 1, "Category": 1, "MD5": md5(1)}]}
    path.write_text(json.dumps({"@odata.context": CASES, "value": [{"Media": media}]}))
    return path


# -- 1. an upload is named by its own name -------------------------------------------------


def test_a_refused_upload_names_the_clients_file_never_the_spool_path(
    sqlite_hw: Hashwatch, tmp_path: Path
) -> None:
    curator = make_key(sqlite_hw, Role.CURATOR)
    files = {
        "random.bin": b"\x00\x01benign\x00" * 64,
        "case.json": vics_media_object(tmp_path / "v.json").read_bytes(),
        "rds.db": rds(tmp_path / "view.db", file_view=True).read_bytes(),
    }
    with client(sqlite_hw) as c:
        for filename, data in files.items():
            r = c.post("/v1/lists/x/import", headers=curator, files={"file": (filename, data)})
            assert r.status_code == 422, r.text
            detail = r.json()["detail"]
            assert detail.startswith(filename), detail
            assert "spool" not in detail and ".upload" not in detail and "/" not in detail
        # a part that names no file, or only a path: "the uploaded file", the last segment
        r = c.post("/v1/lists/x/import", headers=curator, files={"file": ("", files["random.bin"])})
        assert r.json()["detail"].startswith("the uploaded file is a binary file"), r.text
        r = c.post(
            "/v1/lists/x/import",
            headers=curator,
            files={"file": ("../../etc/ok.txt", f"{md5(1)}\n{md5(2)}\n".encode())},
        )
        assert r.status_code == 200 and r.json()["file"] == "ok.txt", r.text
    assert sqlite_hw.lists.imports("x")[0]["file_name"] == "ok.txt"


def test_the_cli_still_names_the_local_path(run: Run, tmp_path: Path) -> None:
    (tmp_path / "random.bin").write_bytes(b"\x00benign\x00" * 8)
    result = run("lists", "import", str(tmp_path / "random.bin"), "--name", "x")
    assert result.returncode != 0
    assert f"{tmp_path / 'random.bin'} is a binary file" in flat(result.stderr)


# -- 2. one list-name rule -----------------------------------------------------------------


def test_a_slash_in_a_list_name_is_refused_alike_by_the_cli_and_http(
    run: Run, tmp_path: Path
) -> None:
    (tmp_path / "one.csv").write_text(f"md5\n{md5(1)}\n")
    created = run("lists", "create", "sl/ash3")
    imported = run("lists", "import", "one.csv", "--name", "sl/ash2")
    for result in (created, imported):
        assert result.returncode != 0
        assert "a list name cannot hold '/' (at 3)" in flat(result.stderr), result.stderr
    assert "sl/ash" not in run("lists", "list").stdout


def test_http_create_and_import_refuse_a_bad_name_with_the_same_422(
    sqlite_hw: Hashwatch,
) -> None:
    curator = make_key(sqlite_hw, Role.CURATOR)
    with client(sqlite_hw) as c:
        created = c.post("/v1/lists", headers=curator, json={"name": "sl/ash"})
        assert created.status_code == 422, created.text
        assert "a list name cannot hold '/' (at 3)" in created.text
        assert "sl/ash" not in created.text  # the input is not echoed
        bad = "ab\x01cd"
        created = c.post("/v1/lists", headers=curator, json={"name": bad})
        imported = c.post(
            "/v1/lists/ab%01cd/import", headers=curator, files={"file": ("l.txt", b"x\n")}
        )
        assert (created.status_code, imported.status_code) == (422, 422)
        messages = [r.json()["detail"][0]["msg"] for r in (created, imported)]
        assert messages[0] == messages[1] and "U+0001 at 3" in messages[0], messages
        assert all("input" not in r.json()["detail"][0] for r in (created, imported))
    assert sqlite_hw.lists.all() == []


def test_a_list_named_with_a_slash_before_the_rule_stays_readable_and_deletable(
    sqlite_hw: Hashwatch,
) -> None:
    sqlite_hw.lists.create("old")
    with sqlite_hw.db.write() as conn:  # as an older version could have stored it
        conn.execute(update(LISTS).where(LISTS.c.name == "old").values(name="old/name"))
    assert sqlite_hw.lists.get("old/name").name == "old/name"
    sqlite_hw.lists.delete("old/name")
    assert sqlite_hw.lists.all() == []


# -- 3. add-media on an archive member -----------------------------------------------------


def test_add_media_explains_an_archive_member_path(run: Run, tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as box:
        box.writestr("pic4.png", jpeg_bytes(scene(4)))
    result = run("lists", "add-media", "known", "a.zip!/pic4.png", "gone.zip!/pic.png")
    assert result.returncode == 2
    message = flat(result.stderr)
    assert "a.zip!/pic4.png: a member of an archive (a.zip)" in message
    assert "extract it first" in message
    assert "gone.zip!/pic.png: cannot read: No such file or directory" in message


# -- 4. category_map codes fit a category --------------------------------------------------


def test_category_map_codes_longer_than_a_category_are_refused(
    run: Run, tmp_path: Path, sqlite_hw: Hashwatch
) -> None:
    long = "c" * 100
    curator = make_key(sqlite_hw, Role.CURATOR)
    sqlite_hw.lists.create("agency")
    with client(sqlite_hw) as c:
        for mapping in ({long: "1"}, {"x": long}, {"": "1"}):
            r = c.patch("/v1/lists/agency", headers=curator, json={"category_map": mapping})
            assert r.status_code == 422, r.text
            assert "a category has 1 to 64" in r.text and long not in r.text
        fits = {"c" * 64: "1"}
        r = c.patch("/v1/lists/agency", headers=curator, json={"category_map": fits})
        assert r.status_code == 200 and r.json()["category_map"] == fits, r.text
    (tmp_path / "map.json").write_text(json.dumps({long: "1"}))
    assert run("lists", "create", "cli-list").returncode == 0
    result = run("lists", "set", "cli-list", "--category-map", "map.json")
    assert result.returncode != 0
    assert "category_map: a code has 100 characters; a category has 1 to 64" in flat(result.stderr)


# -- 5. NSRL side tables -------------------------------------------------------------------


@pytest.mark.parametrize(("pkg", "version"), [("view", "table"), ("table", "view")])
def test_an_nsrl_file_whose_pkg_or_version_is_a_view_is_refused(
    tmp_path: Path, pkg: str, version: str
) -> None:
    path = rds(tmp_path / "rds.db", pkg=pkg, version=version)
    which = "PKG" if pkg == "view" else "VERSION"
    with pytest.raises(ListFormatError, match=f"{which} is a view, not a table"):
        list(open_list(path).records)


def test_an_nsrl_file_of_real_tables_imports(tmp_path: Path) -> None:
    parsed = open_list(rds(tmp_path / "rds.db"))
    assert len(list(parsed.records)) == 5
