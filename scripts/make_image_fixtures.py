"""Regenerate the disk-image fixtures in tests/data/images/ (benign generated content only).

Needs (Debian): e2fsprogs (mkfs.ext4, debugfs), dosfstools (mkfs.vfat), mtools, ntfs-3g
(mkntfs, ntfscp), fdisk (sfdisk), ewf-tools (ewfacquire) and Pillow. The fixtures are
committed, so the tests need none of these tools; run this only to change them::

    .venv/bin/python scripts/make_image_fixtures.py

What it builds (``expected.json`` lists every file with its SHA-256, the deleted ones and the
pictures written into free space, with their byte offsets in the image):

- ``disk.E01`` + ``disk.E02``: a 16 MiB MBR disk as a split EnCase 6 image (1 MiB segments):
  p1 FAT16 (a deleted JPEG, a JPEG written into free clusters), p2 ext4 (a zip holding a
  JPEG, a deleted JPEG, a GIF in free blocks, 1000 KiB of random bytes so that the image needs
  two segments), p3 NTFS, and a PNG after the last partition.
- ``usb.E01``: a 1.44 MB FAT12 floppy without a partition table (a deleted PNG, a JPEG in
  free clusters), one segment.
- ``gpt.raw.gz``: a 4 MiB GPT disk with one ext4 partition, gzip-compressed (the tests
  decompress it, and split it into ``.001``/``.002`` for the split-raw case).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "images"
MiB = 1 << 20
SECTOR = 512


def picture(seed: int, fmt: str, size: int = 96) -> bytes:
    """A generated picture: a gradient with a few coloured shapes, different per seed."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    base = [rng.randrange(256) for _ in range(3)]
    for y in range(size):
        shade = tuple((c + y * 2) % 256 for c in base)
        draw.line([(0, y), (size, y)], fill=shade)
    for _ in range(6):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        box = [x0, y0, x0 + rng.randrange(8, 40), y0 + rng.randrange(8, 40)]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    out = io.BytesIO()
    if fmt == "JPEG":
        img.save(out, fmt, quality=85)
    elif fmt == "GIF":
        img.convert("P", palette=Image.Palette.ADAPTIVE).save(out, fmt)
    else:
        img.save(out, fmt)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sh(*args: str, **kwargs: Any) -> None:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, **kwargs)


def fat(
    path: Path, size: int, files: dict[str, bytes], deleted: dict[str, bytes], fat: str
) -> None:
    path.unlink(missing_ok=True)
    if fat == "12":
        sh(
            "mkfs.vfat",
            "-C",
            "-F",
            "12",
            "-n",
            "HWUSB",
            "-i",
            "12345678",
            str(path),
            str(size // 1024),
        )
    else:
        sh("truncate", "-s", str(size), str(path))
        sh("mkfs.vfat", "-F", fat, "-s", "1", "-n", "HWFAT", "-i", "1234abcd", str(path))
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in {**files, **deleted}.items():
            parts = name.split("/")
            for i in range(1, len(parts)):
                sub = "/".join(parts[:i])
                subprocess.run(
                    ["mmd", "-D", "s", "-i", str(path), "::" + sub],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            src = Path(tmp) / "f"
            src.write_bytes(data)
            sh("mcopy", "-o", "-i", str(path), str(src), "::" + name)
        for name in deleted:
            sh("mdel", "-i", str(path), "::" + name)


def ext4(path: Path, size: int, files: dict[str, bytes], deleted: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in {**files, **deleted}.items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        path.write_bytes(b"")
        sh(
            "mkfs.ext4",
            "-q",
            "-F",
            "-b",
            "1024",
            "-O",
            "^has_journal",
            "-N",
            "64",
            "-L",
            "hwext",
            "-U",
            "9a0b55e2-6a7e-4d0c-9d1b-3f8a2c0e7b11",
            "-E",
            "root_owner=0:0",
            "-d",
            tmp,
            str(path),
            f"{size // 1024}k",
        )
    for name in deleted:
        sh("debugfs", "-w", "-R", f"rm /{name}", str(path), stderr=subprocess.DEVNULL)


def ntfs(path: Path, size: int, start_sector: int, files: dict[str, bytes]) -> None:
    sh("truncate", "-s", str(size), str(path))
    sh(
        "mkntfs",
        "-q",
        "-F",
        "-Q",
        "-s",
        "512",
        "-p",
        str(start_sector),
        "-L",
        "HWNTFS",
        str(path),
        stderr=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            src = Path(tmp) / "f"
            src.write_bytes(data)
            sh("ntfscp", "-f", str(path), str(src), "/" + name, stderr=subprocess.DEVNULL)


def place(image: Path, offset: int, data: bytes) -> None:
    with image.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def ewf(raw: Path, target: Path, segment: int) -> None:
    sh(
        "ewfacquire",
        "-u",
        "-q",
        "-t",
        str(target),
        "-f",
        "encase6",
        "-c",
        "deflate:best",
        "-S",
        str(segment),
        "-d",
        "sha1",
        "-C",
        "HW-TEST-1",
        "-D",
        "generated test disk",
        "-e",
        "hashwatch tests",
        "-E",
        "1",
        "-N",
        "benign generated content",
        str(raw),
    )


def partition_table(disk: Path, label: str, parts: list[tuple[int, int, str]]) -> None:
    lines = [f"label: {label}", ""]
    lines += [f"start={start}, size={count}, type={kind}" for start, count, kind in parts]
    sh("sfdisk", "-q", str(disk), input="\n".join(lines).encode())


def main() -> int:
    for tool in (
        "mkfs.ext4",
        "debugfs",
        "mkfs.vfat",
        "mcopy",
        "mkntfs",
        "ntfscp",
        "sfdisk",
        "ewfacquire",
    ):
        if shutil.which(tool) is None:
            print(
                f"missing {tool}: apt-get install -y e2fsprogs dosfstools mtools ntfs-3g "
                "fdisk ewf-tools",
                file=sys.stderr,
            )
            return 1
    OUT.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Any] = {}
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)

        # --- disk.E01/E02: MBR with FAT16, ext4, NTFS --------------------------------
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as zf:
            zf.writestr("inner/photo.jpg", picture(21, "JPEG"))
        fat_files = {
            "DCIM/IMG_0001.JPG": picture(1, "JPEG"),
            "DCIM/IMG_0002.PNG": picture(2, "PNG"),
            "README.TXT": b"generated test volume\n" * 20,
        }
        fat_deleted = {"OLD.JPG": picture(3, "JPEG")}
        ext_files = {
            "photos/a.jpg": picture(11, "JPEG"),
            "photos/b.gif": picture(12, "GIF"),
            "archive.zip": inner.getvalue(),
            "notes/random.bin": rng.randbytes(1000 * 1024),
        }
        ext_deleted = {"gone.jpg": picture(13, "JPEG")}
        ntfs_files = {"a.jpg": picture(31, "JPEG"), "doc.txt": b"ntfs test file\n" * 50}
        carved_fat = picture(41, "JPEG")
        carved_ext = picture(42, "GIF")
        carved_disk = picture(43, "PNG")

        p1, p2, p3 = (2048, 10240), (12288, 10240), (22528, 8192)
        disk = tmp / "disk.raw"
        sh("truncate", "-s", str(16 * MiB), str(disk))
        partition_table(
            disk, "dos", [(p1[0], p1[1], "6"), (p2[0], p2[1], "83"), (p3[0], p3[1], "7")]
        )
        fat(tmp / "p1", p1[1] * SECTOR, fat_files, fat_deleted, "16")
        fat_free = p1[1] * SECTOR - 64 * 1024  # the last clusters: never allocated here
        place(tmp / "p1", fat_free, carved_fat)
        ext4(tmp / "p2", p2[1] * SECTOR, ext_files, ext_deleted)
        ext_free = p2[1] * SECTOR - 64 * 1024
        place(tmp / "p2", ext_free, carved_ext)
        ntfs(tmp / "p3", p3[1] * SECTOR, p3[0], ntfs_files)
        for (start, _), part in zip((p1, p2, p3), ("p1", "p2", "p3"), strict=True):
            place(disk, start * SECTOR, (tmp / part).read_bytes())
        outside = 15 * MiB + 512 * 1024
        place(disk, outside, carved_disk)
        for old in OUT.glob("disk.E0*"):
            old.unlink()
        ewf(disk, OUT / "disk", MiB)
        expected["disk"] = {
            "media_sha256": sha(disk.read_bytes()),
            "media_md5": hashlib.md5(disk.read_bytes()).hexdigest(),
            "files": {
                **{f"p1(FAT16)/{k}": sha(v) for k, v in fat_files.items()},
                **{f"p2(ext4)/{k}": sha(v) for k, v in ext_files.items()},
                "p2(ext4)/archive.zip!/inner/photo.jpg": sha(picture(21, "JPEG")),
                **{f"p3(NTFS)/{k}": sha(v) for k, v in ntfs_files.items()},
            },
            # FAT keeps a deleted name without its first character: TSK shows "_".
            "deleted": {
                "p1(FAT16)/_LD.JPG": sha(fat_deleted["OLD.JPG"]),
                "p2(ext4)/gone.jpg": sha(ext_deleted["gone.jpg"]),
            },
            "carved": {
                f"p1(FAT16)/$Unallocated/offset-{p1[0] * SECTOR + fat_free}.jpg": sha(carved_fat),
                f"p2(ext4)/$Unallocated/offset-{p2[0] * SECTOR + ext_free}.gif": sha(carved_ext),
                f"$Unallocated/offset-{outside}.png": sha(carved_disk),
            },
        }

        # --- usb.E01: an unpartitioned FAT12 floppy -----------------------------------
        usb = tmp / "usb.raw"
        usb_files = {"PICS/CAT.JPG": picture(51, "JPEG"), "NOTE.TXT": b"usb stick\n"}
        usb_deleted = {"TRASH.PNG": picture(52, "PNG")}
        fat(usb, 1440 * 1024, usb_files, usb_deleted, "12")
        usb_free = 1440 * 1024 - 48 * 1024
        carved_usb = picture(53, "JPEG")
        place(usb, usb_free, carved_usb)
        for old in OUT.glob("usb.E0*"):
            old.unlink()
        ewf(usb, OUT / "usb", 64 * MiB)
        expected["usb"] = {
            "media_sha256": sha(usb.read_bytes()),
            "media_md5": hashlib.md5(usb.read_bytes()).hexdigest(),
            "files": {f"fs(FAT12)/{k}": sha(v) for k, v in usb_files.items()},
            "deleted": {"fs(FAT12)/_RASH.PNG": sha(usb_deleted["TRASH.PNG"])},
            "carved": {f"fs(FAT12)/$Unallocated/offset-{usb_free}.jpg": sha(carved_usb)},
        }

        # --- gpt.raw.gz: GPT with one ext4 partition ----------------------------------
        gpt = tmp / "gpt.raw"
        sh("truncate", "-s", str(4 * MiB), str(gpt))
        g1 = (2048, 4096)
        partition_table(gpt, "gpt", [(g1[0], g1[1], "0FC63DAF-8483-4772-8E79-3D69D8477DE4")])
        gpt_files = {"home/user/pic.jpg": picture(61, "JPEG"), "home/user/todo.txt": b"todo\n"}
        ext4(tmp / "g1", g1[1] * SECTOR, gpt_files, {})
        place(gpt, g1[0] * SECTOR, (tmp / "g1").read_bytes())
        (OUT / "gpt.raw.gz").write_bytes(gzip.compress(gpt.read_bytes(), mtime=0))
        expected["gpt"] = {
            "media_sha256": sha(gpt.read_bytes()),
            "files": {f"p1(ext4)/{k}": sha(v) for k, v in gpt_files.items()},
        }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.stat().st_size:>9}  {f.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
