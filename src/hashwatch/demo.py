"""``make demo``: a benign demonstration of hashing and matching, start to finish.

It generates pictures (gradients and shapes; the bundled public bridge photo when the
repository's test data is present), derives altered copies of some — resized, recompressed,
renamed to ``.dll``, flipped — builds a ``known`` list from a few originals and an
``ignorable`` list from generated "system" files, imports both into an embedded SQLite
database under ``demo-case/``, matches the whole folder and prints what was found.
Nothing here is, or depicts, real material: every "known" file is a generated stand-in.
"""

from __future__ import annotations

import csv
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from rich.console import Console
from rich.table import Table

from hashwatch.app import Hashwatch, MatchedFile
from hashwatch.config import Settings
from hashwatch.lists.model import ListKind

__all__ = ["generate_demo_evidence", "main"]

SAMPLE_PHOTO = (
    Path(__file__).resolve().parents[2] / "tests" / "data" / "pdq" / "dih" / "bridge-1-original.jpg"
)


def _picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [
            (x * rng.uniform(0.2, 1) + y * rng.uniform(0, 0.5)) % 256,
            (y * rng.uniform(0.2, 1)) % 256,
            ((x + y) * rng.uniform(0.1, 0.6)) % 256,
        ],
        axis=2,
    ).astype(np.uint8)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        box = (x0, y0, x0 + int(rng.integers(40, w // 2)), y0 + int(rng.integers(40, h // 2)))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return img


def generate_demo_evidence(root: Path) -> dict[str, list[Path]]:
    """Write the demo's originals, altered copies and unrelated files; return them by role."""
    originals = root / "reference-originals"
    evidence = root / "evidence"
    for folder in (originals, evidence / "photos", evidence / "downloads", evidence / "system"):
        folder.mkdir(parents=True, exist_ok=True)
    roles: dict[str, list[Path]] = {"known_originals": [], "evidence": []}
    pictures = [_picture(seed) for seed in range(1, 7)]
    if SAMPLE_PHOTO.exists():
        pictures[0] = Image.open(SAMPLE_PHOTO).convert("RGB")
    for n, img in enumerate(pictures[:3], start=1):
        path = originals / f"known-{n}.jpg"
        img.save(path, "JPEG", quality=92)
        roles["known_originals"].append(path)
    # Altered copies of the three "known" pictures, as they might turn up on a device.
    copies = [
        (evidence / "photos" / "IMG_0001.jpg", pictures[0], "exact"),
        (evidence / "photos" / "IMG_0002.jpg", pictures[1].resize((400, 300)), "resized"),
        (evidence / "downloads" / "setup.dll", pictures[2], "renamed"),
        (evidence / "downloads" / "scan_0003.jpg", ImageOps.mirror(pictures[0]), "flipped"),
        (evidence / "photos" / "IMG_0004.webp", pictures[1], "recompressed"),
    ]
    for path, img, how in copies:
        if how == "exact":
            shutil.copyfile(roles["known_originals"][0], path)
        elif how == "recompressed":
            img.save(path, "WEBP", quality=60)
        else:
            img.save(path, "JPEG", quality=70 if how == "resized" else 92)
        roles["evidence"].append(path)
    # Pictures no list knows: they are the "new" material a reviewer should see first.
    for n, img in enumerate(pictures[3:], start=5):
        path = evidence / "photos" / f"IMG_{n:04d}.png"
        img.save(path, "PNG")
        roles["evidence"].append(path)
    # Files known to be harmless (like NSRL's software files) and a damaged image.
    for n in range(3):
        path = evidence / "system" / f"library-{n}.so"
        path.write_bytes(np.random.default_rng(100 + n).bytes(4096))
        roles["evidence"].append(path)
    broken = evidence / "downloads" / "broken.jpg"
    broken.write_bytes((originals / "known-2.jpg").read_bytes()[:600])
    roles["evidence"].append(broken)
    return roles


def _write_lists(hw: Hashwatch, root: Path, roles: dict[str, list[Path]]) -> tuple[Path, Path]:
    known_csv = root / "known-list.csv"
    with known_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["md5", "pdq", "category", "series", "comment"])
        for n, fs in enumerate(hw.hash_paths(roles["known_originals"]), start=1):
            assert fs.digests is not None and fs.pdq is not None
            writer.writerow(
                [
                    fs.digests.md5,
                    fs.pdq.hash,
                    "1",
                    f"demo-series-{n}",
                    "generated stand-in for known material",
                ]
            )
    ignorable = root / "ignorable-list.txt"
    with ignorable.open("w") as fh:
        fh.write("# known software files (a stand-in for NSRL)\n")
        for fs in hw.hash_paths(sorted((root / "evidence" / "system").iterdir())):
            assert fs.digests is not None
            fh.write(f"sha1 {fs.digests.sha1}\n")
    return known_csv, ignorable


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    root = Path(args[0] if args else "demo-case").resolve()
    console = Console()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    settings = Settings(database_url=f"sqlite:///{root / 'hashwatch.sqlite3'}", data_dir=root)
    hw = Hashwatch(settings)
    console.print(f"[bold]hashwatch demo[/] in {root} (benign generated pictures only)")
    roles = generate_demo_evidence(root)
    known_csv, ignorable = _write_lists(hw, root, roles)
    hw.lists.import_file("demo-known", known_csv, kind=ListKind.KNOWN, source_org="demo")
    hw.lists.import_file("demo-software", ignorable, kind=ListKind.IGNORABLE, source_org="demo")
    matcher = hw.matcher(dihedral=True)
    results: list[MatchedFile] = list(hw.match_paths([root / "evidence"], matcher, workers=2))
    out = root / "matches.jsonl"
    import json

    with out.open("w") as fh:
        for r in results:
            fh.write(json.dumps(r.as_dict()) + "\n")
    table = Table("file", "status", "list", "hash", "distance", "note")
    statuses: Counter[str] = Counter()
    for r in sorted(results, key=lambda r: r.signals.path):
        rel = str(Path(r.signals.path).relative_to(root / "evidence"))
        if r.signals.error:
            status, note = "error", r.signals.error
        elif r.result.matches:
            status = r.result.matches[0].kind
            note = "flipped copy" if r.result.matches[0].variant else ""
        elif r.signals.media_type == "image":
            status, note = "new", "no list knows it: review first"
        else:
            status, note = "other", ""
        statuses[status] += 1
        best = r.result.matches[0] if r.result.matches else None
        table.add_row(
            rel,
            status,
            best.list if best else "",
            best.hash_type if best else "",
            str(best.distance) if best else "",
            note,
        )
    console.print(table)
    console.print(
        "summary: "
        + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
        + f"\nall results (JSON Lines): {out}"
    )
    hw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
