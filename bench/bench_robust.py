"""Copies PDQ misses (cropped, turned, framed, mirrored): recall and false matches, one run.

    .venv/bin/python bench/bench_robust.py [--refs 120] [--negatives 100] [--scale 10000,25000]
        [--real-scale 1000] [--only-scale]
        [--json out.json]

Everything is benign and generated here, or a public sample photo bundled with the tests:

* references: the bundled photos (bridge, c.png, the small samples; the letterboxed sample is
  the bridge photo framed, so it is no second reference) and generated scenes, in turn:
  gradients with shapes (as the demo draws them), text pages, smoothed-noise textures, shapes
  over a texture. A fifth of them carry the same logo (a boxed word and a ring) in their lower
  right corner.
* transforms of every reference: crop 5 % and 10 % (centred, and off-centre: the whole cut
  from the top left), rotation 3° and 5° (cropped to the turned picture's inner rectangle, as a
  re-poster does), padding 10 % black and white, mirror, JPEG quality 30, and mixtures (crop 5
  % + 3° + JPEG 50; mirror + padding + crop 5 %).
* hard negatives, in no list: new scenes carrying the references' logo at the same place, and
  near-uniform pictures (a flat colour or a faint gradient with sensor-like noise).

Methods, on the same queries: plain PDQ (distance ≤ 31), PDQ with the 8 dihedral hashes and the
border-trimmed picture's hashes (stage 1), PDQ against reference hashes turned by ±2°, ±4°,
and local features (ORB + RANSAC, candidates by votes in the multi-index Hamming index).
Every query is compared with every reference: a match with a reference that is not the
query's own original is a false match (non-matching pairs: queries × references − true
pairs). For local features the index retrieves candidates and every verified candidate other
than the true reference counts.

Scale: the candidate retrieval (the part whose cost grows with the references) is timed on
synthetic descriptor sets (uniform random 256-bit rows, 500 a reference) at the sizes of
``--scale``; verification costs the same per candidate whatever the size. Uniform rows are the
index's best case (real ORB descriptors cluster: more candidates per probe), so
``--real-scale N`` also times retrieval over real descriptors of N generated scenes.
``--scale-indexed K`` indexes K descriptors per reference (a million references fit the 24 GB
machine with K = 64: ~6 GB of index); each scale point reports build time, RSS, query time
p50/p99 and how often a planted true reference was among the candidates.
``--index-keypoints 128,64`` adds local features with capped indexes to the recall run (same
queries); ``--local-only`` skips the PDQ methods.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rich.progress import Progress

from hashwatch.demo import scene_picture
from hashwatch.matching.local_match import VOTE_RADIUS, VotingLocalIndex
from hashwatch.signals.local_features import describe, describe_query
from hashwatch.signals.pdq import compute_pdq
from hashwatch.signals.robust import ROTATION_ANGLES, rotated, trim_borders

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = [
    ROOT / "tests/data/pdq/dih/bridge-1-original.jpg",
    ROOT / "tests/data/pdq/misc/c.png",
    ROOT / "tests/data/pdq/misc/rgb.jpeg",
    ROOT / "tests/data/pdq/misc/small.jpg",
]
THRESHOLD = 31
WORDS = [
    "river",
    "stone",
    "harbour",
    "lantern",
    "meadow",
    "orchard",
    "signal",
    "copper",
    "violet",
    "window",
    "ember",
]


# -- generated scenes ----------------------------------------------------------------------


shapes = scene_picture  # the demo's generated scenes


def texture(rng: np.random.Generator, size: tuple[int, int] = (800, 600)) -> Image.Image:
    w, h = size
    layers = []
    for _ in range(3):
        coarse = rng.random((h // 16 + 1, w // 16 + 1)).astype(np.float32)
        small = Image.fromarray((coarse * 255).astype(np.uint8)).resize(
            (w, h), Image.Resampling.BICUBIC
        )
        fine = rng.random((h, w)) * 60
        layers.append(np.clip(np.asarray(small, np.float32) * 0.8 + fine, 0, 255))
    return Image.fromarray(np.stack(layers, axis=2).astype(np.uint8), "RGB")


def text_page(rng: np.random.Generator, size: tuple[int, int] = (800, 600)) -> Image.Image:
    h = size[1]
    back = tuple(int(c) for c in rng.integers(200, 256, 3))
    img = Image.new("RGB", size, back)
    draw = ImageDraw.Draw(img)
    y = int(rng.integers(10, 40))
    while y < h - 40:
        font = ImageFont.load_default(size=int(rng.integers(22, 44)))
        line = " ".join(rng.choice(WORDS, int(rng.integers(2, 6))))
        ink = tuple(int(c) for c in rng.integers(0, 120, 3))
        draw.text((int(rng.integers(10, 120)), y), line, fill=ink, font=font)
        y += int(rng.integers(40, 70))
    return img


def mixed(rng: np.random.Generator) -> Image.Image:
    img = texture(rng)
    top = shapes(rng)
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).ellipse((100, 80, 700, 520), fill=255)
    img.paste(top, (0, 0), mask)
    return img


def add_logo(img: Image.Image) -> Image.Image:
    """The same logo in the lower right corner (about 15 % of the width)."""
    out = img.convert("RGB").copy()
    w, h = out.size
    lw = max(60, w // 7)
    draw = ImageDraw.Draw(out)
    x0, y0 = w - lw - w // 40, h - lw // 2 - h // 40
    draw.rectangle((x0, y0, x0 + lw, y0 + lw // 2), fill=(250, 250, 250), outline=(20, 20, 20))
    font = ImageFont.load_default(size=max(10, lw // 5))
    draw.text((x0 + lw // 12, y0 + lw // 8), "NEWS24", fill=(200, 20, 20), font=font)
    r = lw // 8
    draw.ellipse((x0 + lw - 3 * r, y0 + r, x0 + lw - r, y0 + 3 * r), outline=(20, 20, 160), width=3)
    return out


def near_uniform(rng: np.random.Generator) -> Image.Image:
    w, h = 800, 600
    colour = rng.integers(0, 256, 3).astype(np.float32)
    y, x = np.mgrid[0:h, 0:w]
    ramp = (x / w * rng.uniform(-12, 12) + y / h * rng.uniform(-12, 12))[..., None]
    noise = rng.normal(0, rng.uniform(0.5, 4), (h, w, 3))
    return Image.fromarray(np.clip(colour + ramp + noise, 0, 255).astype(np.uint8), "RGB")


def references(n: int) -> list[Image.Image]:
    out: list[Image.Image] = []
    for path in PHOTOS:
        img = Image.open(path).convert("RGB")
        out.append(trim_borders(img) or img)
    makers: list[Callable[[np.random.Generator], Image.Image]] = [shapes, text_page, texture, mixed]
    k = 0
    while len(out) < n:
        out.append(makers[k % len(makers)](np.random.default_rng(1000 + k)))
        k += 1
    return [add_logo(img) if i % 5 == 4 else img for i, img in enumerate(out)]


# -- transforms ----------------------------------------------------------------------------


def crop(img: Image.Image, share: float, centred: bool) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * share), int(h * share)
    if centred:
        return img.crop((dx // 2, dy // 2, w - (dx - dx // 2), h - (dy - dy // 2)))
    return img.crop((dx, dy, w, h))


def pad(img: Image.Image, share: float, colour: tuple[int, int, int]) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * share / 2), int(h * share / 2)
    out = Image.new("RGB", (w + 2 * dx, h + 2 * dy), colour)
    out.paste(img, (dx, dy))
    return out


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def mirror(img: Image.Image) -> Image.Image:
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "crop5": lambda im: crop(im, 0.05, True),
    "crop5_off": lambda im: crop(im, 0.05, False),
    "crop10": lambda im: crop(im, 0.10, True),
    "crop10_off": lambda im: crop(im, 0.10, False),
    "rot3": lambda im: rotated(im, 3),
    "rot5": lambda im: rotated(im, -5),
    "pad10_black": lambda im: pad(im, 0.10, (0, 0, 0)),
    "pad10_white": lambda im: pad(im, 0.10, (255, 255, 255)),
    "mirror": mirror,
    "jpeg30": lambda im: jpeg(im, 30),
    "mix_crop_rot_jpeg": lambda im: jpeg(rotated(crop(im, 0.05, False), 3), 50),
    "mix_mirror_pad_crop": lambda im: pad(mirror(crop(im, 0.05, True)), 0.10, (0, 0, 0)),
}


# -- PDQ -----------------------------------------------------------------------------------


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def pdq_rows(img: Image.Image, *, dihedral: bool) -> tuple[list[str], int]:
    res = compute_pdq(_png(img), dihedral=dihedral)
    return (list(res.dihedral) if res.dihedral else [res.hash]), res.quality


def to_rows(hexes: list[str]) -> np.ndarray:
    return np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in hexes])


def distances(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    x = np.bitwise_xor(q[:, None, :], r[None, :, :])
    out: np.ndarray = np.unpackbits(x, axis=2).sum(axis=2)
    return out


# -- scale ---------------------------------------------------------------------------------


def retrieval_at_scale(n_refs: int, per_ref: int = 500, queries: int = 50) -> dict[str, Any]:
    """Candidate retrieval over ``n_refs`` synthetic references of 500 descriptors each, of
    which the first ``per_ref`` are indexed (``VotingLocalIndex(index_keypoints=per_ref)``:
    the full sets would stay in the store for verification and are not held here).

    Each query plants a true reference: its 500 descriptors with 0..40 bits flipped each (so
    about half lie within the vote radius), plus 500 fresh rows for the mirror description.
    Votes are counted as :meth:`VotingLocalIndex.candidates` counts them (one per query
    descriptor and reference, at least ``MIN_VOTES``, the ``MAX_CANDIDATES`` best): recall is
    how often the planted reference is among them."""
    from hashwatch.index.mih import MihPdqIndex
    from hashwatch.matching.local_match import MAX_CANDIDATES, MIN_VOTES

    rng = np.random.default_rng(7)
    n = n_refs * per_ref
    rows = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    planted = [int(r) for r in rng.integers(0, n_refs, queries + 1)]
    kept = {r: rows[r * per_ref : (r + 1) * per_ref].copy() for r in planted}
    rss_before = _rss_now()
    t0 = time.perf_counter()
    index = MihPdqIndex.build(np.arange(n, dtype=np.int64), rows)
    build = time.perf_counter() - t0
    del rows  # the index holds its own (reordered) copy
    times, found, votes_true = [], 0, []
    for k, ref in enumerate(planted):
        q = np.concatenate(
            [kept[ref], rng.integers(0, 256, (500 - per_ref, 32), dtype=np.uint8)]
        )  # the unindexed rest of the set: in no table
        for i, f in enumerate(rng.integers(0, 41, 500)):
            for b in rng.choice(256, int(f), replace=False):
                q[i, b // 8] ^= np.uint8(1 << (b % 8))
        q = np.concatenate([q, rng.integers(0, 256, (500, 32), dtype=np.uint8)])
        t0 = time.perf_counter()
        got = index.query(q, VOTE_RADIUS)
        pairs = np.unique(np.stack([got.query, got.ids // per_ref], axis=1), axis=0)
        numbers, votes = np.unique(pairs[:, 1], return_counts=True)
        order = np.lexsort((numbers, -votes))[:MAX_CANDIDATES]
        cands = {int(numbers[i]) for i in order if votes[i] >= MIN_VOTES}
        dt = time.perf_counter() - t0
        if k:  # the first query compiles
            times.append(dt)
            found += ref in cands
            votes_true.append(int(votes[numbers == ref].sum()))
    return {
        "references": n_refs,
        "indexed_per_reference": per_ref,
        "descriptors": n,
        "build_s": round(build, 1),
        "index_bytes_per_reference": round(index.nbytes / n_refs),
        "index_gb": round(index.nbytes / 1e9, 2),
        "rss_gb_after_build": round(_rss_now() / 1e9, 2),
        "rss_gb_before_build": round(rss_before / 1e9, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 2),
        "feature_bytes_per_reference_in_store": 500 * (32 + 8),
        "query_ms_p50": round(1000 * float(np.percentile(times, 50)), 1),
        "query_ms_p99": round(1000 * float(np.percentile(times, 99)), 1),
        "planted_reference_among_candidates": f"{found}/{queries}",
        "planted_votes_median": int(np.median(votes_true)),
        "fallback_scans": int(index.stats.fallbacks),
    }


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def retrieval_real(n_refs: int, queries: int = 20) -> dict[str, Any]:
    """Candidate retrieval over real ORB descriptors of ``n_refs`` generated scenes (they
    cluster, unlike uniform rows): time per query and how often the index fell back to a
    scan."""
    makers: list[Callable[[np.random.Generator], Image.Image]] = [shapes, text_page, texture, mixed]
    index = VotingLocalIndex()
    with Progress() as bar:
        task = bar.add_task(f"describing {n_refs} scenes", total=n_refs)
        for k in range(n_refs):
            img = makers[k % 4](np.random.default_rng(50_000 + k)).resize((400, 300))
            index.add(k, describe(img))
            bar.advance(task)
    index.candidates(describe_query(shapes(np.random.default_rng(1))))  # build, compile
    mih = index._index
    before = (mih.stats.queries, mih.stats.fallbacks, mih.stats.scanned)
    times, found = [], 0
    for k in range(queries):
        ref = (k * 7919) % n_refs
        img = makers[ref % 4](np.random.default_rng(50_000 + ref)).resize((400, 300))
        q = describe_query(rotated(crop(img, 0.05, False), 3))
        t0 = time.perf_counter()
        got = index.candidates(q)
        times.append(time.perf_counter() - t0)
        found += ref in got
    rows = mih.stats.queries - before[0]
    return {
        "references": n_refs,
        "descriptors": index.descriptor_count,
        "candidate_ms_median": round(1000 * float(np.median(times)), 1),
        "true_reference_among_candidates": f"{found}/{queries}",
        "rows_answered_by_scan": round(
            (mih.stats.fallbacks + mih.stats.scanned - before[1] - before[2]) / max(rows, 1), 3
        ),
        "index_bytes_per_reference": round(index.nbytes / n_refs),
    }


# -- run -----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refs", type=int, default=120)
    ap.add_argument("--negatives", type=int, default=100)
    ap.add_argument("--scale", default="10000,25000")
    ap.add_argument("--real-scale", type=int, default=0, help="references of real descriptors")
    ap.add_argument("--only-scale", action="store_true", help="skip recall and false matches")
    ap.add_argument(
        "--scale-indexed", type=int, default=500, help="descriptors indexed per reference (scale)"
    )
    ap.add_argument(
        "--index-keypoints",
        default="",
        help="also local features with only the N strongest descriptors of each reference "
        "indexed, e.g. 128,64 (same queries, same run)",
    )
    ap.add_argument("--local-only", action="store_true", help="skip the PDQ methods")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.only_scale:
        scaled = scale_part(args)
        if args.json:
            args.json.write_text(json.dumps(scaled, indent=1))
        return

    refs = references(args.refs)
    negatives = [
        add_logo([shapes, text_page, texture, mixed][k % 4](np.random.default_rng(9000 + k)))
        if k % 3
        else near_uniform(np.random.default_rng(9000 + k))
        for k in range(args.negatives)
    ]
    queries: list[tuple[str, int | None, Image.Image]] = [
        (name, i, fn(img)) for i, img in enumerate(refs) for name, fn in TRANSFORMS.items()
    ] + [("negative", None, img) for img in negatives]

    index = VotingLocalIndex()
    caps = [int(c) for c in args.index_keypoints.split(",") if c]
    capped = {f"local_idx{c}": VotingLocalIndex(index_keypoints=c) for c in caps}
    ref_plain: list[str] = []
    ref_turned: list[tuple[int, str]] = []
    t_ref = 0.0
    with Progress() as bar:
        task = bar.add_task("references", total=len(refs))
        for i, img in enumerate(refs):
            t0 = time.perf_counter()
            fs = describe(img)
            index.add(i, fs)
            t_ref += time.perf_counter() - t0
            for other in capped.values():
                other.add(i, fs)
            if args.local_only:
                ref_plain.append("0" * 64)
                bar.advance(task)
                continue
            ref_plain.append(pdq_rows(img, dihedral=False)[0][0])
            for angle in ROTATION_ANGLES:
                ref_turned.append((i, pdq_rows(rotated(img, angle), dihedral=False)[0][0]))
            bar.advance(task)
    plain_rows = to_rows(ref_plain)
    turned_rows = to_rows([h for _, h in ref_turned]) if ref_turned else plain_rows[:0]
    turned_owner = np.array([i for i, _ in ref_turned])

    methods: tuple[str, ...] = ("pdq", "pdq_stage1", "pdq_rotrefs", "local", *capped)
    if args.local_only:
        methods = ("local", *capped)
    hits: dict[str, dict[str, int]] = {m: {} for m in methods}
    false: dict[str, int] = dict.fromkeys(methods, 0)
    false_kinds: dict[str, dict[str, int]] = {m: {} for m in methods}
    counts: dict[str, int] = {}
    t_pdq = t_stage1 = t_local = 0.0
    n_pairs = 0
    with Progress() as bar:
        task = bar.add_task("queries", total=len(queries))
        for name, truth, img in queries:
            counts[name] = counts.get(name, 0) + 1
            n_pairs += len(refs) - (truth is not None)
            found: dict[str, set[int]] = {}
            t0 = time.perf_counter()
            described = describe_query(img)
            found["local"] = {m.ref for m in index.search(described)}
            t_local += time.perf_counter() - t0
            for name_c, other in capped.items():
                found[name_c] = {m.ref for m in other.search(described)}
            t0 = time.perf_counter()
            if args.local_only:
                stage1, quality = list[str](), 0
            else:
                stage1, quality = pdq_rows(img, dihedral=True)
            plain = stage1[:1]
            t_pdq += time.perf_counter() - t0
            t0 = time.perf_counter()
            trimmed = None if args.local_only else trim_borders(img)
            if trimmed is not None:
                stage1 += pdq_rows(trimmed, dihedral=True)[0]
            t_stage1 += time.perf_counter() - t0
            ok = quality >= 50
            found["pdq"] = (
                set(np.flatnonzero(distances(to_rows(plain), plain_rows).min(0) <= THRESHOLD))
                if ok
                else set()
            )
            found["pdq_stage1"] = (
                set(np.flatnonzero(distances(to_rows(stage1), plain_rows).min(0) <= THRESHOLD))
                if ok
                else set()
            )
            near = (
                distances(to_rows(plain), turned_rows).min(0) <= THRESHOLD
                if ok
                else np.zeros(0, bool)
            )
            found["pdq_rotrefs"] = (
                (found["pdq"] | {int(turned_owner[j]) for j in np.flatnonzero(near)})
                if ok
                else set()
            )
            for m in methods:
                got = {int(x) for x in found[m]}
                if truth is not None and truth in got:
                    hits[m][name] = hits[m].get(name, 0) + 1
                wrong = len(got - {truth})
                false[m] += wrong
                if wrong:
                    false_kinds[m][name] = false_kinds[m].get(name, 0) + wrong
            bar.advance(task)

    n_q = len(queries)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out: dict[str, Any] = {
        "references": len(refs),
        "queries": n_q,
        "non_matching_pairs": n_pairs,
        "recall": {
            m: {t: round(hits[m].get(t, 0) / counts[t], 3) for t in TRANSFORMS} for m in methods
        },
        "false_matches": false,
        "false_matches_by_query_kind": false_kinds,
        "ms_per_query": {
            "pdq": round(1000 * t_pdq / n_q, 1),
            "pdq_stage1_extra": round(1000 * t_stage1 / n_q, 1),
            "local": round(1000 * t_local / n_q, 1),
        },
        "ms_per_reference_describe": round(1000 * t_ref / len(refs), 1),
        "feature_bytes_per_reference": round(
            sum(len(fs) * 40 for fs in index._refs.values()) / len(refs)
        ),
        "index_bytes_per_reference": round(index.nbytes / len(refs)),
        "index_bytes_per_reference_capped": {
            k: round(v.nbytes / len(refs)) for k, v in capped.items()
        },
        "rotated_reference_hashes": f"x{1 + len(ROTATION_ANGLES)} index entries",
        "peak_rss_mb": round(rss / 2**20),
    }
    print(json.dumps(out, indent=1))
    out.update(scale_part(args))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


def scale_part(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"scale": []}
    if args.real_scale:
        out["real"] = retrieval_real(args.real_scale)
        print(json.dumps(out["real"]))
    for n in (int(s) for s in args.scale.split(",") if s):
        print(f"retrieval at {n:,} references (synthetic descriptors) ...", file=sys.stderr)
        out["scale"].append(retrieval_at_scale(n, args.scale_indexed))
        print(json.dumps(out["scale"][-1]))
    return out


if __name__ == "__main__":
    main()
