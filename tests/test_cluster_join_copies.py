"""Exact copies of a picture are asked of the PDQ join once, and the clusters stay exact."""

from __future__ import annotations

import numpy as np
import pytest

from hashwatch.scan import cluster
from hashwatch.scan.cluster import cluster_new_media
from hashwatch.scan.model import ItemRecord, ItemStatus


def _item(n: int, md5: str, hashes: list[str], quality: int = 90) -> ItemRecord:
    return ItemRecord(
        path=f"/e/p{n:04d}.jpg",
        root="/e",
        md5=md5,
        media_type="image",
        pdq=hashes[0],
        pdq_quality=quality,
        pdq_dihedral=hashes,
        status=ItemStatus.NEW,
    )


def _hashes(rng: np.random.Generator, near: str | None = None) -> list[str]:
    out = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex() for _ in range(8)]
    if near is not None:  # the original's hash with 20 bits flipped
        bits = np.unpackbits(np.frombuffer(bytes.fromhex(near), dtype=np.uint8))
        bits[rng.choice(256, size=20, replace=False)] ^= 1
        out[0] = np.packbits(bits).tobytes().hex()
    return out


def test_copies_of_a_picture_are_asked_once_and_cluster_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A seized drive holds the same files many times over. Each copy (same MD5, same
    hashes) is joined to its original by its bytes, so only the original's variants are
    asked of the PDQ join; a near-duplicate of a copy still joins the copy's cluster, a file
    whose bytes match but whose hashes differ (hashed another way) is still asked, and a
    copy of a flat picture (quality too low to match) is joined by its bytes alone."""
    rng = np.random.default_rng(11)
    items: list[ItemRecord] = []
    originals = [_hashes(rng) for _ in range(20)]
    for i, hashes in enumerate(originals):
        for _ in range(5):  # five copies of each
            items.append(_item(len(items), f"{i:032x}", hashes))
    near = _item(len(items), f"{100:032x}", _hashes(rng, near=originals[3][0]))
    items.append(near)
    other = _item(len(items), f"{4:032x}", _hashes(rng))  # same bytes as #4, other hashes
    items.append(other)
    flat = [_item(len(items) + k, f"{200:032x}", originals[7], quality=10) for k in range(2)]
    items += flat
    asked: list[int] = []
    real = cluster.dihedral_pairs

    def counting(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        asked.append(int(np.asarray(args[3]).sum()))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cluster, "dihedral_pairs", counting)
    clusters = cluster_new_media(items, threshold=31)
    assert asked == [20 + 2]  # one of each five copies, the near-duplicate, the other hashes
    groups = {frozenset(c.members) for c in clusters}
    copies = [frozenset(items[5 * i + k].path for k in range(5)) for i in range(20)]
    expected = set(copies)
    expected.remove(copies[3])
    expected.add(copies[3] | {near.path})
    expected.remove(copies[4])
    expected.add(copies[4] | {other.path})
    expected.add(frozenset(f.path for f in flat))
    assert groups == expected
