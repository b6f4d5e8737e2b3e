"""The one contract every PDQ index passes: exact radius search, changes, persistence.

Each implementation is compared with an oracle written here in plain numpy (not the
library's reference, so that a shared bug cannot hide), on exact sets of
(query, id, distance): a missed match, an extra one or a wrong distance all fail.
``MihPdqIndex`` runs in three shapes: small enough to scan, small but forced onto tables,
and at 120 k hashes where the default parameters build real multi-index tables.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from hashwatch.errors import IndexFormatError
from hashwatch.index import (
    LinearPdqIndex,
    MihPdqIndex,
    PdqIndex,
    QueryResult,
    hex_to_rows,
    load_index,
    read_header,
    rows_to_hex,
    save_index,
)

Rows = npt.NDArray[np.uint8]
Triples = set[tuple[int, int, int]]

FACTORIES: dict[str, Callable[[], PdqIndex]] = {
    "linear": LinearPdqIndex,
    "mih-scan": MihPdqIndex,  # below linear_below: no tables
    "mih-tables": lambda: MihPdqIndex(linear_below=0),
}
LARGE_N = 120_000


# -- helpers --------------------------------------------------------------------------------


def flip(rng: np.random.Generator, rows: Rows, distances: npt.ArrayLike) -> Rows:
    """Row i with exactly distances[i] distinct bits flipped."""
    d = np.asarray(distances, dtype=np.int64)
    order = np.argsort(rng.random((rows.shape[0], 256), dtype=np.float32), axis=1)
    mask = np.zeros((rows.shape[0], 256), dtype=bool)
    np.put_along_axis(mask, order, np.arange(256)[None, :] < d[:, None], axis=1)
    return rows ^ np.packbits(mask, axis=1)


def distance_matrix(stored: dict[int, bytes], queries: Rows) -> tuple[npt.NDArray[np.int64], Any]:
    """(ids, distances queries × stored) by unpacked bits and a float matmul: no shared code."""
    ids = np.array(list(stored), dtype=np.int64)
    raw = np.frombuffer(b"".join(stored.values()), np.uint8).reshape(-1, 32)
    qbits = np.unpackbits(queries, axis=1).astype(np.float32)
    dist = np.empty((queries.shape[0], ids.shape[0]), dtype=np.int16)
    for s in range(0, ids.shape[0], 20_000):
        bits = np.unpackbits(raw[s : s + 20_000], axis=1).astype(np.float32)
        # Differing bits = |a| + |b| - 2 a·b, exact in float32 for counts ≤ 256.
        both = qbits @ bits.T
        dist[:, s : s + 20_000] = qbits.sum(1)[:, None] + bits.sum(1)[None, :] - 2 * both
    return ids, dist


def oracle(stored: dict[int, bytes], queries: Rows, radius: int, matrix: Any = None) -> Triples:
    if not stored:
        return set()
    ids, dist = matrix if matrix is not None else distance_matrix(stored, queries)
    qi, si = np.nonzero(dist <= radius)
    return set(zip(qi.tolist(), ids[si].tolist(), dist[qi, si].tolist(), strict=True))


def triples(res: QueryResult) -> Triples:
    return set(zip(res.query.tolist(), res.ids.tolist(), res.distances.tolist(), strict=True))


def assert_matches(
    index: PdqIndex, stored: dict[int, bytes], queries: Rows, radius: int, matrix: Any = None
) -> None:
    res = index.query(queries, radius)
    got = triples(res)
    assert len(got) == len(res), "duplicate (query, id) rows in the result"
    want = oracle(stored, queries, radius, matrix)
    missing, extra = want - got, got - want
    assert not missing and not extra, (
        f"radius {radius}: {len(missing)} missed, e.g. {sorted(missing)[:3]}; "
        f"{len(extra)} wrong, e.g. {sorted(extra)[:3]}"
    )
    order = np.lexsort((res.ids, res.distances, res.query))
    assert np.array_equal(order, np.arange(len(res))), "rows not sorted by query, distance, id"


def dataset(rng: np.random.Generator, n: int) -> tuple[npt.NDArray[np.int64], Rows]:
    ids = rng.choice(10 * n, size=n, replace=False).astype(np.int64) - 3 * n  # some negative
    return ids, rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def planted_queries(rng: np.random.Generator, rows: Rows, top: int, random: int) -> Rows:
    """A query at every distance 0..top from some stored row, plus random queries."""
    distances = np.arange(top + 1)
    src = rng.integers(0, rows.shape[0], distances.shape[0])
    near = flip(rng, rows[src], distances)
    return np.concatenate([near, rng.integers(0, 256, size=(random, 32), dtype=np.uint8)])


def as_dict(ids: npt.NDArray[np.int64], rows: Rows) -> dict[int, bytes]:
    return {int(i): bytes(r) for i, r in zip(ids, rows, strict=True)}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest) -> Callable[[], PdqIndex]:
    return FACTORIES[request.param]


# -- exact search ---------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [0, 31, 40, 90])
def test_exact_at_small_size(make: Callable[[], PdqIndex], radius: int) -> None:
    rng = np.random.default_rng(radius)
    ids, rows = dataset(rng, 3_000)
    index = make()
    index.add(ids, rows)
    assert len(index) == 3_000
    queries = planted_queries(rng, rows, radius + 3, 20)
    assert_matches(index, as_dict(ids, rows), queries, radius)


Large = tuple[MihPdqIndex, dict[int, bytes], Rows, Any]


@pytest.fixture(scope="module")
def large() -> Large:
    rng = np.random.default_rng(7)
    ids, rows = dataset(rng, LARGE_N)
    index = MihPdqIndex.build(ids, rows)
    queries = planted_queries(rng, rows, 48, 40)
    stored = as_dict(ids, rows)
    return index, stored, queries, distance_matrix(stored, queries)


@pytest.mark.parametrize("radius", [0, 31, 40, 64, 140, 256])
def test_exact_with_real_tables(large: Large, radius: int) -> None:
    index, stored, queries, matrix = large
    assert index.table_count >= 8, "the default parameters should build tables at this size"
    before = index.stats.scanned
    if radius > 64:  # every query matches much of the index: keep the result sets small
        queries, matrix = queries[:2], (matrix[0], matrix[1][:2])
    assert_matches(index, stored, queries, radius, matrix)
    if radius in (0, 31, 40):
        assert index.stats.scanned == before, "these radii must be answered by probing"


def spread(rng: np.random.Generator, index: MihPdqIndex, row: Rows, radius: int) -> Rows:
    """``row`` with ``radius`` bits flipped as evenly as possible over the index's substrings.

    The worst case for multi-index hashing: no substring keeps much of the distance, so a
    probe radius one too small anywhere misses it (random flips almost never do this).
    """
    widths = index.widths
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    base, extra = divmod(radius, len(widths))
    heavier = set(rng.choice(len(widths), extra, replace=False).tolist())
    chosen: list[int] = []
    for t, (start, width) in enumerate(zip(starts, widths, strict=True)):
        count = base + (t in heavier)
        chosen += rng.choice(np.arange(start, start + width), count, replace=False).tolist()
    out = row.copy()
    for bit in index.permutation[chosen].tolist():  # permuted bit j is original bit perm[j]
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


@pytest.mark.parametrize("n", [3_000, LARGE_N])
def test_near_duplicates_spread_over_every_substring_are_found(n: int) -> None:
    rng = np.random.default_rng(n)
    ids, rows = dataset(rng, n)
    index = MihPdqIndex.build(ids, rows, linear_below=0)
    radii = [*range(0, 49), 64]
    src = rng.integers(0, n, len(radii) * 3)
    queries = np.stack([spread(rng, index, rows[s], radii[k // 3]) for k, s in enumerate(src)])
    stored = as_dict(ids, rows)
    for k, s in enumerate(src.tolist()):  # exact radius: each query's source is just inside
        got = index.query(queries[k : k + 1], radii[k // 3])
        assert int(ids[s]) in got.ids.tolist(), f"missed a spread duplicate at {radii[k // 3]}"
    for radius in (31, 40):
        assert_matches(index, stored, queries, radius)


def test_clustered_hashes_fall_back_to_a_scan_and_stay_exact() -> None:
    """Families of near-duplicates swell buckets; those queries are scanned, still exactly."""
    rng = np.random.default_rng(11)
    bases = rng.integers(0, 256, size=(30, 32), dtype=np.uint8)
    members = np.repeat(bases, 2_000, axis=0)
    members = flip(rng, members, rng.integers(0, 9, members.shape[0]))
    rows = np.concatenate([members, rng.integers(0, 256, size=(40_000, 32), dtype=np.uint8)])
    ids = np.arange(rows.shape[0], dtype=np.int64)
    index = MihPdqIndex.build(ids, rows)
    family_queries = flip(rng, bases[:6], [0, 5, 12, 20, 28, 31])
    queries = planted_queries(rng, rows[-40_000:], 33, 5)
    queries = np.insert(queries, [3, 9, 9, 20, 30, 39], family_queries, axis=0)  # mixed in
    assert_matches(index, as_dict(ids, rows), queries, 31)
    assert index.stats.fallbacks >= 6
    assert index.stats.fallbacks < queries.shape[0]


# -- changes --------------------------------------------------------------------------------


@pytest.mark.parametrize("merge_min", [50_000, 200])
def test_add_remove_readd(make: Callable[[], PdqIndex], merge_min: int) -> None:
    rng = np.random.default_rng(merge_min)
    index = make()
    if isinstance(index, MihPdqIndex):
        index.merge_min = merge_min  # 200: changes get merged by rebuilds during the test
    ids, rows = dataset(rng, 2_500)
    index.add(ids[:2_000], rows[:2_000])
    stored = as_dict(ids[:2_000], rows[:2_000])
    index.add(ids[2_000:], rows[2_000:])  # add after build
    stored.update(as_dict(ids[2_000:], rows[2_000:]))
    gone = np.concatenate([ids[:150], ids[2_400:], [10**12]])  # an unknown id is ignored
    index.remove(gone)
    for i in gone.tolist():
        stored.pop(i, None)
    moved = ids[150:400]  # re-add existing ids with new hashes: replaced, not duplicated
    new_rows = rng.integers(0, 256, size=(moved.shape[0], 32), dtype=np.uint8)
    index.add(moved, new_rows)
    stored.update(as_dict(moved, new_rows))
    back = ids[:50]  # removed ids come back
    index.add(back, rows[:50])
    stored.update(as_dict(back, rows[:50]))
    assert len(index) == len(stored)
    queries = np.concatenate(
        [
            planted_queries(rng, new_rows, 33, 0),
            planted_queries(rng, rows[:150], 33, 0),  # near removed (and some re-added) rows
            planted_queries(rng, rows[400:2_400], 33, 10),
        ]
    )
    for radius in (0, 31):
        assert_matches(index, stored, queries, radius)


def test_duplicate_ids_in_one_batch_keep_the_last(make: Callable[[], PdqIndex]) -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 256, size=(3, 32), dtype=np.uint8)
    index = make()
    index.add(np.array([5, 5, 6]), rows)
    assert len(index) == 2
    res = index.query(rows, 0)
    assert triples(res) == {(1, 5, 0), (2, 6, 0)}


def test_empty_index_and_empty_queries(make: Callable[[], PdqIndex]) -> None:
    index = make()
    none = np.zeros((0, 32), dtype=np.uint8)
    assert len(index.query(none, 31)) == 0
    assert len(index.query(np.zeros((2, 32), dtype=np.uint8), 31)) == 0
    index.add(np.array([1]), np.zeros((1, 32), dtype=np.uint8))
    assert len(index.query(none, 31)) == 0
    index.remove(np.array([1]))
    assert len(index) == 0
    assert len(index.query(np.zeros((1, 32), dtype=np.uint8), 256)) == 0


def test_bad_arguments_are_rejected(make: Callable[[], PdqIndex]) -> None:
    index = make()
    with pytest.raises(ValueError):
        index.add(np.array([1, 2]), np.zeros((1, 32), dtype=np.uint8))
    with pytest.raises(ValueError):
        index.add(np.array([1]), np.zeros((1, 31), dtype=np.uint8))
    for radius in (-1, 257):
        with pytest.raises(ValueError):
            index.query(np.zeros((1, 32), dtype=np.uint8), radius)


def test_hex_round_trip() -> None:
    hexes = ["f" * 64, "0123456789abcdef" * 4]
    assert rows_to_hex(hex_to_rows(hexes)) == hexes


def test_the_oracle_catches_a_wrong_index() -> None:
    """The comparison can fail: an index that drops its farthest match is caught."""

    class Lossy(LinearPdqIndex):
        def query(self, hashes: Rows, radius: int) -> QueryResult:
            res = super().query(hashes, radius)
            keep = res.distances < max(1, int(res.distances.max(initial=0)))
            return QueryResult(res.query[keep], res.ids[keep], res.distances[keep])

    rng = np.random.default_rng(5)
    ids, rows = dataset(rng, 500)
    index = Lossy()
    index.add(ids, rows)
    with pytest.raises(AssertionError, match="missed"):
        assert_matches(index, as_dict(ids, rows), planted_queries(rng, rows, 31, 0), 31)


# -- persistence ----------------------------------------------------------------------------


def _mutated(make: Callable[[], PdqIndex]) -> tuple[PdqIndex, dict[int, bytes], Rows]:
    rng = np.random.default_rng(21)
    ids, rows = dataset(rng, 2_000)
    index = make()
    index.add(ids[:1_800], rows[:1_800])
    index.add(ids[1_800:], rows[1_800:])  # left in the delta buffer
    index.remove(ids[:100])  # left as tombstones
    stored = as_dict(ids[100:], rows[100:])
    return index, stored, planted_queries(rng, rows, 33, 10)


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(make: Callable[[], PdqIndex], tmp_path: Path, mmap: bool) -> None:
    index, stored, queries = _mutated(make)
    meta = {"watermark": 123456789, "instance_id": "a-b", "lists": ["x", "y"], "f": 0.5}
    path = tmp_path / "pdq.idx"
    save_index(index, path, meta)
    assert not [p for p in tmp_path.iterdir() if p.name != "pdq.idx"], "temp file left behind"
    loaded, got_meta = load_index(path, mmap=mmap)
    assert got_meta == meta and loaded.metadata == meta
    assert type(loaded) is type(index) and len(loaded) == len(index)
    for radius in (0, 31):
        a, b = index.query(queries, radius), loaded.query(queries, radius)
        assert triples(a) == triples(b)
    assert_matches(loaded, stored, queries, 31)
    header = read_header(path)
    assert header["kind"] == index.KIND and header["count"] == len(index)
    # The loaded index still takes changes (arrays are private copies, even when mapped).
    loaded.remove(np.array(list(stored)[:10]))
    loaded.add(np.array([10**9]), queries[:1])
    assert len(loaded) == len(index) - 9
    assert len(load_index(path)[0]) == len(index), "changing a loaded index changed the file"


def test_save_method_writes_the_index_metadata(tmp_path: Path) -> None:
    index = MihPdqIndex.build(np.array([1, 2]), np.zeros((2, 32), dtype=np.uint8))
    index.metadata["watermark"] = 7
    index.save(tmp_path / "a.idx")
    assert load_index(tmp_path / "a.idx")[1] == {"watermark": 7}
    save_index(index, tmp_path / "a.idx", {"watermark": 8})  # replaces the file atomically
    assert load_index(tmp_path / "a.idx")[1] == {"watermark": 8}


def test_metadata_must_be_json(tmp_path: Path) -> None:
    index = LinearPdqIndex()
    with pytest.raises(TypeError):
        save_index(index, tmp_path / "a.idx", {"when": object()})
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    rng = np.random.default_rng(9)
    ids, rows = dataset(rng, 40_000)  # above linear_below: tables are written too
    index = MihPdqIndex.build(ids, rows)
    index.add(ids[:10], rows[10:20])
    path = tmp_path_factory.mktemp("idx") / "pdq.idx"
    save_index(index, path, {"watermark": 1})
    return path.read_bytes()


def _header_end(blob: bytes) -> int:
    return 24 + int(struct.unpack_from("<I", blob, 12)[0])


def _corruptions(blob: bytes) -> dict[str, bytes]:
    end = _header_end(blob)
    header = json.loads(blob[24:end])
    arrays = {a["name"]: a for a in header["arrays"]}
    mid = arrays["table_ids"]["offset"] + arrays["table_ids"]["nbytes"] // 2

    def flipped(at: int) -> bytes:
        return blob[:at] + bytes([blob[at] ^ 0x10]) + blob[at + 1 :]

    first = min(a["offset"] for a in header["arrays"])

    def reheader(change: Callable[[dict[str, Any]], object]) -> bytes:
        """The same file with an edited header, re-checksummed, arrays left in place."""
        h = json.loads(blob[24:end])
        change(h)
        return with_header(json.dumps(h, separators=(",", ":")).encode())

    def with_header(new: bytes) -> bytes:
        assert 24 + len(new) <= first
        prefix = struct.pack("<8sIIII", blob[:8], 1, len(new), zlib.crc32(new), 0)
        return (prefix + new).ljust(first, b"\0") + blob[first:]

    return {
        "empty": b"",
        "cut in prefix": blob[:10],
        "cut in header": blob[: end - 5],
        "cut in arrays": blob[:mid],
        "cut by one byte": blob[:-1],
        "extra bytes": blob + b"\0",
        "wrong magic": b"NOTANIDX" + blob[8:],
        "wrong version": blob[:8] + struct.pack("<I", 99) + blob[12:],
        "header bit flip": flipped(30),
        "array bit flip": flipped(mid),
        "ids bit flip": flipped(arrays["ids"]["offset"] + 3),
        "unknown kind": reheader(lambda h: h.update(kind="faiss")),
        "bad dtype": reheader(lambda h: h["arrays"][0].update(dtype="O")),
        "shape lies": reheader(lambda h: h["arrays"][1].update(shape=[3, 4])),
        "bad widths": reheader(lambda h: h["params"].update(widths=[128, 128])),
        "count lies": reheader(lambda h: h.update(count=h["count"] + 1)),
        "not json": with_header(b"{" * (end - 24)),
        "header not an object": with_header(b"[1, 2]"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty", "cut in prefix", "cut in header", "cut in arrays", "cut by one byte",
        "extra bytes", "wrong magic", "wrong version", "header bit flip", "array bit flip",
        "ids bit flip", "unknown kind", "bad dtype", "shape lies", "bad widths", "count lies",
        "not json", "header not an object",
    ],
)  # fmt: skip
def test_damaged_files_raise_index_format_error(saved: bytes, tmp_path: Path, case: str) -> None:
    assert load_index_bytes(saved, tmp_path)[1] == {"watermark": 1}  # the intact file loads
    with pytest.raises(IndexFormatError):
        load_index_bytes(_corruptions(saved)[case], tmp_path)


@pytest.mark.parametrize(
    ("array", "at", "value"),
    [
        ("table_ids", 0, struct.pack("<I", 2**31)),  # a position past the end
        ("id_order", 8, struct.pack("<I", 2**31)),
        ("id_order", 0, struct.pack("<I", 1)),  # two slots name the same row
        ("offsets", 4, struct.pack("<I", 2**31)),  # offsets that fall back
    ],
)
def test_structure_is_checked_even_without_checksums(
    saved: bytes, tmp_path: Path, array: str, at: int, value: bytes
) -> None:
    """Damage that a checksum would catch must not reach the kernels when checks are off."""
    end = _header_end(saved)
    header = json.loads(saved[24:end])
    entry = next(a for a in header["arrays"] if a["name"] == array)
    blob = bytearray(saved)
    blob[entry["offset"] + at : entry["offset"] + at + len(value)] = value
    path = tmp_path / "x.idx"
    path.write_bytes(bytes(blob))
    with pytest.raises(IndexFormatError):
        load_index(path, verify=False)


def load_index_bytes(blob: bytes, tmp_path: Path) -> tuple[PdqIndex, dict[str, object]]:
    path = tmp_path / "case.idx"
    path.write_bytes(blob)
    return load_index(path)
