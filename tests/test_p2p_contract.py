"""Every P2P artifact reader passes the same contract (hashwatch.scan.p2p.record).

Each reader in the registry has a generated sample of its artifact (``SAMPLES`` of every
``tests/p2p_*_builders.py``, keyed ``(client, artifact)``), written under its usual file
name. The registry hands that file to this reader; the reader yields records numbered 0..n-1
and nothing else; the records are JSON-serialisable; and the sample cut at every 7th byte
yields only records and problems, never an exception.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from hashwatch.scan.p2p.record import P2PArtifactReader, P2PReadProblem, P2PRecord
from hashwatch.scan.p2p.registry import HEAD_BYTES, reader_for, readers

BUILDERS: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"tests.{path.stem}")
    for path in sorted(Path(__file__).parent.glob("p2p_*_builders.py"))
)
SAMPLES: dict[tuple[str, str], Callable[[], bytes]] = {
    key: build for module in BUILDERS for key, build in module.SAMPLES.items()
}


def _sample(tmp_path: Path, key: tuple[str, str]) -> Path:
    """The sample written under its usual name by the builder module that holds it."""
    for module in BUILDERS:
        if key in module.SAMPLES:
            path: Path = module.write_sample(tmp_path, key)
            return path
    raise AssertionError(f"no sample for the {key[0]} {key[1]} reader: add one to SAMPLES")


def _id(reader: P2PArtifactReader) -> str:
    return f"{reader.client}-{reader.artifact}"


def test_every_reader_has_a_sample_and_every_sample_a_reader() -> None:
    keys = {(r.client, r.artifact) for r in readers()}
    assert keys - set(SAMPLES) == set(), "readers without a sample"
    assert set(SAMPLES) - keys == set(), "samples without a reader"


@pytest.mark.parametrize("reader", readers(), ids=_id)
def test_reader_contract(reader: P2PArtifactReader, tmp_path: Path) -> None:
    path = _sample(tmp_path, (reader.client, reader.artifact))
    data = path.read_bytes()
    assert reader.recognises(path.name, data[:HEAD_BYTES])
    assert reader_for(path.name, data[:HEAD_BYTES]) is reader  # no other reader claims it

    found = list(reader.read(io.BytesIO(data), len(data)))
    records = [r for r in found if isinstance(r, P2PRecord)]
    assert records and len(records) == len(found), [r for r in found if r not in records]
    assert [r.index for r in records] == list(range(len(records)))
    for record in records:
        assert (record.client, record.artifact) == (reader.client, reader.artifact)
        assert all(isinstance(v, str) and v for v in record.hashes.values())
        json.dumps(dataclasses.asdict(record))

    for cut in range(0, len(data), 7):
        part = data[:cut]
        out = list(reader.read(io.BytesIO(part), len(part)))
        assert all(isinstance(x, P2PRecord | P2PReadProblem) for x in out)
        got = [x.index for x in out if isinstance(x, P2PRecord)]
        assert got == sorted(set(got)), f"cut at {cut}: record indices {got}"
        for x in out:
            json.dumps(dataclasses.asdict(x))
