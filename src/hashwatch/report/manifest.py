"""``manifest.json``: what a case directory holds, so that any later change to it shows.

A scan's outputs are handed on (to a colleague, a prosecutor, a court). The manifest records
how they were produced (hashwatch version, lists and their versions, settings that change
results, start and end time), what was examined (each evidence root with its digest) and the
SHA-256 and size of every output file. :func:`verify_case` recomputes the output digests and
reports every file modified, missing or added, and any break in the audit log's chain.

The audit log keeps growing after the manifest is written (the manifest's own writing, a
later export, a verification are events too), so it is not listed like the other outputs.
The manifest records its state at finalisation instead: line count, the SHA-256 of the last
line (the chain head: every earlier line is committed to by the chain) and the SHA-256 and
size of the file up to there. Verification checks that this prefix is unchanged and that the
whole chain, lines appended since included, is intact. After writing, the manifest's own
SHA-256 is appended to the audit log (event ``manifest.written``) so that an edited
manifest shows too.

**Tree digest** (``tree-sha256-v1``) of a directory root: take each regular file under the
root that was read (symbolic links are not followed; archive members are not files of the
tree, their archive is), its path relative to the root with ``/`` separators, and its
SHA-256 in lowercase hex. Form one line per file, ``<sha256>  <relative path>\\n`` (two
spaces, as ``sha256sum`` writes it; a path holding a backslash or line end is written as
``sha256sum`` does: the line starts with ``\\`` and those characters are escaped as
``\\\\``, ``\\n``, ``\\r``). Sort the lines by the relative path's bytes (UTF-8; names that
are not UTF-8 as their raw bytes), concatenate them and take the SHA-256 of the result. For
ordinary names this is::

    cd ROOT && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum

Entries without a digest (files that could not be read; links and special files, which are
never read) are left out and counted as ``not_hashed``. A file root's digest (``sha256``) is
the SHA-256 of its bytes. Digests come from the scan's own per-file SHA-256s: the evidence is
never read a second time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hashwatch import __version__
from hashwatch.audit import AuditHead, AuditLog, AuditVerification, audit_head, verify_audit_log
from hashwatch.scan.model import ARCHIVE_SEPARATOR, ItemRecord

__all__ = [
    "AUDIT_LOG",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "PUBLIC_KEY",
    "SIGNATURE",
    "WORKING_FILES",
    "CaseProblem",
    "CaseVerification",
    "EvidenceRoot",
    "TreeDigest",
    "file_sha256",
    "roots_from_digests",
    "roots_from_records",
    "roots_from_sorted_records",
    "verify_case",
    "write_manifest",
]

MANIFEST = "manifest.json"
AUDIT_LOG = "audit.log"
# The examiner's signature of the manifest and their public key (hashwatch.report.signing):
# written after the manifest, so not listed in it; checked by ``hashwatch verify``.
SIGNATURE = "manifest.json.sig"
PUBLIC_KEY = "manifest.json.pub"
# Working files that change after finalisation (the scan's resume state): neither recorded
# nor reported as added. The manifest lists the patterns it applied, so this is explicit.
WORKING_FILES = ("scan-state.sqlite3", "scan-state.sqlite3-*")
MANIFEST_FORMAT = "hashwatch-case-manifest/1"
TREE_DIGEST = "tree-sha256-v1"
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks (outputs can be hundreds of MB)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _prefix_sha256(path: str | os.PathLike[str], limit: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        remaining = limit
        while remaining > 0 and (chunk := f.read(min(_CHUNK, remaining))):
            h.update(chunk)
            remaining -= len(chunk)
    return h.hexdigest()


def _utc(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("times in the manifest must be timezone-aware (UTC)")
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sha256sum_line(sha256: str, rel: str) -> bytes:
    """One ``sha256sum`` output line, escaped the way GNU coreutils escapes odd names."""
    raw = rel.encode("utf-8", "surrogateescape")
    if any(c in raw for c in (b"\\", b"\n", b"\r")):
        raw = raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        return b"\\" + sha256.encode() + b"  " + raw + b"\n"
    return sha256.encode() + b"  " + raw + b"\n"


class TreeDigest:
    """Accumulates ``(relative path, sha256)`` pairs in any order; see the module docstring.

    Holds one pair per file until :meth:`hexdigest` (sorting needs them all): about 150 bytes
    a file, so a million-file root costs ~150 MB once, at finalisation.
    """

    def __init__(self) -> None:
        self._files: list[tuple[bytes, str, str]] = []
        self.bytes: int | None = None  # None: no sizes were given
        self.not_hashed = 0

    def add(self, rel_path: str, sha256: str | None, size: int | None = None) -> None:
        if sha256 is None:
            self.not_hashed += 1
            return
        rel = rel_path.replace(os.sep, "/").lstrip("/")
        self._files.append((rel.encode("utf-8", "surrogateescape"), sha256.lower(), rel))
        if size is not None:
            self.bytes = (self.bytes or 0) + size

    @property
    def files(self) -> int:
        return len(self._files)

    def hexdigest(self) -> str:
        h = hashlib.sha256()
        for _, sha, rel in sorted(self._files):
            h.update(_sha256sum_line(sha, rel))
        return h.hexdigest()


@dataclass(frozen=True)
class EvidenceRoot:
    """An evidence root as the manifest records it."""

    path: str
    kind: str  # "file" or "directory"
    sha256: str | None  # file: of its bytes; directory: the tree digest
    files: int = 1
    bytes: int | None = None
    not_hashed: int = 0
    digest: str = "sha256"  # "sha256" (file) or TREE_DIGEST (directory)

    @classmethod
    def of_file(cls, path: str, sha256: str | None, size: int | None = None) -> EvidenceRoot:
        return cls(path, "file", sha256, 1, size, 0 if sha256 else 1)

    @classmethod
    def of_directory(cls, path: str, tree: TreeDigest) -> EvidenceRoot:
        return cls(
            path,
            "directory",
            tree.hexdigest(),
            tree.files,
            tree.bytes,
            tree.not_hashed,
            TREE_DIGEST,
        )

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def roots_from_digests(
    root_digests: Mapping[str, Mapping[str, str | None]],
) -> list[EvidenceRoot]:
    """Evidence roots from ``{root: {path: sha256}}`` (paths absolute or relative to the root).

    A root whose only path is the root itself is a file root; every other root is a
    directory root with its tree digest. Archive members (``outer.zip!/inner``) are skipped:
    the archive file itself is part of the tree.
    """
    out = []
    for root, files in root_digests.items():
        if set(files) == {root}:
            out.append(EvidenceRoot.of_file(root, files[root]))
            continue
        tree = TreeDigest()
        prefix = root.rstrip("/\\")
        for path, sha256 in files.items():
            if ARCHIVE_SEPARATOR in path:
                continue
            rel = path
            if rel.startswith(prefix) and rel[len(prefix) : len(prefix) + 1] in ("/", "\\"):
                rel = rel[len(prefix) + 1 :]
            tree.add(rel, sha256)
        out.append(EvidenceRoot.of_directory(root, tree))
    return sorted(out, key=lambda r: r.path)


def roots_from_records(records: Iterable[ItemRecord]) -> list[EvidenceRoot]:
    """The evidence roots of a scan, from its records (one pass, no evidence read).

    As :func:`roots_from_digests`, with sizes: a record whose ``path`` equals its ``root``
    is a file root, the others are files under a directory root.
    """
    digests: dict[str, dict[str, str | None]] = {}
    sizes: dict[str, int] = {}
    for record in records:
        if ARCHIVE_SEPARATOR not in record.path:
            digests.setdefault(record.root, {})[record.path] = record.sha256
            if record.sha256 is not None:
                sizes[record.root] = sizes.get(record.root, 0) + (record.size or 0)
    roots = roots_from_digests(digests)
    return [EvidenceRoot(**{**r.__dict__, "bytes": sizes.get(r.path, 0)}) for r in roots]


class _SortedRoot:
    """One evidence root's files arriving in the order of their relative paths' bytes (as
    the tree digest sorts them): the digest is taken as they come, nothing held but the
    first path. :meth:`add` says False when a path comes out of that order."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.prefix = root.rstrip("/\\")
        self.first: tuple[str, str | None] | None = None
        self.paths = 0
        self.last: bytes | None = None
        self.digest = hashlib.sha256()
        self.files = self.not_hashed = self.bytes = 0

    def add(self, path: str, sha256: str | None, size: int | None) -> bool:
        self.paths += 1
        if self.first is None:
            self.first = (path, sha256)
        rel = path
        if rel.startswith(self.prefix) and rel[len(self.prefix) : len(self.prefix) + 1] in (
            "/",
            "\\",
        ):
            rel = rel[len(self.prefix) + 1 :]
        rel = rel.replace(os.sep, "/").lstrip("/")  # as TreeDigest.add
        key = rel.encode("utf-8", "surrogateescape")
        if self.last is not None and key <= self.last:
            return False
        self.last = key
        if sha256 is None:
            self.not_hashed += 1
            return True
        self.files += 1
        self.bytes += size or 0
        self.digest.update(_sha256sum_line(sha256.lower(), rel))
        return True

    def evidence(self) -> EvidenceRoot:
        if self.paths == 1 and self.first is not None and self.first[0] == self.root:
            sha256 = self.first[1]
            return EvidenceRoot(self.root, "file", sha256, 1, self.bytes, 0 if sha256 else 1)
        return EvidenceRoot(
            self.root,
            "directory",
            self.digest.hexdigest(),
            self.files,
            self.bytes,
            self.not_hashed,
            TREE_DIGEST,
        )


def roots_from_sorted_records(read: Callable[[], Iterable[ItemRecord]]) -> list[EvidenceRoot]:
    """:func:`roots_from_records` of ``read()``, without holding every file: when the
    records come in path order (a scan's state gives them so), each root's tree digest is
    taken as they come. Should a root's paths come in another order (a path that sorts
    differently once made relative, or twice), ``read()`` is read again by
    :func:`roots_from_records`: the result is the same either way."""
    roots: dict[str, _SortedRoot] = {}
    for record in read():
        if ARCHIVE_SEPARATOR in record.path:
            continue
        root = roots.get(record.root)
        if root is None:
            root = roots[record.root] = _SortedRoot(record.root)
        if not root.add(record.path, record.sha256, record.size):
            return roots_from_records(read())
    return sorted((root.evidence() for root in roots.values()), key=lambda r: r.path)


def _utc_text(value: Any) -> str | None:
    if value is None or isinstance(value, datetime):
        return None if value is None else _utc(value)
    text = str(value)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _case_files(case_dir: Path) -> list[str]:
    """Every regular file in the case directory (recursively), as POSIX relative paths."""
    out = []
    for dirpath, _, filenames in os.walk(case_dir):
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():
                out.append(full.relative_to(case_dir).as_posix())
    return sorted(out)


# case_info keys that have their own place in the manifest (the rest go under "case").
_PROMOTED = frozenset({"started", "finished", "lists", "settings", "evidence", "roots"})


def write_manifest(
    case_dir: str | os.PathLike[str],
    *,
    case_info: Mapping[str, Any] | None = None,
    evidence: Sequence[EvidenceRoot] | None = None,
    root_digests: Mapping[str, Mapping[str, str | None]] | None = None,
    started: datetime | str | None = None,
    finished: datetime | str | None = None,
    lists: Sequence[Mapping[str, Any]] | None = None,
    settings: Mapping[str, Any] | None = None,
    outputs: Sequence[str] | None = None,
    unrecorded: Sequence[str] = WORKING_FILES,
) -> dict[str, Any]:
    """Write ``manifest.json`` into ``case_dir`` and return what was written.

    The evidence is ``evidence`` or, from the scan's per-file digests, ``root_digests``
    (``{root: {path: sha256}}``, see :func:`roots_from_digests`). ``started``, ``finished``,
    ``lists`` (mappings with name, kind, version, source...) and ``settings`` (those that
    change results: PDQ policy, thresholds) default to the same keys of ``case_info``; its
    other keys are recorded under ``case``. ``outputs`` names the files to record, relative
    to ``case_dir``; by default every regular file there but the manifest, the audit log and
    the working files matching ``unrecorded`` (glob patterns, kept in the manifest). Call
    this last, when every other output is complete: anything added to the directory
    afterwards is reported by :func:`verify_case`.
    """
    info = dict(case_info or {})
    if evidence is None:
        evidence = roots_from_digests(root_digests) if root_digests is not None else []
    root = Path(case_dir)
    names = (
        outputs
        if outputs is not None
        else [
            n
            for n in _case_files(root)
            if n not in (MANIFEST, AUDIT_LOG) and not _matches(n, unrecorded)
        ]
    )
    files: dict[str, dict[str, Any]] = {}
    for name in sorted(names):
        sha, size = file_sha256(root / name)
        files[name] = {"sha256": sha, "size": size}
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "hashwatch_version": __version__,
        "case": {k: v for k, v in info.items() if k not in _PROMOTED},
        "started": _utc_text(started if started is not None else info.get("started")),
        "finished": _utc_text(finished if finished is not None else info.get("finished")),
        "evidence": [r.as_json() for r in evidence],
        "lists": [dict(x) for x in (lists if lists is not None else info.get("lists") or [])],
        "settings": dict(settings if settings is not None else info.get("settings") or {}),
        "outputs": files,
        "unrecorded": list(unrecorded),
    }
    log_path = root / AUDIT_LOG
    if log_path.exists():
        head = audit_head(log_path)
        manifest["audit_log"] = {
            "path": AUDIT_LOG,
            "lines": head.lines,
            "head_sha256": head.line_sha256,
            "size": head.size,
            "sha256": _prefix_sha256(log_path, head.size),
        }
    data = (json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode()
    partial = root / f".{MANIFEST}.partial"
    with open(partial, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, root / MANIFEST)
    if log_path.exists():
        AuditLog(log_path).append(
            "manifest.written", sha256=hashlib.sha256(data).hexdigest(), outputs=len(files)
        )
    return manifest


@dataclass(frozen=True)
class CaseProblem:
    """One difference ``verify`` found. ``kind``: of the case's outputs modified, missing,
    added, audit, manifest; of the evidence (``--evidence``) changed, missing, added,
    unreadable, root."""

    kind: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class CaseVerification:
    """What :func:`verify_case` found; ``ok`` is False on any problem (the CLI exits 1)."""

    ok: bool
    checked: int = 0
    problems: list[CaseProblem] = field(default_factory=list)
    audit: AuditVerification | None = None


def _load_manifest(path: Path, problems: list[CaseProblem]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        problems.append(CaseProblem("missing", MANIFEST, "missing: nothing can be verified"))
        return None
    except ValueError as exc:
        problems.append(CaseProblem("manifest", MANIFEST, f"not valid JSON: {exc}"))
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        problems.append(CaseProblem("manifest", MANIFEST, f"not a {MANIFEST_FORMAT} manifest"))
        return None
    return data


def verify_case(case_dir: str | os.PathLike[str]) -> CaseVerification:
    """Check a case directory against its manifest; list every difference found.

    Reported: an output modified (digest or size differs), missing, or added (a file the
    manifest does not list); the audit log's recorded prefix changed, its chain broken
    anywhere (appended lines included) or cut short; the manifest differing from the one
    the audit log recorded when it was written.
    """
    root = Path(case_dir)
    result = CaseVerification(ok=False)
    problems = result.problems
    manifest = _load_manifest(root / MANIFEST, problems)
    if manifest is None:
        return result
    outputs: dict[str, Any] = manifest.get("outputs", {})
    for name, want in outputs.items():
        path = root / name
        if not path.is_file():
            problems.append(CaseProblem("missing", name, "missing"))
            continue
        sha, size = file_sha256(path)
        result.checked += 1
        if sha != want.get("sha256") or size != want.get("size"):
            what = (
                f"size {size}, recorded {want.get('size')}"
                if size != want.get("size")
                else ("same size, different content")
            )
            problems.append(CaseProblem("modified", name, f"modified ({what})"))
    log_info = manifest.get("audit_log")
    known = {MANIFEST, SIGNATURE, PUBLIC_KEY, *outputs}
    if log_info is not None:
        try:
            known.add(str(log_info["path"]))
            _verify_audit(root, log_info, root / MANIFEST, result)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(CaseProblem("manifest", MANIFEST, f"audit_log entry unusable: {exc}"))
    skipped = [str(p) for p in manifest.get("unrecorded", [])]
    for name in _case_files(root):
        if name not in known and not _matches(name, skipped):
            problems.append(CaseProblem("added", name, "added after the manifest was written"))
    result.ok = not problems
    return result


def _verify_audit(
    root: Path, info: Mapping[str, Any], manifest_path: Path, result: CaseVerification
) -> None:
    name = str(info["path"])
    path = root / name
    problems = result.problems
    if not path.is_file():
        problems.append(CaseProblem("missing", name, "missing"))
        return
    result.checked += 1
    size = int(info["size"])
    if path.stat().st_size < size or _prefix_sha256(path, size) != info["sha256"]:
        problems.append(
            CaseProblem("audit", name, "changed before the point recorded at finalisation")
        )
    anchor = AuditHead(int(info["lines"]), str(info["head_sha256"]), size)
    audit = verify_audit_log(path, anchor=anchor)
    result.audit = audit
    problems.extend(CaseProblem("audit", name, str(p)) for p in audit.problems)
    recorded = None
    with open(path, "rb") as f:
        for raw in f:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == "manifest.written":
                details = entry.get("details")
                recorded = details.get("sha256") if isinstance(details, dict) else None
    if recorded is not None and recorded != file_sha256(manifest_path)[0]:
        problems.append(
            CaseProblem("manifest", MANIFEST, "differs from the manifest the audit log recorded")
        )
