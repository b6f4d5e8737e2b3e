"""An append-only, hash-chained audit log: what was done, when, in which order.

A case's findings are only as good as the record of how they were reached, so every step
(scan started, list loaded, file error, report written) is appended as one JSON line::

    {"seq":3,"time":"2024-05-01T12:00:00.123Z","event":"scan.finished","details":{"files":12},
     "prev":"<sha256 of line 2's bytes>","hash":"<sha256 of this line's canonical content>"}

* ``seq`` counts from 1 and equals the line number in an intact log.
* ``prev`` is the SHA-256 (hex) of the previous line's bytes as stored, without its line
  end; the first line has 64 zeros. Each line so commits to everything before it.
* ``hash`` is the SHA-256 of the line's *canonical content*: the JSON object without
  ``hash``, keys sorted, no spaces, non-ASCII escaped as ``\\uXXXX``
  (:func:`canonical_bytes`). It catches a line edited in place; ``prev`` catches a line
  removed, inserted, reordered or edited with its ``hash`` recomputed.

Lines are ASCII (non-ASCII escaped) so that a path with bytes that are not UTF-8, kept by
``surrogateescape``, can be logged and hashed like any other text.

A chain cannot show that lines were cut off its end, nor that it was rewritten from some
point on with every hash recomputed. Both need an anchor kept elsewhere: the case manifest
records the line count and the hash of the last line (:class:`AuditHead`), and
:func:`verify_audit_log` checks the log against it.

Each append is one ``write`` followed by ``fsync``. A crash can leave the last line torn
(no line end); the next :meth:`AuditLog.append` cuts the torn bytes off and records that it
did so (event ``audit.torn_tail``, with their length and SHA-256), so the chain goes on
intact and the repair itself is on the record. Writers in several processes are serialised
with an exclusive ``flock`` where the platform has one, and every append re-reads the chain
head from the file, so two writers never fork the chain.

Details are small facts (counts, names, a path, a hash): never bulk data such as a list's
contents. This module uses the standard library only, so the HTTP server can use it too.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from hashwatch.errors import AuditLogError

try:  # POSIX: serialise writers in several processes
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process at a time
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "GENESIS",
    "MAX_DETAILS_BYTES",
    "AuditEntry",
    "AuditHead",
    "AuditLog",
    "AuditLogError",
    "AuditProblem",
    "AuditVerification",
    "audit_head",
    "canonical_bytes",
    "verify_audit_log",
]

GENESIS = "0" * 64  # ``prev`` of the first line
MAX_DETAILS_BYTES = 65_536  # details are small facts, never bulk data
_TAIL_CHUNK = 65_536
_FIELDS = ("seq", "time", "event", "details", "prev", "hash")


@dataclass(frozen=True)
class AuditEntry:
    """One appended line: its number, its content hash and the SHA-256 of its bytes."""

    seq: int
    time: str
    event: str
    details: dict[str, Any]
    hash: str
    line_sha256: str  # what the next line's ``prev`` holds


@dataclass(frozen=True)
class AuditHead:
    """The anchor of a log at one moment: how many lines, and the SHA-256 of the last one."""

    lines: int
    line_sha256: str  # GENESIS for an empty log
    size: int  # bytes up to and including the last line's end


@dataclass(frozen=True)
class AuditProblem:
    """One finding of :func:`verify_audit_log`; ``line`` is 1-based (0: the log as a whole)."""

    line: int
    kind: str  # edited, removed, inserted, reordered, chain, torn, bad_json, malformed, truncated
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass
class AuditVerification:
    ok: bool
    lines: int
    problems: list[AuditProblem] = field(default_factory=list)
    head: AuditHead | None = None


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    """Paths, times and enums are facts worth logging; anything else must be made JSON first."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"audit details must be JSON values, got {type(value).__name__}")


def canonical_bytes(entry: dict[str, Any]) -> bytes:
    """The bytes ``hash`` is computed over: the entry without ``hash``, keys sorted, compact."""
    content = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_json_default
    ).encode("ascii")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_tail(f: Any, size: int) -> tuple[bytes, int]:
    """The last complete line (without its line end) and the offset just after it.

    Bytes after the last line end are a torn line; the offset tells the caller where the
    complete part of the file stops. Reads backwards in chunks: constant work per append.
    """
    end = size
    buf = b""
    pos = size
    last_nl = -1
    while pos > 0 and last_nl < 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        f.seek(pos)
        buf = f.read(step) + buf
        last_nl = buf.rfind(b"\n")
    if last_nl < 0:
        return b"", 0  # no complete line at all
    end = pos + last_nl + 1
    # The complete line ends at ``end - 1``; find where it starts.
    while True:
        start_nl = buf.rfind(b"\n", 0, last_nl)
        if start_nl >= 0 or pos == 0:
            return buf[start_nl + 1 : last_nl], end
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        buf = chunk + buf
        last_nl += len(chunk)


def _count_lines(path: str | os.PathLike[str], limit: int) -> int:
    n = 0
    with open(path, "rb") as f:
        remaining = limit
        while remaining > 0:
            chunk = f.read(min(1 << 20, remaining))
            if not chunk:
                break
            n += chunk.count(b"\n")
            remaining -= len(chunk)
    return n


def audit_head(path: str | os.PathLike[str]) -> AuditHead:
    """The log's anchor now (what the manifest records); a torn last line is not counted."""
    if not os.path.exists(path):
        return AuditHead(0, GENESIS, 0)
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        last, end = _read_tail(f, size)
    if end == 0:
        return AuditHead(0, GENESIS, 0)
    return AuditHead(_count_lines(path, end), _sha256(last), end)


class AuditLog:
    """Appends events to a hash-chained JSON Lines file; safe across crashes and processes.

    The file is opened per append (no handle held between events), so a long-running server
    can keep one :class:`AuditLog` for its lifetime and the log can be copied at any time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    def append(self, event: str, /, **details: Any) -> AuditEntry:
        """Append one event with its details (small JSON facts) and fsync it to disk."""
        if not isinstance(event, str) or not event or "\n" in event:
            raise ValueError(f"an audit event is a non-empty one-line name, got {event!r}")
        encoded = json.dumps(details, default=_json_default)  # ASCII: paths may hold surrogates
        if len(encoded) > MAX_DETAILS_BYTES:
            raise ValueError(
                f"audit details of {event!r} exceed {MAX_DETAILS_BYTES} bytes: "
                "log small facts (counts, names, hashes), not bulk data"
            )
        details = json.loads(encoded)  # the exact values that will be hashed and read back
        with self._lock, self._open_locked() as f:
            seq, prev = self._head(f)
            return self._write(f, seq + 1, prev, event, details)

    def append_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[AuditEntry]:
        """Append several events, chained in order, with one write and one fsync (a group
        commit: the HTTP server audits a batch of matches at once). All or none are written
        unless the write itself fails part way, which the next append repairs."""
        checked: list[tuple[str, dict[str, Any]]] = []
        for event, details in events:
            if not isinstance(event, str) or not event or "\n" in event:
                raise ValueError(f"an audit event is a non-empty one-line name, got {event!r}")
            encoded = json.dumps(details, default=_json_default)
            if len(encoded) > MAX_DETAILS_BYTES:
                raise ValueError(f"audit details of {event!r} exceed {MAX_DETAILS_BYTES} bytes")
            checked.append((event, json.loads(encoded)))
        if not checked:
            return []
        with self._lock, self._open_locked() as f:
            seq, prev = self._head(f)
            out: list[AuditEntry] = []
            lines: list[bytes] = []
            for event, details in checked:
                seq += 1
                entry, line = self._line(seq, prev, event, details)
                prev = entry.line_sha256
                out.append(entry)
                lines.append(line)
            self._commit(f, b"".join(lines))
            return out

    @property
    def head(self) -> AuditHead:
        return audit_head(self.path)

    # -- internals ---------------------------------------------------------------------

    def _open_locked(self) -> _LockedFile:
        created = not os.path.exists(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if created:
            _fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        return _LockedFile(os.fdopen(fd, "r+b", buffering=0))

    def _head(self, f: Any) -> tuple[int, str]:
        """``(seq, line sha256)`` of the last complete line, repairing a torn tail first."""
        size = f.seek(0, os.SEEK_END)
        last, end = _read_tail(f, size)
        seq, prev = 0, GENESIS
        if last:
            try:
                entry = json.loads(last)
                seq = int(entry["seq"])
            except (ValueError, KeyError, TypeError) as exc:
                raise AuditLogError(
                    f"{self.path}: the last complete line is unreadable ({exc}); "
                    "run verify_audit_log and keep the file as found"
                ) from None
            prev = _sha256(last)
        if end < size:
            f.seek(end)
            torn = f.read(size - end)
            f.truncate(end)
            os.fsync(f.fileno())
            entry_ = self._write(
                f,
                seq + 1,
                prev,
                "audit.torn_tail",
                {"line": seq + 1, "bytes": len(torn), "sha256": _sha256(torn)},
            )
            seq, prev = entry_.seq, entry_.line_sha256
        return seq, prev

    def _write(
        self, f: Any, seq: int, prev: str, event: str, details: dict[str, Any]
    ) -> AuditEntry:
        entry, line = self._line(seq, prev, event, details)
        self._commit(f, line)
        return entry

    @staticmethod
    def _line(seq: int, prev: str, event: str, details: dict[str, Any]) -> tuple[AuditEntry, bytes]:
        """One entry and its bytes with the line end."""
        entry: dict[str, Any] = {
            "seq": seq,
            "time": _utc_now(),
            "event": event,
            "details": details,
            "prev": prev,
        }
        entry["hash"] = _sha256(canonical_bytes(entry))
        line = json.dumps(entry, separators=(",", ":")).encode("ascii")
        done = AuditEntry(seq, entry["time"], event, details, entry["hash"], _sha256(line))
        return done, line + b"\n"

    @staticmethod
    def _commit(f: Any, data: bytes) -> None:
        """Append ``data`` at the end and fsync it."""
        f.seek(0, os.SEEK_END)
        view = memoryview(data)
        while view:  # a raw write may be short
            view = view[f.write(view) :]
        os.fsync(f.fileno())


class _LockedFile:
    """A binary file held under an exclusive ``flock`` for the duration of a ``with``."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def __enter__(self) -> Any:
        if fcntl is not None:
            fcntl.flock(self.f.fileno(), fcntl.LOCK_EX)
        return self.f

    def __exit__(self, *exc: object) -> None:
        try:
            if fcntl is not None:
                fcntl.flock(self.f.fileno(), fcntl.LOCK_UN)
        finally:
            self.f.close()


def _fsync_dir(path: str) -> None:
    """Make a new file's directory entry durable (POSIX; a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


# -- verification ---------------------------------------------------------------------------


def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[bytes, bool]]:
    """Each line's bytes without its line end, and whether it had one (False: torn)."""
    with open(path, "rb") as f:
        for raw in f:
            if raw.endswith(b"\n"):
                yield raw[:-1], True
            else:
                yield raw, False


def _parse(raw: bytes) -> dict[str, Any] | str:
    """The entry, or why it is not one."""
    try:
        entry = json.loads(raw)
    except ValueError as exc:
        return f"not valid JSON ({exc.__class__.__name__})"
    if not isinstance(entry, dict):
        return "not a JSON object"
    missing = [k for k in _FIELDS if k not in entry]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    if not isinstance(entry["seq"], int) or isinstance(entry["seq"], bool):
        return "seq is not an integer"
    if not all(isinstance(entry[k], str) for k in ("time", "event", "prev", "hash")):
        return "time, event, prev and hash must be strings"
    if not isinstance(entry["details"], dict):
        return "details is not an object"
    return entry


def verify_audit_log(
    path: str | os.PathLike[str], *, anchor: AuditHead | None = None
) -> AuditVerification:
    """Check every line's hash and the chain; with ``anchor``, also that nothing was cut off.

    Each problem names the line it was found on and what the evidence points to: an edited
    line (its content does not match its hash), line(s) removed before it (seq jumps and the
    missing numbers appear nowhere later), lines reordered (a number out of sequence that
    does appear elsewhere), an inserted line (a number repeated), a broken link (``prev``
    does not match the line before: that line was edited and its hash recomputed, or
    replaced), a torn tail, or a line that is not JSON. A consequence is not reported twice:
    the line after an edited or unreadable one is not also reported for its ``prev``.
    """
    result = AuditVerification(ok=True, lines=0)
    if not os.path.exists(path):
        result.problems.append(AuditProblem(0, "missing", f"{os.fspath(path)} does not exist"))
        result.ok = False
        return result
    entries: list[tuple[bytes, bool, dict[str, Any] | str]] = [
        (raw, complete, _parse(raw)) for raw, complete in _lines(path)
    ]
    seqs_after: dict[int, int] = {}  # seq -> the last line number holding it
    for n, (_, _, parsed) in enumerate(entries, 1):
        if isinstance(parsed, dict):
            seqs_after[parsed["seq"]] = n
    problems = result.problems
    prev_bytes: bytes | None = None  # the previous line's bytes (None: before line 1)
    prev_seq = 0
    prev_suspect = False  # the previous line is already reported: skip the knock-on
    seen: set[int] = set()
    complete_lines = 0
    for n, (raw, complete, parsed) in enumerate(entries, 1):
        if not complete:
            problems.append(
                AuditProblem(n, "torn", f"torn tail: incomplete last line ({len(raw)} bytes)")
            )
            break
        complete_lines = n
        expected_prev = GENESIS if prev_bytes is None else _sha256(prev_bytes)
        prev_bytes = raw
        if isinstance(parsed, str):
            kind = "bad_json" if parsed.startswith("not valid JSON") else "malformed"
            problems.append(AuditProblem(n, kind, parsed))
            prev_suspect = True
            prev_seq += 1
            continue
        suspect = False
        if _sha256(canonical_bytes(parsed)) != parsed["hash"]:
            problems.append(
                AuditProblem(n, "edited", "edited: the content does not match its hash")
            )
            suspect = True
        seq, expected_seq = parsed["seq"], prev_seq + 1
        if seq != expected_seq:
            suspect = True
            if seq in seen:
                problems.append(
                    AuditProblem(n, "inserted", f"seq {seq} repeats: a line was inserted")
                )
            elif seq > expected_seq and seqs_after.get(expected_seq, 0) <= n:
                gone = (
                    f"seq {expected_seq}"
                    if seq == expected_seq + 1
                    else f"seq {expected_seq}-{seq - 1}"
                )
                problems.append(
                    AuditProblem(n, "removed", f"line(s) removed before this line ({gone})")
                )
            else:
                problems.append(
                    AuditProblem(
                        n, "reordered", f"reordered: seq {seq} where {expected_seq} was expected"
                    )
                )
        elif parsed["prev"] != expected_prev and not prev_suspect:
            problems.append(
                AuditProblem(
                    n,
                    "chain",
                    f"does not follow line {n - 1} (prev hash differs): line {n - 1} was "
                    "edited with its hash recomputed, or replaced",
                )
            )
            suspect = True
        seen.add(seq)
        if seq >= expected_seq:  # a number from the past leaves the position where it was
            prev_seq = seq
        prev_suspect = suspect
    result.lines = complete_lines
    if complete_lines and prev_bytes is not None:
        last_complete = entries[complete_lines - 1][0]
        size = sum(len(e[0]) + 1 for e in entries[:complete_lines])
        result.head = AuditHead(complete_lines, _sha256(last_complete), size)
    else:
        result.head = AuditHead(0, GENESIS, 0)
    if anchor is not None:
        _check_anchor(entries, complete_lines, anchor, problems)
    result.ok = not problems
    return result


def _check_anchor(
    entries: list[tuple[bytes, bool, dict[str, Any] | str]],
    complete_lines: int,
    anchor: AuditHead,
    problems: list[AuditProblem],
) -> None:
    """The anchored line must still be there, byte for byte (its hash covers all before it)."""
    if anchor.lines == 0:
        return
    if complete_lines < anchor.lines:
        problems.append(
            AuditProblem(
                complete_lines + 1,
                "truncated",
                f"truncated: {anchor.lines} line(s) were recorded, {complete_lines} remain",
            )
        )
        return
    if _sha256(entries[anchor.lines - 1][0]) != anchor.line_sha256:
        problems.append(
            AuditProblem(
                anchor.lines,
                "chain",
                f"line {anchor.lines} is not the line recorded as the head at finalisation: "
                "the log was rewritten up to here",
            )
        )
