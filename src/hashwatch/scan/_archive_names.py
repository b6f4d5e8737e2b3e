"""Names and dates of archive members as shown in records, apart from the readers.

How a member's name is displayed (control and format characters escaped), when it is unsafe,
what a lone compressed stream's single member is called, and how archive times become
ISO-8601 text: the rules are described in :mod:`hashwatch.scan.archives`.
"""

from __future__ import annotations

import posixpath
import struct
import unicodedata
import zipfile
from datetime import UTC, datetime

__all__ = ["iso_time", "safe_display", "single_name", "unsafe_name", "zip_mtime"]

_SUFFIXES = {
    ".gz": "",
    ".gzip": "",
    ".z": "",
    ".tgz": ".tar",
    ".bz2": "",
    ".bz": "",
    ".tbz": ".tar",
    ".tbz2": ".tar",
    ".xz": "",
    ".txz": ".tar",
}
_ESCAPED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})  # control, format (bidi), separators


def iso_time(seconds: float) -> str | None:
    """UTC seconds as ISO-8601 with ``Z``; None for a time no calendar holds."""
    try:
        when = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    spec = "seconds" if when.microsecond == 0 else "microseconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def safe_display(text: str) -> str:
    """``text`` with control and format characters escaped (``\\x1b``, ``\\u202e``; an
    undecodable byte kept as a surrogate escape: ``\\xNN``); printable text is returned as is."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if unicodedata.category(ch) not in _ESCAPED:
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def unsafe_name(name: str) -> bool:
    """Absolute, drive-lettered, climbing (``..``) or holding characters that are escaped."""
    slashed = name.replace("\\", "/")
    if slashed.startswith("/") or (len(slashed) > 1 and slashed[1] == ":"):
        return True
    return ".." in slashed.split("/") or safe_display(name) != name


def zip_mtime(info: zipfile.ZipInfo) -> str | None:
    """The entry's UTC time where the extra field has one, else its zoneless DOS time."""
    extra, i = info.extra, 0
    while i + 4 <= len(extra):  # the "UT" extended timestamp is UTC; DOS time has no zone
        tag, length = struct.unpack_from("<HH", extra, i)
        if tag == 0x5455 and length >= 5 and extra[i + 4] & 1:
            return iso_time(struct.unpack_from("<i", extra, i + 5)[0])
        i += 4 + length
    try:
        return datetime(*info.date_time).isoformat()
    except ValueError:
        return None


def single_name(container_display: str) -> str:
    """The one member of a lone gz/bz2/xz: the name without its suffix, or with ``~``."""
    base = container_display.rsplit("/", 1)[-1]
    stem, suffix = posixpath.splitext(base)
    if suffix.lower() in _SUFFIXES and stem:
        return stem + _SUFFIXES[suffix.lower()]
    return base + "~"
