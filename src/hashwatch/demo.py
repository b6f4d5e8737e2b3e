"""``make demo``: the investigator's main job on benign generated data, start to finish.

It generates pictures (gradients and shapes; the bundled public bridge photo when the
repository's test data is present), derives altered copies of some — resized, recompressed,
renamed to ``.dll``, flipped, packed into nested archives — builds a ``known`` list from a few
originals and an ``ignorable`` list from generated "system" files, imports both into an embedded
SQLite database under ``demo-case/``, adds a generated "known" video clip with ``add-media``
(the evidence holds a re-encoded copy and a clip that re-uses part of it), scans the evidence
folder into a case directory and prints the summary and the path of ``report.html``. Nothing
here is, or depicts, real material: every "known" file is a generated stand-in.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageOps
from rich.console import Console
from rich.table import Table

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import CategoryScheme, ListKind
from hashwatch.report.case import CaseDetails
from hashwatch.triage import summary_lines

__all__ = ["generate_demo_evidence", "main", "scene_picture"]

SAMPLE_PHOTO = (
    Path(__file__).resolve().parents[2] / "tests" / "data" / "pdq" / "dih" / "bridge-1-original.jpg"
)


def _picture(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    return scene_picture(np.random.default_rng(seed), size)


def scene_picture(rng: np.random.Generator, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """A generated benign scene (gradients and shapes) drawn from ``rng``: the demo's pictures,
    and the references of the robust-matching benchmark."""
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
    # A nested archive, as downloads often arrive: zip > tar.gz > pictures.
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        for name, data in (
            ("holiday/known-copy.jpg", (originals / "known-3.jpg").read_bytes()),
            ("holiday/unlisted.png", _png_bytes(_picture(21))),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = evidence / "downloads" / "photos-backup.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("backup/holiday.tar.gz", inner.getvalue())
    roles["evidence"].append(archive)
    # Near-duplicates of one unlisted picture: one cluster for the reviewer.
    _picture(22).save(evidence / "photos" / "IMG_0100.jpg", "JPEG", quality=90)
    _picture(22).resize((400, 300)).save(evidence / "photos" / "IMG_0100_small.jpg", "JPEG")
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
    # Videos: a "known" clip, a smaller re-encoded copy of it, and a clip that re-uses its
    # first three seconds before other scenes (partial re-use: shown, not an alert).
    known_clip = originals / "known-clip.mp4"
    _write_clip(known_clip, [31, 32, 33, 34, 35, 36], (480, 360), crf=23)
    roles["known_videos"] = [known_clip]
    for path, seeds, size, crf in (
        (evidence / "videos" / "VID_0001.mp4", [31, 32, 33, 34, 35, 36], (320, 240), 30),
        (evidence / "videos" / "VID_0002.mp4", [31, 32, 33, 41, 42, 43, 44], (480, 360), 23),
        (evidence / "videos" / "VID_0003.mp4", [51, 52, 53, 54], (480, 360), 23),
    ):
        _write_clip(path, seeds, size, crf=crf)
        roles["evidence"].append(path)
    return roles


def _write_clip(path: Path, seeds: list[int], size: tuple[int, int], *, crf: int) -> None:
    """A slideshow video: one generated scene a second with a mark drifting across it, drawn
    at one size and scaled, so copies at other sizes show the same pictures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fps, (w, h) = 10, size
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast", "g": str(fps)}
        for second, seed in enumerate(seeds):
            base = np.asarray(_picture(seed, (480, 360)).resize(size), dtype=np.uint8)
            for i in range(fps):
                rgb = base.copy()
                side = w // 24
                x = (w - side) * i // fps
                rgb[h // 2 - side // 2 : h // 2 + side // 2, x : x + side] = 255
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = second * fps + i
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


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
    console.print(f"[bold]hashwatch demo[/] in {root} (benign generated pictures and videos only)")
    roles = generate_demo_evidence(root)
    known_csv, ignorable = _write_lists(hw, root, roles)
    hw.lists.import_file("demo-known", known_csv, kind=ListKind.KNOWN, source_org="demo")
    hw.lists.configure(
        "demo-known",
        scheme=CategoryScheme.CUSTOM,
        category_map={"1": "demo category (generated stand-in)"},
    )
    hw.lists.import_file("demo-software", ignorable, kind=ListKind.IGNORABLE, source_org="demo")
    hw.add_media("demo-known-videos", roles["known_videos"], category="1")
    case = CaseDetails.given(
        "DEMO-0001", "Demo agency", "Demo examiner", command=["python", "-m", "hashwatch.demo"]
    )
    outcome = hw.scan([root / "evidence"], root / "case", workers=2, case=case)
    table = Table("status", "files", "what it means")
    meanings = {
        "new": "matches no list: review first, cluster by cluster",
        "known": "matches the known list (a lead to check, not a verdict)",
        "ignorable": "known software files, kept out of review",
        "other": "not media, no match",
        "error": "could not be read or decoded: see the report",
    }
    for status, meaning in meanings.items():
        table.add_row(status, str(outcome.summary.by_status.get(status, 0)), meaning)
    console.print(table)
    for line in summary_lines(outcome):
        console.print(line)
    console.print(f"[bold]report:[/] {outcome.report}")
    hw.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
