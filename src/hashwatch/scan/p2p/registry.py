"""The P2P artifact readers hashwatch knows, and which one recognises a file.

Each client module exposes ``READERS``, a tuple of reader instances; adding a client format is
one module and its name below. Modules are imported on first use, so a scan that meets no P2P
artifact pays nothing.
"""

from __future__ import annotations

import importlib
from functools import cache

from hashwatch.scan.p2p.record import P2PArtifactReader

__all__ = ["HEAD_BYTES", "reader_for", "readers"]

HEAD_BYTES = 4096  # what a reader may look at to recognise its artifact

_MODULES = (
    "hashwatch.scan.p2p.emule",
    "hashwatch.scan.p2p.gnutella",
    "hashwatch.scan.p2p.bittorrent",
    "hashwatch.scan.p2p.shareaza",
    "hashwatch.scan.p2p.limewire_downloads",
)


@cache
def readers() -> tuple[P2PArtifactReader, ...]:
    """Every registered reader, in a stable order; (client, artifact) pairs are unique."""
    found: list[P2PArtifactReader] = []
    for module_name in _MODULES:
        module = importlib.import_module(module_name)
        found.extend(module.READERS)
    seen: set[tuple[str, str]] = set()
    for reader in found:
        key = (reader.client, reader.artifact)
        if key in seen:
            raise RuntimeError(f"two P2P readers for {key[0]} {key[1]}")
        seen.add(key)
    return tuple(found)


def reader_for(name: str, head: bytes) -> P2PArtifactReader | None:
    """The reader that recognises a file of this base name and head, or None."""
    for reader in readers():
        if reader.recognises(name, head[:HEAD_BYTES]):
            return reader
    return None
