"""``hashwatch lists`` as a curator types it: add-media says why a file is left out, the
category is checked against the list's scheme, a shrinking replace needs --force, and
``lists history`` shows every write, even after the list is deleted.

Media are generated pictures; list hashes are digests of generated benign strings.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

from tests.inprocess_cli import Run, run
from tests.media import jpeg_bytes, scene, write_image

__all__ = ["run"]  # the fixture


def flat(text: str) -> str:
    """``text`` with line breaks and runs of spaces as one space (the terminal wraps)."""
    return " ".join(text.split())


def md5(i: int) -> str:
    return hashlib.md5(f"benign-{i}".encode()).hexdigest()


def test_add_media_says_why_each_file_is_left_out(run: Run, tmp_path: Path) -> None:
    write_image(tmp_path / "picture.jpg", scene(1))
    with zipfile.ZipFile(tmp_path / "box.zip", "w") as box:
        box.writestr("inside.jpg", jpeg_bytes(scene(2)))
    nothing = run("lists", "add-media", "known", "missing.jpg", "box.zip/inside.jpg", "box.zip")
    assert nothing.returncode == 2
    message = flat(nothing.stderr)
    assert "missing.jpg: cannot read: No such file or directory" in message
    assert "box.zip/inside.jpg: inside box.zip, which is a file, not a folder" in message
    assert "box.zip: an archive: add-media does not open archives" in message
    added = run("lists", "add-media", "known", "picture.jpg", "missing.jpg")
    assert added.returncode == 0 and json.loads(added.stdout)["added"] == 1
    assert "skipped: missing.jpg: cannot read" in flat(added.stderr)


def test_the_category_is_checked_against_the_scheme_and_help_shows_the_codes(
    run: Run, tmp_path: Path
) -> None:
    help_text = run("lists", "add-media", "--help").stdout
    assert "US: 0, 1, 2, 3, 4, 5" in " ".join(help_text.split())
    assert "UK: A, B, C, NI, 0" in " ".join(help_text.split())
    write_image(tmp_path / "picture.jpg", scene(3))
    assert run("lists", "create", "caid", "--scheme", "UK").returncode == 0
    wrong = run("lists", "add-media", "caid", "picture.jpg", "--category", "9")
    assert wrong.returncode == 2
    assert "category '9' is not a code of this list's scheme UK: A, B, C, NI, 0" in flat(
        wrong.stderr
    )
    right = run("lists", "add-media", "caid", "picture.jpg", "--category", "b")
    assert right.returncode == 0
    exported = run("lists", "export", "caid", "--out", "-", "--format", "csv").stdout
    (row,) = csv.DictReader(io.StringIO(exported))
    assert row["category"] == "B"  # stored as the scheme writes it


def test_a_replace_that_would_empty_most_of_a_list_needs_force(run: Run, tmp_path: Path) -> None:
    (tmp_path / "full.txt").write_text("".join(f"md5 {md5(i)}\n" for i in range(20)))
    (tmp_path / "short.txt").write_text("".join(f"md5 {md5(i)}\n" for i in range(2)))
    assert run("lists", "import", "full.txt", "--name", "agency").returncode == 0
    refused = run("lists", "import", "short.txt", "--name", "agency")
    assert refused.returncode == 2 and "would withdraw 18 of the 20" in flat(refused.stderr)
    forced = run("lists", "import", "short.txt", "--name", "agency", "--force")
    assert forced.returncode == 0 and json.loads(forced.stdout)["withdrawn"] == 18


def test_lists_history_shows_every_write_and_outlives_the_list(run: Run, tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("".join(f"md5 {md5(i)}\n" for i in range(3)))
    run("lists", "import", "l.txt", "--name", "agency", "--examiner", "alice")
    run(
        "lists", "revoke", "agency", f"md5:{md5(1)}", "--reason", "benign test", "--examiner", "bob"
    )
    assert run("lists", "delete", "agency", "--yes", "--examiner", "carol").returncode == 0
    shown = run("lists", "history", "agency")
    assert shown.returncode == 0
    for text in ("alice", "list.imported", "bob", "entries.revoked", "carol", "list.deleted"):
        assert text in shown.stdout
    records = [
        json.loads(line) for line in run("lists", "history", "agency", "--json").stdout.splitlines()
    ]
    assert [(r["actor"], r["action"]) for r in records] == [
        ("carol", "list.deleted"),
        ("bob", "entries.revoked"),
        ("alice", "list.imported"),
    ]
    assert records[0]["details"]["entries"] == {"active": 2, "revoked": 1}
    assert md5(1) not in shown.stdout
