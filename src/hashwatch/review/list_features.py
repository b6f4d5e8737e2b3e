"""The local features of reviewed pictures, for a list that keeps them.

When a decision's items become entries of a list with local features on
(``lists set NAME --local-features on``), the pictures among them are read from the evidence
(read-only, checked against the SHA-256 the scan recorded, through
:func:`hashwatch.review.media.read_evidence_item`) and described, so that cropped, turned and
framed copies of them are found later. A picture that cannot be read (evidence gone or
changed) keeps its hashes only: the decision and its entries stand either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hashwatch.lists.model import EntryRecord
from hashwatch.review.media import read_evidence_item
from hashwatch.signals.image import DEFAULT_MAX_PIXELS
from hashwatch.signals.local_features import FeatureSet, describe_file
from hashwatch.store.database import Database
from hashwatch.store.list_apply import entry_key
from hashwatch.store.lists import ListStore
from hashwatch.store.local_features import LocalFeatureStore

__all__ = ["add_item_features"]


def add_item_features(
    db: Database,
    lists: ListStore,
    list_name: str,
    pairs: Sequence[tuple[Any, EntryRecord]],
    *,
    actor: str,
) -> int:
    """Store the features of the pictures among ``pairs`` (a case item row and the entry
    record made of it) when list ``list_name`` keeps local features; returns how many."""
    if not lists.get(list_name, with_counts=False).local_features:
        return 0
    features: dict[str, FeatureSet] = {}
    for item, record in pairs:
        if item.media_type != "image":
            continue
        read = read_evidence_item(item.path, item.sha256, root=item.root)
        if not read.available or read.data is None:
            continue
        found = describe_file(read.data, max_pixels=DEFAULT_MAX_PIXELS, max_decode_pixels=None)
        if found is not None:
            features[entry_key(record)] = found
    return LocalFeatureStore(db).put(list_name, features, actor=actor)
