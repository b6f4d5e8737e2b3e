"""Frames of an animated WebP with Pillow (FFmpeg has no animated WebP), within a decode budget.

Why this path is shaped as it is:

* **Headers first.** libwebp composes each frame on the canvas the previous ones left, so frame
  ``n`` can only be had by decoding frames ``0..n``, a full canvas each (no scaled decode for
  animations), and Pillow starts again from frame 0 on any backward seek. A 1.5 KB file can
  announce 30 frames of 6000x6000: a billion pixels. So the frame count, the canvas and each
  frame's duration are read from the RIFF chunks (``VP8X``, ``ANMF``) without decoding, the
  frames to hash are chosen from them, and the decoding goes forward once and stops after the
  last chosen frame. (Reading durations by decoding every frame first, as before, doubled the
  cost; and summing the durations anew for every frame was quadratic in the frame count.)
* **Budget.** ``canvas pixels x frames decoded`` is checked before the first frame is decoded.
  Frames past the budget are not decoded; the frames before it are hashed and ``error`` says
  what was left out. A file whose chunks Pillow reads differently from this parser (a frame
  count that disagrees) falls back to learning durations by decoding, within the same budget.
* **No full-size copies.** With a reduced policy each chosen frame goes to luma and is
  reduced at once by the caller's ``hash_frame``; it is not converted to RGB first.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from hashwatch.errors import DecodeBudgetError, DecodeError
from hashwatch.signals.image import check_decode_budget

__all__ = ["WebpFrames", "choose_frames", "hash_webp_frames", "read_webp_header"]

HashFrame = Callable[[Image.Image], tuple[str, int]]
_MAX_CHUNKS = 1_000_000  # a RIFF walk never runs longer than this
_FAILURES = (OSError, ValueError, EOFError, MemoryError, RuntimeError, struct.error)


@dataclass(frozen=True)
class WebpHeader:
    """What the RIFF chunks announce: canvas size and per-frame durations (ms), no pixels."""

    width: int
    height: int
    durations_ms: tuple[int, ...]


@dataclass
class WebpFrames:
    """The outcome: size, timing, ``(frame, pdq, quality)`` of the hashed frames, ``error``."""

    width: int = 0
    height: int = 0
    duration: float = 0.0
    fps: float = 0.0
    frames: list[tuple[int, str, int]] = field(default_factory=list)
    error: str | None = None
    over_budget: bool = False  # frames were left undecoded for the budget


def read_webp_header(data: bytes) -> WebpHeader | None:
    """Canvas and frame durations of an animated WebP from its chunks; None if not one.

    Layout (Google's WebP container spec): ``RIFF size WEBP``, then chunks of ``fourcc, size
    (LE 32), payload`` padded to even length. ``VP8X`` holds the canvas (24-bit width-1,
    height-1 at payload offset 4 and 7); each ``ANMF`` is one frame, its duration a 24-bit
    value at payload offset 12.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    pos, canvas, durations = 12, None, []
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > end:
            break
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        payload = data[pos + 8 : min(end, pos + 8 + size)]
        if fourcc == b"VP8X" and len(payload) >= 10:
            canvas = (
                int.from_bytes(payload[4:7], "little") + 1,
                int.from_bytes(payload[7:10], "little") + 1,
            )
        elif fourcc == b"ANMF" and len(payload) >= 16:
            durations.append(int.from_bytes(payload[12:15], "little"))
        pos += 8 + size + (size & 1)
    if canvas is None or not durations:
        return None
    return WebpHeader(canvas[0], canvas[1], tuple(durations))


def choose_frames(
    durations_ms: list[int] | tuple[int, ...],
    interval: float,
    sampling: str,
    wanted: frozenset[int] | None,
) -> tuple[float, list[int]]:
    """``(fps, frame numbers to hash)`` for frames lasting ``durations_ms``; linear time.

    ``fps`` is frames per second of the total duration (0.0 when it is 0). "exact" takes every
    ``int(interval * fps)``-th frame (30 fps when unknown) as vPDQ does; otherwise the first
    frame starting in each ``interval``-second slot.
    """
    count = len(durations_ms)
    total_ms = sum(durations_ms)
    fps = count * 1000 / total_ms if total_ms > 0 else 0.0
    if wanted is not None:
        return fps, [n for n in range(count) if n in wanted]
    if sampling == "exact":
        return fps, list(range(0, count, max(1, int(interval * (fps or 30.0)))))
    chosen: dict[int, int] = {}
    starts = itertools.accumulate(durations_ms, initial=0)  # start of frame n, in ms
    for n, start_ms in zip(range(count), starts, strict=False):
        chosen.setdefault(math.floor(start_ms / 1000 / interval + 1e-6), n)
    return fps, sorted(chosen.values())


def hash_webp_frames(
    data: bytes,
    hash_frame: HashFrame,
    *,
    interval: float,
    sampling: str,
    wanted: frozenset[int] | None,
    max_decode_pixels: int | None,
) -> WebpFrames:
    """Hash the chosen frames of the (animated or still) WebP in ``data``; never raises for bad
    input (``error`` says what went wrong, with the frames hashed before it)."""
    out = WebpFrames()
    header = read_webp_header(data)
    try:
        if header is not None:  # the canvas is allocated when Pillow opens the file
            check_decode_budget(header.width * header.height, max_decode_pixels, "a WebP frame")
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as im:
            out.width, out.height = im.size
            canvas = out.width * out.height
            count = int(getattr(im, "n_frames", 1))
            budget = None if max_decode_pixels is None else max_decode_pixels // max(1, canvas)
            if header is not None and len(header.durations_ms) == count:
                durations = list(header.durations_ms)
            else:  # a still WebP, or chunks read differently: learn the durations by decoding
                durations = _decoded_durations(im, count, budget)
                if budget is not None:
                    budget -= count
            out.duration = sum(durations) / 1000
            out.fps, chosen = choose_frames(durations, interval, sampling, wanted)
            if budget is not None and chosen and chosen[-1] >= budget:
                out.error = _over_budget(chosen, budget, count, out, max_decode_pixels)
                out.over_budget = True
                chosen = [n for n in chosen if n < budget]
            for n in chosen:  # forward only: Pillow decodes the frames between, once
                im.seek(n)
                im.load()
                pdq, quality = hash_frame(im)
                out.frames.append((n, pdq, quality))
    except DecodeBudgetError as exc:
        out.error, out.over_budget = str(exc), True
    except (*_FAILURES, DecodeError, Image.DecompressionBombError) as exc:
        out.error = f"cannot read as animated image: {exc}"
    return out


def _decoded_durations(im: Image.Image, count: int, budget: int | None) -> list[int]:
    """Every frame's duration (ms), by decoding each frame (the header did not say them)."""
    if budget is not None and count > budget:
        raise DecodeBudgetError(
            f"decode budget: {count} frames of {im.width}x{im.height} whose durations the "
            f"headers do not give would decode {count * im.width * im.height:,} pixels"
        )
    durations = []
    for n in range(count):
        im.seek(n)
        im.load()  # Pillow reads a WebP frame's duration when decoding it
        durations.append(max(0, int(im.info.get("duration") or 0)))
    return durations


def _over_budget(
    chosen: list[int], frames: int, count: int, out: WebpFrames, limit: int | None
) -> str:
    """The ``error`` for an animation decoded only up to the budget."""
    needed = (chosen[-1] + 1) * out.width * out.height
    return (
        f"decode budget: frames 0-{chosen[-1]} of {count} at {out.width}x{out.height} would "
        f"decode {needed:,} pixels, over the budget left for them: {limit:,} pixels "
        f"(max_decode_pixels); {sum(n >= frames for n in chosen)} of {len(chosen)} sampled "
        f"frames not hashed"
    )
