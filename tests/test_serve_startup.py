"""A server's start loads its mapped index without a JIT call: the first kernel call of a
process loads numba's CPU target (a quarter of a second and more), which ``hashwatch serve``
paid before ``/healthz`` answered (issue 18). The loaded index still answers exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from hashwatch.index import MihPdqIndex
from hashwatch.index.persist import save_index

_CHILD = """
import json, sys
import numpy as np
from hashwatch.index import _kernels
from hashwatch.index.persist import load_index

index, meta = load_index(sys.argv[1], mmap=True)
dispatched = sorted(
    name for name in _kernels.__all__
    if getattr(getattr(_kernels, name), "overloads", None)
)
queries = np.load(sys.argv[2])
answer = index.query(queries, 8)
print(json.dumps({
    "dispatched_at_load": dispatched,
    "count": len(index),
    "meta": meta,
    "ids": answer.ids.tolist(),
}))
"""


def test_a_mapped_index_loads_without_a_kernel_call_and_answers(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    hashes = rng.integers(0, 256, size=(3_000, 32), dtype=np.uint8)
    index = MihPdqIndex(linear_below=0)  # tables, as a large list's index has
    index.add(np.arange(100, 3_100, dtype=np.int64), hashes)
    path = tmp_path / "list.pdqindex"
    save_index(index, path, {"watermark": 7})
    queries = hashes[[5, 2_999]].copy()
    queries[0, 0] ^= 0x0F  # 4 bits away from entry 105
    np.save(tmp_path / "queries.npy", queries)

    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(tmp_path / "queries.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = json.loads(child.stdout)

    assert out["dispatched_at_load"] == []
    assert out["count"] == 3_000
    assert out["meta"] == {"watermark": 7}
    assert out["ids"] == [105, 3_099]
