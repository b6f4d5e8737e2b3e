"""An alert exported as a small case folder, for a case system or another analyst.

``export_case`` writes, into a new folder:

* ``alert.json``: the account's alert(s) from ``alerts.jsonl`` (every rule, its words, the
  payments it fired on), the decisions recorded on the account, and the screening's provenance
  (rules version and SHA-256, inputs with their SHA-256);
* ``alert.html``: the alert's page of the screening's ``report.html`` (rules, timeline, the
  sender/receiver graph), self-contained;
* ``manifest.json``: the SHA-256 and size of both files and of the screening outputs they came
  from, checked by :func:`verify_case_export`.

The review workspace (``hashwatch cases import``) takes a scan's case directory — media items
with digests, clusters and thumbnails, verified against the scan's manifest and audit log — and
has no place for payments; a payment alert is therefore exported as this folder rather than
imported there.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hashwatch import __version__
from hashwatch.errors import ConfigError
from hashwatch.payments.decisions import ALERTS, DecisionError, read_decisions

__all__ = ["CASE_KIND", "CaseExport", "export_case", "verify_case_export"]

CASE_KIND = "hashwatch.payments.alert-case"
_FILES = ("alert.json", "alert.html")


@dataclass(frozen=True, slots=True)
class CaseExport:
    folder: Path
    account: str
    alerts: int
    files: dict[str, str]  # name -> sha256

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "account": self.account,
            "alerts": self.alerts,
            "files": self.files,
        }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _alerts(out_dir: Path, account: str) -> list[tuple[int, dict[str, Any]]]:
    """(position in the report, 1-based; record) of each alert on ``account``."""
    path = out_dir / ALERTS
    if not path.is_file():
        raise DecisionError(f"{out_dir} holds no {ALERTS}: not a payments screening's output")
    found = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate((ln for ln in handle if ln.strip()), start=1):
            record = json.loads(line)
            if record.get("account") == account:
                found.append((number, record))
    return found


def _page(report: str, numbers: list[int], account: str) -> str:
    """The report's sections of the given alerts, with its style, as a page of their own."""
    style = re.search(r"<style>(.*?)</style>", report, re.DOTALL)
    sections = []
    for number in numbers:
        match = re.search(rf'<section id="a{number}">.*?</section>', report, re.DOTALL)
        if match is None:
            raise DecisionError(f"report.html has no section for alert {number} ({account})")
        sections.append(match.group(0))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Payment alert {account}</title>"
        f"<style>{style.group(1) if style else ''}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )


def export_case(out_dir: Path, account: str, folder: Path) -> CaseExport:
    """Export ``account``'s alert(s) in the screening at ``out_dir`` into ``folder`` (new or
    empty)."""
    out_dir = Path(out_dir)
    found = _alerts(out_dir, account)
    if not found:
        raise ConfigError(f"{account} has no alert in {out_dir / ALERTS}")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(f"{folder} is not empty: export into a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    screening: dict[str, Any] = {}
    if (out_dir / "screening.json").is_file():
        meta = json.loads((out_dir / "screening.json").read_text("utf-8"))
        keys = ("config_version", "config_sha256", "inputs", "rows", "accounts")
        screening = {k: meta[k] for k in keys if k in meta}
    decisions = [d.to_json() for d in read_decisions(out_dir) if d.account == account]
    document = {
        "kind": CASE_KIND,
        "account": account,
        "alerts": [record for _, record in found],
        "decisions": decisions,
        "screening": screening,
    }
    alert_json = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    report_bytes = (out_dir / "report.html").read_bytes()
    page = _page(report_bytes.decode("utf-8"), [n for n, _ in found], account).encode()
    (folder / "alert.json").write_bytes(alert_json)
    (folder / "alert.html").write_bytes(page)
    files = {"alert.json": _sha256(alert_json), "alert.html": _sha256(page)}
    sources = {}
    for name in (ALERTS, "report.html", "screening.json", "decisions.jsonl"):
        if (out_dir / name).is_file():
            sources[name] = _sha256((out_dir / name).read_bytes())
    manifest = {
        "kind": CASE_KIND,
        "account": account,
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "hashwatch_version": __version__,
        "screening_dir": str(out_dir.resolve()),
        "files": {
            name: {"sha256": files[name], "bytes": len((folder / name).read_bytes())}
            for name in _FILES
        },
        "sources": sources,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return CaseExport(folder, account, len(found), files)


def verify_case_export(folder: Path) -> list[str]:
    """Problems with an exported case folder (empty when every file matches its manifest)."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return [f"{folder} has no manifest.json"]
    manifest = json.loads(path.read_text("utf-8"))
    problems = []
    for name, expected in (manifest.get("files") or {}).items():
        file = Path(folder) / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif _sha256(file.read_bytes()) != expected.get("sha256"):
            problems.append(f"{name} does not match its sha256")
    return problems
