"""PDQ perceptual hashes of images, under two named, versioned policies.

PDQ (Meta) turns a picture into 256 bits: luma -> Jarosz tent filter and decimation to 64x64 ->
16x16 DCT -> one bit per coefficient above the median. The hashing itself is always pdqhash's
(Meta's C++ code), bit for bit: its own calls, or for dihedral hashes its DCT with the bits
made in numpy (see :func:`_pdq_hashes`; tests/test_pdq_dct_bits.py). What differs between
implementations, by a few bits, is how the pixels reach it: decoder, resizer, colour handling.
Because hash lists are matched at a distance (<= 31 bits), those few bits matter, so every
hash records the policy that made it (:attr:`PdqResult.policy`), and a policy never changes
behaviour under the same name.

``reference-1`` (:data:`REFERENCE`) reproduces python-threatexchange's ``pdq_hasher``: Pillow
decodes at full resolution; mode LA is converted to RGB; ``np.asarray``; a 2-D array is stacked
to three channels; ``pdqhash.compute``. Its test vectors (``tests/data/pdq/expected.csv``) match
bit for bit. Two deliberate additions: the EXIF orientation is applied (none of the vectors
carries one), and modes whose raw array is not pixels in RGB or grey (1, P, PA, I, I;16, F,
CMYK, YCbCr, ...) go through ``convert("RGB")``, which is python-threatexchange's own
``force_rgb`` path: its default path would crash on them or hash palette indices. That
reproduces its I;16 vector too (Pillow clips 16-bit values at 255; quality 36).

``fast-3`` (:data:`FAST`, the default) computes the same 64x64 luma summary that the reference
computes, from far fewer pixels, and hands that to pdqhash:

1. JPEGs decode only their luma plane, at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling), as far
   as the shorter side stays >= ``decode_min_side`` (256): a 12 MP photo decodes to 500x375,
   whose pixels are exact 8x8 block averages. Other formats decode whole, are converted to
   luma, and each axis is box-averaged by an integer factor to 256..511 px. 16-bit and wider
   pictures (I;16, I, F) become 8 bits exactly as the reference makes them, by Pillow's
   ``convert`` (clipped at 255): a list hashed by HMA or python-threatexchange matches.
2. The reference filter is replayed at FULL-resolution coordinates: for each of the 64 sample
   rows (and columns) the weights that pdqhash's two box passes and decimation would give to
   every full-resolution pixel are computed exactly (window ``ceil(N/128)``, its off-centre
   even window, the shrinking windows at the edges, the sample at ``floor((i+0.5)N/64)``),
   then summed over the block each decoded pixel stands for. Two small matrix products give
   the 64x64 buffer. Weights are cached per axis length.
3. pdqhash takes uint8 RGB only, and rounding the 64x64 buffer to integers would move bits near
   the median. So each value is spread over the three channels, whose PDQ luma weights
   (0.299, 0.587, 0.114) then reproduce it to about +-0.006. pdqhash's own filter is the
   identity on a 64x64 input (not for ``fast-2``'s dihedral hashes: see below), so its DCT,
   median, quality and dihedral variants see the buffer.

Why these parameters (bench/bench_pdq.py, one core, 40 noisy 12 MP phone-like JPEGs, bits
from "Pillow full decode + pdqhash", which took 245-316 ms an image). Handing pdqhash a smaller
picture and letting it filter that is not enough: its window and sample positions depend on the
size it sees, so the bits move even though the content is the same:

===============================================  =======  ============  ==================
what reaches pdqhash                             ms/img   median / p99  1024 px: med / p99
===============================================  =======  ============  ==================
luma decoded at 1/8 (500x375)                    29       6 / 12
luma decoded at 1/4                              38       4 / 10
luma decoded at 1/2                              75       2 / 5         (4x only)
1/2, then ``reduce`` to 512 px                   37       4 / 10
1/4, then BOX ``resize`` to 256 px               28       14 / 25
replayed filter, min side 128                    25       2 / 7         4 / 8
replayed filter, min side 192                    25       2 / 2         2 / 4
**replayed filter, min side 256 (fast-2, -3)**   25       0 / 2         0 / 3
replayed filter, min side 512                    27       0 / 2         0 / 2
replayed filter, full-resolution luma            43       0 / 2         0 / 2
===============================================  =======  ============  ==================

The decode itself (libjpeg's entropy decoding, which no scaling skips) is ~23.5 of the 25 ms;
the filter, channel split and pdqhash take ~1.5 ms. So the speed-up is bounded by the
reference's cost over the entropy decoding: 10.1-12.6x measured on a 2-core machine. 256 is the
smallest side at which 12 MP and 1024 px pictures both stay within 4 bits. The 2 bits left on a
quarter of the photos come from the luma: 8-bit integers here (half of them already with a
full-resolution RGB decode), taken from the JPEG's Y plane rather than from clamped RGB. Non-JPEG
pictures decode whole (PNG, WebP: ~2x faster than the reference, 0-2 bits apart).

``fast-2`` (:data:`FAST_2`) is ``fast-3`` except for its dihedral hashes: pdqhash's dihedral
call runs its box filter over a 64x64 picture (window 1, whose running float sums move values
by ~1e-5) where its plain call does not, and ``fast-2`` took the 8 hashes from that call. So
the first of them differed from the plain hash by a few bits on ~1 picture in 1,000 (and the
quality on fewer): ``hashwatch scan`` (dihedral on) and ``hashwatch hash`` (off) could record
different hashes for one file. ``fast-3`` exists to end that: its 8 hashes come from the
unfiltered DCT the plain hash comes from, so the first is the plain hash, without numba.
``fast-2`` is kept, under its name only, with its filter replayed in numba, to reproduce hashes
recorded with it; its plain hashes equal ``fast-3``'s.

``fast-1`` (:data:`FAST_1`) is ``fast-2`` except that it scaled 16-bit pictures to 8 bits
(value / 257) as a viewer shows them, where the reference clips: a 16-bit picture's hash was
~116 bits from HMA's. It is kept, under its name only, to reproduce hashes recorded with it.

Dihedral hashes (rotations/flips derived from the DCT, no re-hashing) come in pdqhash's order,
named in :data:`DIHEDRAL_NAMES`; each is the hash the picture would have after that Pillow
transpose. They agree with physically transformed pictures within a few bits on photos, not
always on noise-like pictures (LA.png in the test data). Under ``fast-3`` the first of them
is always the plain hash, with the plain call's quality. The other policies keep
``compute_dihedral``'s: ``fast-1`` and ``fast-2`` as described above, ``reference-1`` only on
a picture that is itself 64x64 (any other size is filtered by both calls).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, cast

import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image

from hashwatch.errors import ConfigError, DecodeError, InvalidHashError
from hashwatch.signals.image import (
    DEFAULT_MAX_DECODE_PIXELS,
    DEFAULT_MAX_PIXELS,
    AxisMap,
    DecodedImage,
    SixteenBit,
    decode_image,
    luma_image,
)

__all__ = [
    "DIHEDRAL_NAMES",
    "FAST",
    "FAST_1",
    "FAST_2",
    "POLICIES",
    "REFERENCE",
    "ZERO_HASH",
    "PdqPolicy",
    "PdqResult",
    "compute_pdq",
    "get_pdq_policy",
    "hash_decoded",
    "pdq_distance",
]

# pdqhash.compute_dihedral's order; the Pillow transpose each one stands for, applied to the
# upright picture: ROTATE_90 (counter-clockwise), ROTATE_180, ROTATE_270 (clockwise),
# FLIP_TOP_BOTTOM (mirror about the x axis), FLIP_LEFT_RIGHT (about the y axis), TRANSPOSE
# (about the main diagonal), TRANSVERSE (about the other diagonal). Checked in the tests against
# tests/data/pdq/dih/, a photo physically rotated and flipped.
DIHEDRAL_NAMES: tuple[str, ...] = (
    "original",
    "rot90",
    "rot180",
    "rot270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)
ZERO_HASH = "0" * 64
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
MIN_HASHABLE_SIDE = 5  # pdqhash: under 5 px a side the hash is all zero, quality 0
_OUT = 64  # PDQ's decimated size


@dataclass(frozen=True)
class PdqPolicy:
    """How pixels reach pdqhash. ``name`` (with its version) is recorded with every hash.

    ``decode_min_side``: reduce (JPEG DCT scaling, integer box averaging) while the shorter
    side stays at least this; None decodes at full resolution. ``decode_grey``: decode only
    luma. ``kind``: "reference" (python-threatexchange's pipeline) or "fast" (the reference
    filter replayed from reduced pixels). ``sixteen_bit``: 16-bit and wider pixels clipped to
    8 bits as the reference does ("clip") or scaled ("scale", ``fast-1`` only).
    ``dihedral_dct``: which of pdqhash's DCTs the dihedral hashes of a 64x64 input come from:
    "compute" (unfiltered, as the plain hash: the first variant is the plain hash; ``fast-3``)
    or "compute_dihedral" (after its box filter). Other sizes: the same either way. Changing
    any field means a new ``name``.
    """

    name: str
    kind: Literal["reference", "fast"]
    decode_min_side: int | None
    decode_grey: bool
    sixteen_bit: SixteenBit = "clip"
    dihedral_dct: Literal["compute", "compute_dihedral"] = "compute_dihedral"

    @property
    def family(self) -> str:
        """The name without its version: "fast" or "reference"."""
        return self.name.rsplit("-", 1)[0]


REFERENCE = PdqPolicy("reference-1", "reference", decode_min_side=None, decode_grey=False)
FAST = PdqPolicy("fast-3", "fast", decode_min_side=256, decode_grey=True, dihedral_dct="compute")
# fast-2 took its dihedral hashes after pdqhash's filter, fast-1 also scaled 16-bit pictures
# where the reference clips them: selectable by their versioned names only, to reproduce
# hashes recorded with them.
FAST_2 = PdqPolicy("fast-2", "fast", decode_min_side=256, decode_grey=True)
FAST_1 = PdqPolicy("fast-1", "fast", decode_min_side=256, decode_grey=True, sixteen_bit="scale")
POLICIES: dict[str, PdqPolicy] = {p.name: p for p in (FAST, FAST_2, FAST_1, REFERENCE)}
_CURRENT = {p.family: p for p in (FAST, REFERENCE)}


def get_pdq_policy(name: str) -> PdqPolicy:
    """The policy called ``name``: "fast" / "reference" (current version) or a versioned name."""
    key = name.strip().lower()
    policy = POLICIES.get(key) or _CURRENT.get(key)
    if policy is None:
        known = ", ".join(sorted([*POLICIES, *_CURRENT]))
        raise ConfigError(f"unknown PDQ policy {name!r} (known: {known})")
    return policy


@dataclass(frozen=True)
class PdqResult:
    """One picture's PDQ hash with what is needed to judge and reproduce it.

    ``width``/``height``: upright full-resolution size. ``dihedral``: the 8 hashes in
    :data:`DIHEDRAL_NAMES` order when asked for, else None.
    """

    hash: str
    quality: int
    width: int
    height: int
    media_type: str
    policy: str
    dihedral: tuple[str, ...] | None = None

    def dihedral_by_name(self) -> dict[str, str]:
        """The dihedral hashes keyed by name (empty when they were not computed)."""
        return dict(zip(DIHEDRAL_NAMES, self.dihedral or (), strict=False))


def compute_pdq(
    source: bytes | bytearray | memoryview | Path | str | BinaryIO,
    policy: PdqPolicy = FAST,
    *,
    dihedral: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_decode_pixels: int | None = DEFAULT_MAX_DECODE_PIXELS,
) -> PdqResult:
    """PDQ of the image in ``source`` (bytes already read are the cheapest to pass).

    Raises :class:`~hashwatch.errors.DecodeError` for anything that is not a decodable image,
    or whose decoding would exceed ``max_decode_pixels`` (see :func:`decode_image`).
    """
    decoded = decode_image(
        source, policy, max_pixels=max_pixels, max_decode_pixels=max_decode_pixels
    )
    return hash_decoded(decoded, policy, dihedral=dihedral)


def hash_decoded(
    decoded: DecodedImage, policy: PdqPolicy = FAST, *, dihedral: bool = False
) -> PdqResult:
    """PDQ of an already decoded picture (decoded with ``policy`` as hints, or at full size)."""
    if decoded.width < MIN_HASHABLE_SIDE or decoded.height < MIN_HASHABLE_SIDE:
        return PdqResult(
            ZERO_HASH,
            0,
            decoded.width,
            decoded.height,
            decoded.media_type,
            policy.name,
            (ZERO_HASH,) * 8 if dihedral else None,
        )
    if policy.kind == "reference" and decoded.reduced:
        raise ValueError("the reference policy needs a full-resolution decode")
    try:
        if policy.kind == "reference":
            pixels = _reference_array(decoded.image)
        else:
            pixels = _split_luma(_luma64(decoded, policy.sixteen_bit))
    except (OSError, ValueError, MemoryError) as exc:
        raise DecodeError(f"cannot prepare pixels for PDQ: {exc}") from exc
    hashes, quality = _pdq_hashes(pixels, dihedral, policy.dihedral_dct)
    return PdqResult(
        hashes[0],
        quality,
        decoded.width,
        decoded.height,
        decoded.media_type,
        policy.name,
        hashes if dihedral else None,
    )


def pdq_distance(a: str, b: str) -> int:
    """Hamming distance in bits between two 64-hex PDQ hashes (either case)."""
    for value in (a, b):
        if not _HEX64.fullmatch(value):
            raise InvalidHashError("pdq", value, "expected 64 hex characters")
    return (int(a, 16) ^ int(b, 16)).bit_count()


# --------------------------------------------------------------------------- bits


def _dihedral_tables() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Where each dihedral variant takes its 256 values from, and with which sign.

    pdqhash's C++ derives the variants from the 16x16 DCT ``A`` (``A[i][j]``: row i, column j)
    by a transpose and/or a sign flip by row or column parity (``dct16OriginalToRotate90`` and
    the six after it), in :data:`DIHEDRAL_NAMES` order. Those same moves are applied here to
    the position each DCT value has in ``pdqhash.compute_float``'s output, which is ``A``
    flattened and reversed (bit 255 first, the order of pdqhash's vectors and of the hex).
    Row ``t`` of the result: variant t's value m is ``sign[t, m] * floats[gather[t, m]]``.
    """
    index = (255 - np.arange(256)).reshape(16, 16)  # A[i][j] sits at 255 - (16 i + j)
    row, col = np.indices((16, 16))
    even_row = np.where(row & 1, 1.0, -1.0)  # odd rows kept, even rows negated
    even_col = np.where(col & 1, 1.0, -1.0)
    odd_sum = np.where((row + col) & 1, -1.0, 1.0)  # negated where i + j is odd
    ones = np.ones((16, 16))
    moves = [  # (sign on A[i][j], then transposed?)
        (ones, False),  # original
        (even_col, True),  # Rotate90: B[j][i] = A[i][j], negated for even j
        (odd_sum, False),  # Rotate180
        (even_row, True),  # Rotate270: B[j][i] = A[i][j], negated for even i
        (even_row, False),  # FlipX
        (even_col, False),  # FlipY
        (ones, True),  # FlipPlus1: the transpose
        (odd_sum, True),  # FlipMinus1
    ]
    gather = np.stack([(index.T if t else index).ravel()[::-1] for _, t in moves]).astype(np.intp)
    sign = np.stack([(s.T if t else s).ravel()[::-1] for s, t in moves])
    gather.flags.writeable = False
    sign.flags.writeable = False
    return gather, sign


_DIHEDRAL_GATHER, _DIHEDRAL_SIGN = _dihedral_tables()


def _pdq_hashes(
    pixels: npt.NDArray[np.uint8],
    dihedral: bool,
    dct64: Literal["compute", "compute_dihedral"],
) -> tuple[tuple[str, ...], int]:
    """The hash (and with ``dihedral`` its 8 variants) and quality pdqhash gives ``pixels``.

    Alone, the hash comes from ``pdqhash.compute``. The dihedral hashes are bit for bit what
    ``pdqhash.compute_dihedral`` returns, at a quarter of its cost on 64x64 pixels: it runs the
    C++ hashing, then turns each of the 8 hashes into a vector with a 256-step Python loop.
    Here the C++ (or its replay) stops at the 16x16 DCT and the quality, and the bits of all
    variants are made at once in numpy. A bit is set where the value is above the median, and
    pdqhash's median (Torben's, n = 256) is the 128th smallest value, ties included:
    ``np.partition(values, 127)[127]``.

    Where the DCT comes from: ``compute_float`` runs the C++ of ``compute_dihedral`` up to it,
    except on a 64x64 picture, which it (like ``compute``) hands straight to the DCT, whereas
    ``compute_dihedral`` runs its box filter over it first (window 1, whose running float sums
    move values by ~1e-5: a bit or the quality of ~1 picture in 250 moves). ``dct64`` says
    which a 64x64 picture gets (:attr:`PdqPolicy.dihedral_dct`): "compute" takes
    ``compute_float``'s, so the first variant is ``compute``'s hash; "compute_dihedral" replays
    that call's path in :func:`_dihedral64_dct` (numba).
    """
    if not dihedral:
        vector, quality = pdqhash.compute(pixels)
        return (np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex(),), int(quality)
    if min(pixels.shape[:2]) < MIN_HASHABLE_SIDE:
        return (ZERO_HASH,) * 8, 0
    floats: npt.NDArray[np.floating]
    if pixels.shape[:2] == (_OUT, _OUT) and dct64 == "compute_dihedral":
        luma = pixels[:, :, 0] * 0.299 + pixels[:, :, 1] * 0.587 + pixels[:, :, 2] * 0.114
        dct, quality = _dihedral64_kernel()(luma.astype(np.float32), _dct_matrix())
        floats = dct.ravel()[::-1]  # compute_float's order: bit 255 first
    else:
        floats, quality = pdqhash.compute_float(pixels)
    table = np.asarray(floats, dtype=np.float64)[_DIHEDRAL_GATHER] * _DIHEDRAL_SIGN
    median = np.partition(table, 127, axis=1)[:, 127:128]
    packed = np.packbits(table > median, axis=1)
    return tuple(bytes(row).hex() for row in packed), int(quality)


@functools.cache
def _dct_matrix() -> npt.NDArray[np.float32]:
    """pdqhash's 16x64 DCT matrix (rows 1..16 of the 64-point DCT-II), float32 as in C++."""
    i = np.arange(16)[:, np.newaxis]
    j = np.arange(_OUT)[np.newaxis, :]
    scale = float(np.float32(np.sqrt(2.0 / _OUT)))
    angles = (np.pi / 2.0 / _OUT) * (i + 1) * (2 * j + 1)
    matrix: npt.NDArray[np.float32] = (scale * np.cos(angles)).astype(np.float32)
    matrix.flags.writeable = False
    return matrix


_Dihedral64 = Callable[
    [npt.NDArray[np.float32], npt.NDArray[np.float32]], tuple[npt.NDArray[np.float32], int]
]


@functools.cache
def _dihedral64_kernel() -> _Dihedral64:
    """:func:`_dihedral64_dct` compiled (numba, loaded from its cache after the first run)."""
    import numba  # only fast-1/fast-2's dihedral hashes (or reference-1's of a 64x64 picture)

    return cast(_Dihedral64, numba.njit(cache=True, nogil=True)(_dihedral64_dct))


def _dihedral64_dct(
    luma: npt.NDArray[np.float32], matrix: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], int]:
    """The 16x16 DCT and quality ``pdqhash.compute_dihedral`` computes from a 64x64 luma.

    The same float32 operations in the same order as pdqhash's C++ (compiled by numba, which
    fuses no multiply-add without fastmath): two rounds of the Jarosz box filter along rows
    then columns, with window ``(64 + 127) // 128 = 1``, i.e. a running sum that adds the
    next value and subtracts the previous one; the decimation to 64x64 is the identity; the
    quality (gradients truncated to int, sum // 90, at most 100); the DCT as two products
    accumulated one term at a time. Checked bit for bit against pdqhash in the tests.
    """
    a = luma.copy()
    b = np.empty_like(a)
    for _ in range(2):
        for r in range(64):
            total = np.float32(0.0)
            total += a[r, 0]
            b[r, 0] = total
            for k in range(1, 64):
                total += a[r, k]
                total -= a[r, k - 1]
                b[r, k] = total
        for c in range(64):
            total = np.float32(0.0)
            total += b[0, c]
            a[0, c] = total
            for k in range(1, 64):
                total += b[k, c]
                total -= b[k - 1, c]
                a[k, c] = total
    gradients = 0
    hundred, scale = np.float32(100.0), np.float32(255.0)
    for r in range(63):
        for c in range(64):
            gradients += abs(int(((a[r, c] - a[r + 1, c]) * hundred) / scale))
    for r in range(64):
        for c in range(63):
            gradients += abs(int(((a[r, c] - a[r, c + 1]) * hundred) / scale))
    quality = min(gradients // 90, 100)
    partial = np.zeros((16, 64), dtype=np.float32)
    for r in range(16):
        for k in range(64):
            weight = matrix[r, k]
            for c in range(64):
                partial[r, c] += weight * a[k, c]
    dct = np.empty((16, 16), dtype=np.float32)
    for r in range(16):
        for c in range(16):
            total = np.float32(0.0)
            for k in range(64):
                total += partial[r, k] * matrix[c, k]
            dct[r, c] = total
    return dct, quality


# --------------------------------------------------------------------------- reference-1

# Modes whose np.asarray is already what python-threatexchange hands to pdqhash.
_REFERENCE_AS_IS = {"RGB", "RGBA", "RGBX", "L"}


def _reference_array(im: Image.Image) -> npt.NDArray[np.uint8]:
    """python-threatexchange's conversion (see the module docstring for the two additions)."""
    if im.mode not in _REFERENCE_AS_IS:
        im = im.getchannel("L") if im.mode == "LAB" else im.convert("RGB")
    array = np.asarray(im)
    if array.ndim == 2:
        array = np.ascontiguousarray(np.broadcast_to(array[..., np.newaxis], (*array.shape, 3)))
    return array


# --------------------------------------------------------------------------- fast


def _luma64(decoded: DecodedImage, sixteen_bit: SixteenBit) -> npt.NDArray[np.float32]:
    """The 64x64 float luma that pdqhash would compute from the full-resolution picture."""
    image = decoded.image
    im = image if image.mode == "L" else luma_image(image, sixteen_bit)
    luma = np.asarray(im, dtype=np.float32)
    row_w = _axis_weights(decoded.rows)
    col_w = _axis_weights(decoded.cols)
    if luma.shape != (row_w.shape[1], col_w.shape[1]):
        raise AssertionError(f"decoded {luma.shape} does not match {decoded.rows}, {decoded.cols}")
    return np.asarray((row_w @ luma) @ col_w.T, dtype=np.float32)


@functools.lru_cache(maxsize=256)
def _axis_weights(axis: AxisMap) -> npt.NDArray[np.float32]:
    """64 x ``axis.length`` weights: sample i of pdqhash's filter as a sum over decoded pixels.

    pdqhash's box pass with window ``w`` writes at index ``t`` the mean of the box
    ``[t - a, t + h)`` clipped to ``[0, n)``, with ``h = (w + 2) // 2`` and ``a = w - h``; two
    passes, then the sample at ``c = floor((i + 0.5) * n / 64)``. So sample i weighs
    full-resolution pixel p by ``sum over t in box(c) of [p in box(t)] / (|box(c)| |box(t)|)``.
    Decoded pixel r stands for the mean over ``[e_r, e_{r+1})``, so it gets ``F(e_{r+1}) -
    F(e_r)``, with ``F(x)`` the weight below x:

        F(x) |box(c)| = #{t in box(c): box(t) below x}
                        + sum over t in box(c) whose box straddles x of (x - lo_t) / |box(t)|

    The boxes of t in ``[a, n - h]`` are unclipped (``|box| = w``, ``lo_t = t - a``), so the
    prefix sums over t are arithmetic there and kept as arrays only for the ~w clipped boxes at
    each end: O(w + 64 x decoded length) time and memory, for any n.
    """
    n, w = axis.size, (axis.size + 2 * _OUT - 1) // (2 * _OUT)
    h = (w + 2) // 2
    a = w - h
    t0 = min(a, n)  # [t0, t1): unclipped boxes
    t1 = max(t0, n - h + 1)
    ends = np.r_[np.arange(t0), np.arange(t1, n)]
    lo_end = np.maximum(ends - a, 0)
    g_end = 1.0 / (np.minimum(ends + h, n) - lo_end)  # 1 / |box(t)|
    g_left = np.r_[0.0, np.cumsum(g_end[:t0])]
    gl_left = np.r_[0.0, np.cumsum((g_end * lo_end)[:t0])]
    g_right = np.r_[0.0, np.cumsum(g_end[t0:])]
    gl_right = np.r_[0.0, np.cumsum((g_end * lo_end)[t0:])]

    def prefix(k: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64], ...]:
        """sum of 1/|box(t)| and of lo_t/|box(t)| over t < k."""
        left, mid, right = np.minimum(k, t0), np.clip(k, t0, t1) - t0, np.maximum(k - t1, 0)
        g = g_left[left] + mid / w + g_right[right]
        gl = gl_left[left] + (mid * (2 * t0 + mid - 1) / 2 - a * mid) / w + gl_right[right]
        return g, gl

    x = np.asarray(axis.edges(), dtype=np.int64)[np.newaxis, :]
    done = np.where(x >= n, n, np.clip(x - h + 1, 0, n))  # t whose box lies below x
    begun = np.where(x <= 0, 0, np.clip(x + a, 0, n))  # t whose box starts below x
    c = (((np.arange(_OUT) + 0.5) * n) / _OUT).astype(np.int64)[:, np.newaxis]
    first, stop = np.maximum(c - a, 0), np.minimum(c + h, n)  # box(c), as a range of t
    mid_lo = np.clip(done, first, stop)
    mid_hi = np.clip(begun, mid_lo, stop)
    g_lo, gl_lo = prefix(mid_lo)
    g_hi, gl_hi = prefix(mid_hi)
    below = ((mid_lo - first) + x * (g_hi - g_lo) - (gl_hi - gl_lo)) / (stop - first)
    weights: npt.NDArray[np.float32] = np.diff(below, axis=1).astype(np.float32)
    weights.flags.writeable = False  # shared by every caller through the cache
    return weights


def _split_table() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int16]]:
    """All channel offsets (-4..4 each) sorted by the luma change they make."""
    offsets = np.array(list(itertools.product(range(-4, 5), repeat=3)), dtype=np.int16)
    values = offsets @ np.array([0.299, 0.587, 0.114])
    order = np.argsort(values, kind="stable")
    return values[order], offsets[order]


_SPLIT_VALUES, _SPLIT_OFFSETS = _split_table()


def _split_buckets(
    buckets: int = 8192,
) -> tuple[float, float, npt.NDArray[np.intp], int, npt.NDArray[np.float64]]:
    """A lookup that gives ``np.searchsorted(_SPLIT_VALUES, x)`` exactly, faster.

    ``x`` falls in bucket ``k = floor((x - low) * scale)``; ``start[k]`` counts the table values
    below the bucket before it (a bucket of slack each side for rounding), and at most
    ``steps`` values lie from there to the end of the bucket after it, so ``steps`` rounds of
    "step on while the next value is below x" reach the first value not below ``x`` (the
    table is padded with +inf so a step never runs off its end)."""
    values = _SPLIT_VALUES
    low = float(values[0]) - 1.0
    width = (float(values[-1]) + 1.0 - low) / buckets
    edges = low + width * np.arange(-1, buckets + 2)
    counts = np.searchsorted(values, edges)  # values below each edge
    start = counts[:-3].copy()
    start[0] = 0
    end = counts[3:].copy()
    end[-1] = len(values)
    steps = int((end - start).max())
    padded = np.r_[values, np.inf]
    return low, 1.0 / width, start, steps, padded


_SPLIT_LOW, _SPLIT_SCALE, _SPLIT_START, _SPLIT_STEPS, _SPLIT_PADDED = _split_buckets()


def _search_split(frac: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """``np.searchsorted(_SPLIT_VALUES, frac)`` (finite ``frac``), by :func:`_split_buckets`."""
    k = np.clip(((frac - _SPLIT_LOW) * _SPLIT_SCALE).astype(np.intp), 0, len(_SPLIT_START) - 1)
    idx = _SPLIT_START[k]
    for _ in range(_SPLIT_STEPS):
        idx += _SPLIT_PADDED[idx] < frac
    return idx


def _split_luma(luma: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """uint8 RGB whose PDQ luma (0.299R + 0.587G + 0.114B) equals ``luma`` to about +-0.006.

    A grey level ``v`` (4..251) plus per-channel offsets of -4..4 reach 729 luma values around
    ``v``, no two more than 0.011 apart within +-0.5, so the fraction is not rounded away.
    """
    target = np.clip(luma.astype(np.float64), 0.0, 255.0)
    base = np.clip(np.rint(target), 4, 251)
    frac = target - base
    idx = np.clip(_search_split(frac), 1, len(_SPLIT_VALUES) - 1)
    left_closer = np.abs(_SPLIT_VALUES[idx - 1] - frac) <= np.abs(_SPLIT_VALUES[idx] - frac)
    idx = np.where(left_closer, idx - 1, idx)
    rgb = base[..., np.newaxis] + _SPLIT_OFFSETS[idx]
    return np.ascontiguousarray(rgb.astype(np.uint8))
