"""Every signal of one file: byte digests from one streamed read, plus PDQ for images.

The first block of the read decides, from content, whether the file is an image; if so the
blocks are kept and the image is decoded from memory, so the file is read once. A file that
cannot be decoded still gets its byte digests and an ``error`` saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashwatch import __version__
from hashwatch.errors import DecodeError
from hashwatch.signals.digests import ByteDigests, digest_file
from hashwatch.signals.image import sniff_media_type
from hashwatch.signals.pdq import PdqPolicy, PdqResult, compute_pdq, get_pdq_policy

__all__ = ["FileSignals", "HashOptions", "hash_file"]

# Images larger than this are decoded from the file instead of from the bytes of the digest
# read (a second read, rather than holding hundreds of MB per worker).
KEEP_IN_MEMORY_MAX = 512 * 1024 * 1024


@dataclass(frozen=True)
class HashOptions:
    dihedral: bool = False
    policy: str = "fast"
    max_image_pixels: int | None = None

    @property
    def pdq_policy(self) -> PdqPolicy:
        return get_pdq_policy(self.policy)


@dataclass(frozen=True)
class FileSignals:
    path: str
    digests: ByteDigests | None
    mime: str | None = None
    pdq: PdqResult | None = None
    error: str | None = None

    @property
    def media_type(self) -> str | None:
        if self.mime is None:
            return None
        return self.mime.split("/", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.digests is not None:
            out.update(self.digests.as_dict())
        if self.mime is not None:
            out["media_type"] = self.media_type
            out["mime"] = self.mime
        if self.pdq is not None:
            out["width"] = self.pdq.width
            out["height"] = self.pdq.height
            out["pdq"] = self.pdq.hash
            out["pdq_quality"] = self.pdq.quality
            if self.pdq.dihedral is not None:
                out["pdq_dihedral"] = list(self.pdq.dihedral)
            out["pdq_policy"] = self.pdq.policy
        out["hashed_by"] = f"hashwatch {__version__}"
        if self.error is not None:
            out["error"] = self.error
        return out


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) < 300 else text[:297] + "..."


def hash_file(path: str | os.PathLike[str], options: HashOptions | None = None) -> FileSignals:
    """All signals of the file at ``path``; never raises for a bad file, reports ``error``."""
    options = options or HashOptions()
    shown = str(path)
    mime: str | None = None

    def keep(first_block: bytes, size: int) -> bool:
        nonlocal mime
        mime = sniff_media_type(first_block[:64])
        return mime is not None and mime.startswith("image/") and size <= KEEP_IN_MEMORY_MAX

    try:
        digests, content = digest_file(path, keep=keep)
    except OSError as exc:
        return FileSignals(shown, None, error=f"cannot read: {exc.strerror or _describe(exc)}")
    if mime is None or not mime.startswith("image/"):
        return FileSignals(shown, digests, mime=mime)
    source: bytes | Path = content if content is not None else Path(path)
    try:
        pdq = compute_pdq(
            source,
            options.pdq_policy,
            dihedral=options.dihedral,
            **({"max_pixels": options.max_image_pixels} if options.max_image_pixels else {}),
        )
    except DecodeError as exc:
        return FileSignals(shown, digests, mime=mime, error=_describe(exc))
    except (MemoryError, OSError, ValueError) as exc:  # decoder faults never stop a run
        return FileSignals(shown, digests, mime=mime, error=f"cannot decode: {_describe(exc)}")
    return FileSignals(shown, digests, mime=mime, pdq=pdq)
