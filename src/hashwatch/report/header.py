"""The report's header: the case (number, agency, examiner, who ran the scan where, with which
command), the evidence with its digests, the hash lists used (or a warning that none was) and
the settings that change results."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from hashwatch import __version__
from hashwatch.report.charts import esc
from hashwatch.report.charts import path_html as _path
from hashwatch.report.charts import table as _table
from hashwatch.report.page import Page, when_text

__all__ = ["write_header"]


def write_header(page: Page, case: Mapping[str, Any], generated: str) -> None:
    number = case.get("case_number") or case.get("CaseNumber")
    operator = case.get("operator")
    if operator and case.get("host"):
        operator = f"{operator} on {case.get('host')}"
    facts = [("Agency", case.get("agency")), ("Examiner", case.get("examiner"))]
    facts += [("Run by", operator), ("Case ID", case.get("case_id"))]
    facts += [("Case directory", case.get("case_dir"))]
    facts += [
        ("Scan started", when_text(case.get("started"))),
        ("Scan finished", when_text(case.get("finished"))),
    ]
    facts += [("Report written", generated), ("hashwatch version", __version__)]
    page.add(
        '<header class="top"><p class="kicker">hashwatch scan report</p>',
        f"<h1>Case {esc(number)}</h1>" if number else "<h1>Scan report</h1>",
        '<dl class="facts">',
        *(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in facts if v),
        "</dl>",
    )
    roots = []
    for root in case.get("evidence") or case.get("roots") or ():
        r = root if isinstance(root, Mapping) else getattr(root, "__dict__", {"path": root})
        files = r.get("files")
        digest = f'<code title="{esc(r.get("digest", ""))}">{esc(r.get("sha256"))}</code>'
        roots.append(
            (
                _path(r.get("path")),
                esc(r.get("kind", "")),
                f"{files:,}" if isinstance(files, int) else "",
                digest if r.get("sha256") else "—",
            )
        )
    if roots:
        heads = ["Evidence root", "Kind", "Files", "SHA-256 (file) or tree digest (directory)"]
        page.add(_table(heads, roots, "meta"))
    lists = [
        (
            esc(x.get("name")),
            esc(x.get("kind")),
            esc(x.get("version", "")),
            _path(x.get("source") or x.get("source_org") or ""),
        )
        for x in case.get("lists", ())
    ]
    if lists:
        page.add(_table(["Hash list used", "Kind", "Version", "Source"], lists, "meta"))
    if "lists" in case and not lists:
        page.add(
            '<p class="warning"><strong>No hash list was used: every file is new.</strong> '
            "Nothing was matched; import a list and scan again to find known files.</p>"
        )
    elif lists and not any(x.get("kind") == "known" for x in case.get("lists", ())):
        page.add(
            '<p class="warning"><strong>No list of known material was used:</strong> no file '
            "could be found as known.</p>"
        )
    command = case.get("command")
    if command:
        text = shlex.join(str(part) for part in command)
        page.add(f'<p class="settings"><strong>Command:</strong> <code>{esc(text)}</code></p>')
    settings = case.get("settings") or {}
    if settings:
        pairs = (
            f"{esc(k)} <code>{esc('—' if v is None else v)}</code>" for k, v in settings.items()
        )
        page.add(f'<p class="settings"><strong>Settings:</strong> {" · ".join(pairs)}</p>')
    page.add("</header>")
