"""The one contract every registered signal type passes.

One generated benign animated picture is hashed once by the real one-pass hasher; every type
in the registry must then: find its value(s) in that result, accept them as canonical, agree
with its own reference hasher over the same bytes, spell a value one way only, refuse bad
values without echoing them, and match as it says it matches (equality, or Hamming within a
list's threshold) once its value is in a list. A new type is checked by being registered.
"""

from __future__ import annotations

import io

import pytest

from hashwatch.app import Hashwatch
from hashwatch.errors import InvalidHashError
from hashwatch.lists.model import EntryRecord
from hashwatch.matching.matcher import Signal
from hashwatch.signals.bittorrent import DEFAULT_PIECE_LENGTH
from hashwatch.signals.hasher import FileSignals, HashOptions, hash_stream
from hashwatch.signals.query import MediaQuery, signals_of
from hashwatch.signals.signal_type import MatchRule, SignalType, SignalValueError
from hashwatch.signals.types import (
    SIGNAL_TYPES,
    HashType,
    normalize_hash,
    parse_hash_type,
    signal_type,
)
from hashwatch.signals.types import _build_registry as build_registry
from tests.media import scene

TYPES = list(SIGNAL_TYPES.items())
IDS = [t.value for t, _ in TYPES]


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, FileSignals]:
    """A benign generated animated GIF: digests, a PDQ and sampled frames (a vPDQ key)."""
    pictures = [scene(300 + i, (160, 120)) for i in range(4)]
    buf = io.BytesIO()
    pictures[0].save(buf, "GIF", save_all=True, append_images=pictures[1:], duration=500, loop=0)
    data = buf.getvalue()
    # Every signal asked for, BitTorrent's too (off by default), at the piece length its
    # reference hasher uses.
    options = HashOptions(bittorrent=True, bt_piece_lengths=(DEFAULT_PIECE_LENGTH,))
    fs = hash_stream(io.BytesIO(data), "sample.gif", len(data), options)
    assert fs.error is None and fs.pdq is not None and fs.video is not None
    return data, fs


def test_every_hash_type_name_is_registered_once_with_unique_aliases() -> None:
    assert set(SIGNAL_TYPES) == set(HashType)
    names = [impl.name for impl in SIGNAL_TYPES.values()]
    assert names == [t.value for t in HashType]  # stored names never change
    spelled = [a for impl in SIGNAL_TYPES.values() for a in (impl.name, *impl.aliases)]
    assert len(spelled) == len(set(spelled))


def test_the_registry_refuses_a_duplicate_name_or_alias() -> None:
    md5 = SIGNAL_TYPES[HashType.MD5]
    with pytest.raises(RuntimeError, match="registered twice"):
        build_registry((*SIGNAL_TYPES.values(), type(md5)()))

    class Thief(type(SIGNAL_TYPES[HashType.SHA1])):  # type: ignore[misc]
        name = "sha256"
        aliases = ("sha-1",)

    others = tuple(v for k, v in SIGNAL_TYPES.items() if k is not HashType.SHA256)
    with pytest.raises(RuntimeError, match="claimed by"):
        build_registry((*others, Thief()))
    with pytest.raises(RuntimeError, match="without an implementation"):
        build_registry(others)


@pytest.mark.parametrize(("htype", "impl"), TYPES, ids=IDS)
def test_names_and_aliases_parse_to_the_type(htype: HashType, impl: SignalType) -> None:
    for spelling in (impl.name, *impl.aliases):
        assert parse_hash_type(spelling) is htype
        assert parse_hash_type(f" {spelling.upper()} ") is htype
        assert signal_type(spelling) is impl


@pytest.mark.parametrize(("htype", "impl"), TYPES, ids=IDS)
def test_the_hasher_yields_canonical_values_its_reference_hasher_agrees_with(
    htype: HashType, impl: SignalType, sample: tuple[bytes, FileSignals]
) -> None:
    data, fs = sample
    values = impl.values_of(fs)
    assert values, f"hashing a file yields no {htype} value"
    for value in values:
        assert impl.is_valid(value)
        assert normalize_hash(htype, value) == value
    assert impl.hash_bytes(data) == values[0]
    # The value reaches the JSON edge under the type's field, and is queried when it may be.
    fields = fs.as_dict()
    for key, value in zip(impl.fields, values, strict=False):
        assert fields[key] == value
    queried = {s.value for s in signals_of(fs) if s.hash_type is htype}
    assert queried == (set(values) if impl.query else set())
    from_json = {s.value for s in MediaQuery.from_fields(fields).signals if s.hash_type is htype}
    assert from_json == queried


@pytest.mark.parametrize(("htype", "impl"), TYPES, ids=IDS)
def test_one_value_has_one_spelling(
    htype: HashType, impl: SignalType, sample: tuple[bytes, FileSignals]
) -> None:
    value = impl.values_of(sample[1])[0]
    for spelling in (f"  {value}\n", value.upper(), value.lower()):
        assert impl.normalize(spelling) == value


@pytest.mark.parametrize(("htype", "impl"), TYPES, ids=IDS)
def test_bad_values_are_refused_without_being_echoed(
    htype: HashType, impl: SignalType, sample: tuple[bytes, FileSignals]
) -> None:
    value = impl.values_of(sample[1])[0]
    for bad in ("", value[:-1], value + value[-1], "!" + value[1:], value[:-1] + "\x00"):
        assert not impl.is_valid(bad)
        with pytest.raises(SignalValueError) as caught:
            impl.normalize(bad)
        assert len(value) < 8 or value[4:-4].lower() not in str(caught.value).lower()
        with pytest.raises(InvalidHashError):
            normalize_hash(htype, bad)


def _flip(value: str, bits: int) -> str:
    n = int(value, 16) ^ ((1 << bits) - 1)
    return f"{n:0{len(value)}x}"


@pytest.mark.parametrize(("htype", "impl"), TYPES, ids=IDS)
def test_a_listed_value_matches_as_its_type_says(
    htype: HashType,
    impl: SignalType,
    sample: tuple[bytes, FileSignals],
    sqlite_hw: Hashwatch,
) -> None:
    value = impl.values_of(sample[1])[0]
    if not impl.query:
        # A key that names an entry only (a frame set): never matched as a query signal.
        assert all(s.hash_type is not htype for s in signals_of(sample[1]))
        return
    record = EntryRecord(hashes=((htype, value),), category="1", source="contract")
    sqlite_hw.lists.add_records("contract", [record], source="contract test")
    matcher = sqlite_hw.matcher()
    (found,) = matcher.match_many([[Signal(htype, value)]])
    assert [(m.list, m.hash_type, m.distance) for m in found.matches] == [
        ("contract", htype.value, 0)
    ]
    if impl.match_rule is MatchRule.EQUAL:
        try:  # a value that is one hex number differs from its one-bit flip
            other = impl.normalize(_flip(value, 1)) if htype is not HashType.SHA1_BASE32 else None
        except ValueError:  # not one hex number ("<piece length>:<hex>")
            other = None
        other = other or impl.hash_bytes(b"another benign file")
        assert other is not None and other != value
        assert matcher.match_many([[Signal(htype, other)]])[0].matches == []
    else:
        assert impl.bits is not None
        threshold = sqlite_hw.lists.get("contract").pdq_threshold
        near, far = _flip(value, threshold), _flip(value, threshold + 1)
        (hit,) = matcher.match_many([[Signal(htype, near)]])[0].matches
        assert hit.distance == threshold
        assert matcher.match_many([[Signal(htype, far)]])[0].matches == []
