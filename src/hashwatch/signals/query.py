"""What is matched: typed signals of one item, built from a hashed file or, at the JSON edge,
from its fields. Every registered signal type that may be queried is taken from the registry
(:data:`hashwatch.signals.types.SIGNAL_TYPES`), so a new type needs no change here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hashwatch.signals.types import SIGNAL_TYPES, HashType

if TYPE_CHECKING:
    from hashwatch.signals.hasher import FileSignals
    from hashwatch.signals.local_features import QueryFeatures

__all__ = ["MediaQuery", "Signal", "signals_from_fields", "signals_of"]


@dataclass(frozen=True)
class Signal:
    """One hash to match. ``dihedral`` holds the 8 variants of a PDQ hash when known;
    ``picture`` names what was hashed when it is not the picture as it is ("trimmed": the
    picture inside its uniform border), so a match can say so."""

    hash_type: HashType
    value: str
    quality: int | None = None
    dihedral: tuple[str, ...] | None = None
    picture: str | None = None


def signals_of(fs: FileSignals) -> list[Signal]:
    """The matchable signals of a hashed file, in registry order."""
    out: list[Signal] = []
    for htype, impl in SIGNAL_TYPES.items():
        if not impl.query:
            continue
        quality, variants = impl.quality_of(fs), impl.variants_of(fs)
        out.extend(Signal(htype, value, quality, variants) for value in impl.values_of(fs))
    if fs.trimmed is not None:
        t = fs.trimmed
        out.append(Signal(HashType.PDQ, t.hash, t.quality, t.dihedral, picture="trimmed"))
    return out


def signals_from_fields(fields: Mapping[str, Any]) -> list[Signal]:
    """The matchable signals of a hashed file given as its JSON fields (``hashwatch hash``
    output, scan results): each type's ``fields``, with ``<field>_quality`` and
    ``<field>_dihedral`` where present (PDQ), and the border-trimmed picture's ``pdq_trimmed``."""
    out: list[Signal] = []
    for htype, impl in SIGNAL_TYPES.items():
        if not impl.query:
            continue
        for key in impl.fields:
            if not fields.get(key):
                continue
            dihedral = fields.get(f"{key}_dihedral")
            out.append(
                Signal(
                    htype,
                    fields[key],
                    fields.get(f"{key}_quality"),
                    tuple(dihedral) if dihedral else None,
                )
            )
    if fields.get("pdq_trimmed"):  # the picture inside its border (HashOptions.border_trim)
        dihedral = fields.get("pdq_trimmed_dihedral")
        out.append(
            Signal(
                HashType.PDQ,
                fields["pdq_trimmed"],
                fields.get("pdq_trimmed_quality"),
                tuple(dihedral) if dihedral else None,
                picture="trimmed",
            )
        )
    return out


@dataclass(frozen=True)
class MediaQuery:
    """Everything matched for one item: its signals and, for a video or an animated image,
    its sampled frames (``frame``, ``timestamp``, ``pdq``, ``quality`` each). An item with
    frames is matched by vPDQ's rules (its own PDQ is its first frame). ``features``: a
    picture's local features, when they were described (for lists that use them)."""

    signals: tuple[Signal, ...] = ()
    frames: tuple[Mapping[str, Any], ...] | None = None
    features: QueryFeatures | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of_file(cls, fs: FileSignals) -> MediaQuery:
        frames = tuple(fs.video.frames) if fs.video is not None and fs.video.frames else None
        return cls(tuple(signals_of(fs)), frames, None if frames else fs.features)

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> MediaQuery:
        frames: Sequence[Mapping[str, Any]] | None = fields.get("frames") or None
        return cls(tuple(signals_from_fields(fields)), tuple(frames) if frames else None)
