"""PDQ bits made from pdqhash's DCT are the bits pdqhash itself returns, for every picture.

For dihedral hashes hashwatch takes pdqhash's 16x16 DCT (``compute_float``) and makes the 8
hashes in numpy. For 64x64 pixels (what the fast policies hand pdqhash) ``fast-3`` keeps that
unfiltered DCT, the one ``compute`` hashes, so its first dihedral hash is the plain hash;
``fast-2`` and ``fast-1`` replay ``compute_dihedral``'s own path, which filters a 64x64 picture
where ``compute_float`` does not. Either way an investigator's hashes must not move by one bit:
each case below compares with ``pdqhash.compute`` / ``compute_float`` / ``compute_dihedral`` on
the same pixels.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pdqhash
import pytest

from hashwatch.signals import pdq
from hashwatch.signals.image import DecodedImage, decode_image
from hashwatch.signals.pdq import (
    FAST,
    FAST_1,
    FAST_2,
    REFERENCE,
    ZERO_HASH,
    PdqPolicy,
    hash_decoded,
)

PDQ_DIR = Path(__file__).parent / "data" / "pdq"
Pixels = npt.NDArray[np.uint8]


def _hex(vector: npt.NDArray[np.integer]) -> str:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()


def _pdqhash(pixels: Pixels, dihedral: bool) -> tuple[tuple[str, ...], int]:
    """What hashwatch computed before: pdqhash's vectors, as hex."""
    if dihedral:
        vectors, quality = pdqhash.compute_dihedral(pixels)
        return tuple(_hex(v) for v in vectors), int(quality)
    vector, quality = pdqhash.compute(pixels)
    return (_hex(vector),), int(quality)


def _from_compute_float(pixels: Pixels) -> tuple[tuple[str, ...], int]:
    """The 8 hashes pdqhash's C++ would make from ``compute_float``'s DCT, move by move.

    ``compute_float`` gives the 16x16 DCT ``A`` flattened and reversed (bit 255 first); each
    variant is a transpose and/or a sign flip of ``A`` (pdqhash's ``dct16OriginalToRotate90``
    and the six after it), hashed as bits above its median, bit 255 first again.
    """
    floats, quality = pdqhash.compute_float(pixels)
    a = np.asarray(floats, dtype=np.float64)[::-1].reshape(16, 16)
    i, j = np.indices((16, 16))
    variants = [
        a,
        np.where(j & 1, a, -a).T,  # Rotate90: B[j][i] = A[i][j], negated for even j
        np.where((i + j) & 1, -a, a),  # Rotate180
        np.where(i & 1, a, -a).T,  # Rotate270: B[j][i] = A[i][j], negated for even i
        np.where(i & 1, a, -a),  # FlipX
        np.where(j & 1, a, -a),  # FlipY
        a.T,  # FlipPlus1
        np.where((i + j) & 1, -a, a).T,  # FlipMinus1
    ]
    hashes = []
    for b in variants:
        values = b.ravel()
        median = np.partition(values, 127)[127]
        hashes.append(_hex((values > median)[::-1]))
    return tuple(hashes), int(quality)


def _expected(pixels: Pixels, dihedral: bool, policy: PdqPolicy) -> tuple[tuple[str, ...], int]:
    """What ``policy`` must give: pdqhash's own calls, or for fast-3's dihedral hashes of a
    64x64 picture the variants of ``compute_float``'s (unfiltered) DCT."""
    if dihedral and policy.dihedral_dct == "compute" and pixels.shape[:2] == (64, 64):
        return _from_compute_float(pixels)
    return _pdqhash(pixels, dihedral)


def _rgb(grey: npt.NDArray[np.floating]) -> Pixels:
    return np.ascontiguousarray(np.repeat(np.clip(grey, 0, 255)[..., None], 3, axis=2)).astype(
        np.uint8
    )


def _pictures(rng: np.random.Generator) -> Iterator[tuple[str, Pixels]]:
    """Smooth pictures with noise, flat and nearly flat ones, gradients, checkerboards."""
    sizes = [(64, 64)] * 6 + [(5, 5), (5, 9), (7, 64), (63, 65), (65, 64), (128, 128)]
    sizes += [(int(h), int(w)) for h, w in rng.integers(5, 260, size=(14, 2))]
    for h, w in sizes:
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        for n in range(12):
            fx, fy, phase = rng.uniform(0.5, 12, size=3)
            smooth = 128 + 90 * np.sin(fx * x * np.pi + phase) * np.cos(fy * y * np.pi)
            noisy = smooth[..., None] + rng.normal(0, 2 + 6 * (n % 4), (h, w, 3))
            yield "smooth", np.clip(noisy, 0, 255).astype(np.uint8)
        yield "noise", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for level in (0, 1, 127, 254, 255):
            yield "flat", np.full((h, w, 3), level, dtype=np.uint8)
        for n in range(4):
            near = np.full((h, w, 3), 100 + n, dtype=np.uint8)
            near[rng.integers(0, h, 3), rng.integers(0, w, 3), rng.integers(0, 3, 3)] += 1
            yield "nearly flat", near
        yield "gradient", _rgb(255 * x)
        yield "gradient", _rgb(255 * (x + y) / 2)
        for cell in (1, 2, 3, 8):
            board = ((np.mgrid[0:h, 0:w] // cell).sum(axis=0) % 2) * 255
            yield "checkerboard", _rgb(board.astype(np.float64))


def test_generated_pictures_hash_exactly_as_pdqhash_hashes_them() -> None:
    rng = np.random.default_rng(2026)
    checked = 0
    for kind, pixels in _pictures(rng):
        for dihedral in (False, True):
            got = pdq._pdq_hashes(pixels, dihedral, "compute_dihedral")
            assert got == _pdqhash(pixels, dihedral), (kind, pixels.shape, dihedral)
            got = pdq._pdq_hashes(pixels, dihedral, "compute")
            assert got == _expected(pixels, dihedral, FAST), (kind, pixels.shape, dihedral)
        checked += 1
    assert checked > 700


def _fast_pixels(count: int, seed: int) -> Iterator[Pixels]:
    """64x64 pixels as the fast policies make them: smooth waves with 0..6 levels of noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64] / 64
    for n in range(count):
        fx, fy, phase = rng.uniform(0.5, 20, size=3)
        luma = 128 + 100 * np.sin(fx * x * np.pi + phase) * np.cos(fy * y * np.pi)
        luma += rng.normal(0, n % 7, luma.shape)
        yield pdq._split_luma(np.clip(luma, 0, 255).astype(np.float32))


def test_fast_pixels_of_thousands_of_pictures_hash_exactly_as_before() -> None:
    """fast-2's 64x64 pixels, where compute and compute_dihedral differ."""
    for n, pixels in enumerate(_fast_pixels(1200, 15)):
        for dihedral in (False, True):
            got = pdq._pdq_hashes(pixels, dihedral, "compute_dihedral")
            assert got == _pdqhash(pixels, dihedral), n


def test_fast_3_dihedral_hashes_start_with_the_plain_hash() -> None:
    """An investigator running `hashwatch hash` and `hashwatch scan` on one file sees one PDQ
    hash: under fast-3 the dihedral set's first hash and quality are the plain call's, and the
    8 hashes are the moves of that same DCT. fast-2 took its set after pdqhash's filter, so on
    a few of these pictures its first hash (or quality) is not the plain one."""
    fast_2_apart = 0
    for n, pixels in enumerate(_fast_pixels(2000, 153)):
        (plain,), quality = pdq._pdq_hashes(pixels, False, "compute")
        hashes, dihedral_quality = pdq._pdq_hashes(pixels, True, "compute")
        assert (hashes[0], dihedral_quality) == (plain, quality), n
        assert (hashes, dihedral_quality) == _from_compute_float(pixels), n
        fast_2, fast_2_quality = pdq._pdq_hashes(pixels, True, "compute_dihedral")
        fast_2_apart += (fast_2[0], fast_2_quality) != (plain, quality)
    assert fast_2_apart > 0


def test_pictures_under_five_pixels_a_side_hash_to_zero() -> None:
    for h, w in [(1, 1), (4, 4), (4, 64), (64, 3), (2, 300)]:
        pixels = np.full((h, w, 3), 200, dtype=np.uint8)
        for dct64 in ("compute", "compute_dihedral"):
            plain = pdq._pdq_hashes(pixels, False, dct64)
            assert plain == ((ZERO_HASH,), 0) == _pdqhash(pixels, False)
            assert pdq._pdq_hashes(pixels, True, dct64) == ((ZERO_HASH,) * 8, 0)
        assert _pdqhash(pixels, True) == ((ZERO_HASH,) * 8, 0)


def _torben(values: list[float]) -> float:
    """pdqhash's median (Torben Mogensen's, as in its torben.cpp), step for step."""
    n = len(values)
    low, high = min(values), max(values)
    while True:
        guess = (low + high) / 2
        less = sum(v < guess for v in values)
        greater = sum(v > guess for v in values)
        equal = n - less - greater
        below = max((v for v in values if v < guess), default=low)
        above = min((v for v in values if v > guess), default=high)
        if less <= (n + 1) // 2 and greater <= (n + 1) // 2:
            break
        if less > greater:
            high = below
        else:
            low = above
    if less >= (n + 1) // 2:
        return below
    if less + equal >= (n + 1) // 2:
        return guess
    return above


def test_pdqhash_median_of_256_values_is_the_128th_smallest_ties_included() -> None:
    rng = np.random.default_rng(7)
    for n in range(300):
        if n % 3 == 0:
            values = rng.normal(size=256)
        elif n % 3 == 1:  # many ties, some of them at the median
            values = rng.integers(-3, 4, size=256).astype(np.float64)
        else:
            values = np.where(rng.random(256) < 0.5, 0.0, rng.normal(size=256))
        assert _torben(values.tolist()) == np.partition(values, 127)[127]
    assert _torben([0.0] * 256) == 0.0


def _pixels_as_before(decoded: DecodedImage, policy: PdqPolicy) -> Pixels:
    if policy.kind == "reference":
        return pdq._reference_array(decoded.image)
    return pdq._split_luma(pdq._luma64(decoded, policy.sixteen_bit))


@pytest.mark.parametrize("policy", [FAST, FAST_2, FAST_1, REFERENCE], ids=lambda p: p.name)
def test_test_pictures_keep_their_hashes_under_every_policy(policy: PdqPolicy) -> None:
    files = sorted(p for p in PDQ_DIR.rglob("*") if p.suffix in {".jpg", ".jpeg", ".png", ".webp"})
    assert len(files) > 20
    # A plain hash is pdqhash.compute's own; at full resolution only the dihedral ones are
    # checked (the photos here are large, and the plain path is checked with the fast ones).
    modes = (True,) if policy is REFERENCE else (False, True)
    for path in files:
        decoded = decode_image(path, policy)
        pixels = _pixels_as_before(decoded, policy)
        for dihedral in modes:
            result = hash_decoded(decoded, policy, dihedral=dihedral)
            hashes, quality = _expected(pixels, dihedral, policy)
            assert (result.hash, result.quality) == (hashes[0], quality), (path.name, dihedral)
            assert result.dihedral == (hashes if dihedral else None), path.name


def _loads_numba(policy: str, dihedral: bool) -> bool:
    code = (
        "import sys; from hashwatch.signals.pdq import compute_pdq, get_pdq_policy; "
        f"r = compute_pdq({str(PDQ_DIR / 'misc' / 'rgb.jpeg')!r}, get_pdq_policy({policy!r}), "
        f"dihedral={dihedral}); assert len(r.dihedral or ()) == {8 if dihedral else 0}; "
        "print(any(m == 'numba' or m.startswith('numba.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {"True": True, "False": False}[out.stdout.strip()]


def test_plain_hashes_do_not_load_numba() -> None:
    """`hashwatch hash` asks for no dihedral hashes, so it never pays numba's import."""
    assert not _loads_numba("fast", dihedral=False)


def test_fast_3_dihedral_hashes_do_not_load_numba() -> None:
    """A scan worker (dihedral hashes on) under the default policy starts without numba;
    only fast-2's replay of pdqhash's filter needs it."""
    assert not _loads_numba("fast-3", dihedral=True)
    assert _loads_numba("fast-2", dihedral=True)
