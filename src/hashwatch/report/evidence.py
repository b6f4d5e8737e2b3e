"""``hashwatch verify --evidence``: is the evidence still what the scan examined?

The manifest records each evidence root's digest (a file's SHA-256, a directory's tree digest,
see :mod:`hashwatch.report.manifest`); ``results.jsonl`` (itself checked against the manifest
first) holds the SHA-256 of every file. The evidence is walked again as the scan walked it
(links not followed), each file read once, read-only and without changing its access time, and
every difference is named: a file changed, missing or added, and a root whose digest differs.

Evidence that was moved (a copy mounted elsewhere) is checked at its new place: ``paths``
gives the roots' current paths, in the manifest's order.

A disk image in E01 format is also checked from the inside: its media is read again and its
MD5 and SHA-1 compared with the hashes the acquisition stored in the image (a changed chunk
shows there even where a segment's own digest was not recorded).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hashwatch.errors import ConfigError
from hashwatch.report.manifest import MANIFEST, TREE_DIGEST, CaseProblem, TreeDigest
from hashwatch.scan.model import ARCHIVE_SEPARATOR
from hashwatch.scan.walk import walk_evidence
from hashwatch.signals.digests import open_evidence, read_blocks

__all__ = ["EvidenceCheck", "verify_evidence"]

RESULTS = "results.jsonl"


@dataclass
class EvidenceCheck:
    ok: bool = False
    roots: int = 0
    files: int = 0  # files read again
    problems: list[CaseProblem] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # E01 images whose stored hashes match


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open_evidence(path) as f:
        for block in read_blocks(f):
            h.update(block)
    return h.hexdigest()


def _recorded(case_dir: Path) -> dict[str, dict[str, str | None]]:
    """``{root: {absolute path: sha256}}`` of the files (not archive members) the scan read."""
    out: dict[str, dict[str, str | None]] = {}
    try:
        with (case_dir / RESULTS).open(encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                rec = json.loads(line)
                if ARCHIVE_SEPARATOR in rec["path"]:
                    continue
                out.setdefault(rec["root"], {})[rec["path"]] = rec.get("sha256")
    except FileNotFoundError:
        raise ConfigError(
            f"{case_dir / RESULTS} is missing: the evidence cannot be checked"
        ) from None
    return out


def _recorded_images(case_dir: Path) -> dict[str, list[str]]:
    """``{root: [path of each E01 image]}`` from ``results.jsonl``."""
    out: dict[str, list[str]] = {}
    with (case_dir / RESULTS).open(encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            if '"image"' not in line:
                continue
            rec = json.loads(line)
            if (rec.get("image") or {}).get("format") == "E01":
                out.setdefault(rec["root"], []).append(rec["path"])
    return out


def _check_e01(path: str, check: EvidenceCheck) -> None:
    """Read the media of the E01 at ``path`` and compare it with the hashes stored in it."""
    from hashwatch.scan.image_io import E01, ewf_segments, open_media

    try:
        reader = open_media(E01, ewf_segments(path))
    except Exception as exc:
        check.problems.append(CaseProblem("image", path, f"E01 image cannot be opened: {exc}"))
        return
    try:
        stored = reader.stored_hashes()
        hashes = {name: hashlib.new(name) for name in stored}
        pos = 0
        while pos < reader.size:
            block = reader.read_at(pos, min(1 << 20, reader.size - pos))
            if not block:
                raise OSError(f"the media ends at byte {pos:,} of {reader.size:,}")
            for h in hashes.values():
                h.update(block)
            pos += len(block)
    except Exception as exc:
        check.problems.append(CaseProblem("image", path, f"E01 media cannot be read: {exc}"))
        return
    finally:
        reader.close()
    differs = [name for name, h in hashes.items() if h.hexdigest() != stored[name]]
    names = " and ".join(n.upper().replace("SHA1", "SHA-1") for n in differs or stored)
    if differs:
        message = f"E01 media {names} differs from the hash stored in the image"
        check.problems.append(CaseProblem("image", path, message))
    elif stored:
        check.images.append(f"{path}: E01 media {names} match the hashes stored in the image")


def _rel(root: str, path: str) -> str:
    return os.path.relpath(path, root).replace(os.sep, "/")


def _walk(root: str) -> Iterator[tuple[str, str | None, str | None]]:
    """``(relative path, sha256, error)`` of every file under ``root`` now."""
    for ef in walk_evidence([root]):
        rel = _rel(root, ef.path) if ef.path != root else ""
        if ef.error is not None:
            yield rel, None, ef.error
            continue
        try:
            yield rel, _sha256(ef.path), None
        except OSError as exc:
            yield rel, None, exc.strerror or str(exc)


def _check_root(
    entry: Mapping[str, Any], now: str, recorded: Mapping[str, str | None], check: EvidenceCheck
) -> None:
    problems = check.problems
    want = str(entry.get("sha256") or "")
    if entry.get("kind") == "file":
        if not os.path.isfile(now):
            problems.append(CaseProblem("missing", now, "missing"))
            return
        check.files += 1
        if _sha256(now) != want:
            problems.append(CaseProblem("changed", now, "changed (SHA-256 differs)"))
        return
    if not os.path.isdir(now):
        problems.append(CaseProblem("missing", now, "missing (the directory root)"))
        return
    recorded_root = str(entry["path"])
    expected = {_rel(recorded_root, p): sha for p, sha in recorded.items()}
    tree = TreeDigest()
    seen: set[str] = set()
    found = len(problems)
    for rel, sha, error in _walk(now):
        seen.add(rel)
        full = os.path.join(now, rel)
        tree.add(rel, sha)
        if sha is not None:
            check.files += 1
        if rel not in expected:
            problems.append(CaseProblem("added", full, "added since the scan"))
        elif error is not None and expected[rel] is not None:
            problems.append(CaseProblem("unreadable", full, f"cannot be read now: {error}"))
        elif sha is not None and expected[rel] is not None and sha != expected[rel]:
            problems.append(CaseProblem("changed", full, "changed (SHA-256 differs)"))
    for rel in sorted(set(expected) - seen):
        problems.append(CaseProblem("missing", os.path.join(now, rel), "missing"))
    if entry.get("digest") == TREE_DIGEST and tree.hexdigest() != want and len(problems) == found:
        problems.append(CaseProblem("root", now, "tree digest differs from the manifest's"))


def verify_evidence(
    case_dir: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]] | None = None
) -> EvidenceCheck:
    """Re-hash the evidence of a case and compare it with what the scan recorded."""
    root = Path(case_dir)
    try:
        manifest = json.loads((root / MANIFEST).read_bytes())
        roots: list[dict[str, Any]] = list(manifest["evidence"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{root / MANIFEST}: no evidence recorded ({exc})") from None
    if paths is not None and len(paths) != len(roots):
        raise ConfigError(
            f"give one --evidence-path for each of the {len(roots)} evidence roots, in the "
            "manifest's order: " + ", ".join(str(r.get("path")) for r in roots)
        )
    recorded = _recorded(root)
    images = _recorded_images(root)
    check = EvidenceCheck(roots=len(roots))
    for n, entry in enumerate(roots):
        now = os.path.abspath(paths[n]) if paths is not None else str(entry["path"])
        _check_root(entry, now, recorded.get(str(entry["path"]), {}), check)
        for image in images.get(str(entry["path"]), []):
            moved = now + image[len(str(entry["path"])) :]
            if os.path.isfile(moved):
                _check_e01(moved, check)
    check.ok = not check.problems
    return check
