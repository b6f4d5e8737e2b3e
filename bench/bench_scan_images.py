"""Disk-image scan beside The Sleuth Kit's ``fls`` + ``icat`` + ``sha256sum``; carving MB/s.

    .venv/bin/python bench/bench_scan_images.py [--gib 1.0] [--workers 2] [--dir /tmp/hw-bench-img]

Builds (once, kept in ``--dir``) a raw ext4 image of about ``--gib`` GiB with ``mkfs.ext4 -d``
from generated benign content: photos (1 MP and thumbnails), documents and large binary files,
with a quarter of the image left free and a few pictures written into the free blocks. Then:

- the reference: ``fls -r -p`` lists every file with its inode, and ``icat IMAGE INODE |
  sha256sum`` reads each one (what an examiner scripts with The Sleuth Kit); needs Debian's
  ``sleuthkit`` package (apt-get install -y sleuthkit), and says so when it is missing;
- ``hashwatch scan IMAGE`` over the same image (every file: six digests, PDQ of each picture
  with its dihedral variants, EXIF, thumbnails, outputs), and the ratio of the two times;
- the carver alone over the image's free space (MB/s of unallocated bytes searched).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.scan.carve import carve
from hashwatch.scan.image_io import RAW, open_media
from hashwatch.scan.image_parts import CARVE
from hashwatch.scan.images import ImagePlanner
from hashwatch.scan.walk import walk_evidence

MiB = 1 << 20


def picture(rng: np.random.Generator, w: int, h: int) -> bytes:
    small = rng.integers(0, 256, (max(2, h // 64), max(2, w // 64), 3), dtype=np.uint8)
    img = Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BILINEAR)
    noise = rng.normal(0, 6, (h, w, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=88)
    return buf.getvalue()


def build(image: Path, gib: float) -> tuple[int, int]:
    """The image (content ~ 3/4 of it); returns (files, bytes of content)."""
    rng = np.random.default_rng(5)
    rand = random.Random(5)
    content = int(gib * 0.75 * (1 << 30))
    files = total = 0
    with tempfile.TemporaryDirectory(dir=image.parent) as tmp:
        root = Path(tmp)
        photos = [picture(rng, 1152, 864) for _ in range(40)]  # varied, re-used with a suffix
        thumbs = [picture(rng, 160, 120) for _ in range(40)]
        while total < content:
            n = files
            folder = root / f"user{n % 7}" / f"dir{n % 53}"
            folder.mkdir(parents=True, exist_ok=True)
            kind = n % 10
            if kind < 5:
                data = photos[n % 40] + n.to_bytes(4, "little")  # unique bytes per file
                name = f"IMG_{n:06d}.jpg"
            elif kind < 8:
                data = thumbs[n % 40] + n.to_bytes(4, "little")
                name = f"thumb_{n:06d}.jpg"
            elif kind == 8:
                data = (f"document {n}\n" * rand.randrange(50, 5000)).encode()
                name = f"doc_{n:06d}.txt"
            else:
                data = rand.randbytes(rand.randrange(1, 9) * MiB)
                name = f"blob_{n:06d}.bin"
            (folder / name).write_bytes(data)
            files += 1
            total += len(data)
        size_kib = int(gib * (1 << 20))
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-d", tmp, str(image), f"{size_kib}k"],
            check=True,
        )
    # Pictures in free blocks: the last 8 MiB (ext4 leaves the end of a large image free).
    with image.open("r+b") as f:
        for k in range(8):
            f.seek(image.stat().st_size - (k + 1) * MiB)
            f.write(picture(rng, 640, 480))
    return files, total


def reference(image: Path) -> tuple[float, dict[str, str]]:
    """``fls -r -p`` then ``icat | sha256sum`` per regular file; {path: sha256}."""
    start = time.perf_counter()
    listing = subprocess.run(
        ["fls", "-r", "-p", "-u", str(image)], check=True, capture_output=True, text=True
    ).stdout
    out = {}
    for line in listing.splitlines():
        kind, _, rest = line.partition(" ")
        if not kind.startswith("r/r"):
            continue
        inode, _, path = rest.partition(":\t")
        if "$OrphanFiles" in path:
            continue
        icat = subprocess.Popen(["icat", str(image), inode.strip()], stdout=subprocess.PIPE)
        digest = subprocess.run(
            ["sha256sum"], stdin=icat.stdout, capture_output=True, text=True, check=True
        ).stdout.split()[0]
        icat.wait()
        out[path] = digest
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hw-bench-img"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    image = args.dir / f"ext4-{args.gib:g}g.dd"
    if not image.exists():
        t = time.perf_counter()
        files, content = build(image, args.gib)
        print(
            f"built {image}: {files} files, {content / MiB:,.0f} MiB of content "
            f"({time.perf_counter() - t:.1f} s)"
        )
    size = image.stat().st_size
    print(f"image: {size / MiB:,.0f} MiB raw ext4")

    ref_s: float | None = None
    ref: dict[str, str] = {}
    if shutil.which("fls") and shutil.which("icat"):
        ref_s, ref = reference(image)
        print(f"fls + icat + sha256sum: {len(ref)} files in {ref_s:.1f} s")
    else:
        print(
            "fls/icat missing: the reference needs Debian's sleuthkit (apt-get install -y "
            "sleuthkit); hashwatch alone is timed"
        )

    work = Path(tempfile.mkdtemp(dir=args.dir))
    hw = Hashwatch(Settings(database_url=f"sqlite:///{work / 'hw.sqlite3'}", data_dir=work))
    t = time.perf_counter()
    outcome = hw.scan([image], work / "case", workers=args.workers)
    scan_s = time.perf_counter() - t
    rows = [json.loads(line) for line in (work / "case" / "results.jsonl").open()]
    prefix = f"{image}!/fs(ext4)/"
    ours = {r["path"][len(prefix) :]: r.get("sha256") for r in rows if r["path"].startswith(prefix)}
    ours = {p: s for p, s in ours.items() if "!/" not in p and not p.startswith("$OrphanFiles")}
    print(
        f"hashwatch scan ({args.workers} workers): {outcome.summary.files} records, "
        f"{len(ours)} files of the file system in {scan_s:.1f} s "
        f"({size / MiB / scan_s:,.0f} MiB/s of image)"
    )
    if ref_s is not None:
        same = sum(1 for p, s in ref.items() if ours.get(p) == s)
        print(f"same SHA-256 as icat: {same} of {len(ref)} files")
        print(f"ratio hashwatch / (fls+icat+sha256sum): {scan_s / ref_s:.2f}")

    parts = [
        ef.part
        for ef in ImagePlanner(carve=True).expand(walk_evidence([image]))
        if ef.part is not None and ef.part.kind == CARVE
    ]
    reader = open_media(RAW, [str(image)])
    free = sum(e - s for p in parts for s, e in p.ranges)
    t = time.perf_counter()
    found = [c for p in parts for c in carve(reader.read_at, p.ranges, reader.size)]
    carve_s = time.perf_counter() - t
    reader.close()
    print(
        f"carving: {len(found)} pictures in {free / MiB:,.0f} MiB of free space in "
        f"{carve_s:.1f} s: {free / MiB / carve_s:,.0f} MB/s (one core)"
    )
    sizes = {hashlib.sha256(c.data).hexdigest()[:8]: len(c.data) for c in found}
    print(f"carved sizes: {sorted(sizes.values())}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
