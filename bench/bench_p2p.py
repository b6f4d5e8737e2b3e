"""P2P records parsed per second: a generated 100,000-record eMule ``known.met``, read by
hashwatch's streaming reader and, in the same run, by a naive reference (the whole file read into
memory, every field unpacked with its own ``struct.unpack`` call, a dict per record).

    .venv/bin/python bench/bench_p2p.py [--records 100000] [--repeat 3]

Records are laid out as eMule 0.50's ``CKnownFile::WriteToFile`` writes them: name, size, AICH
hash, last-shared date, all-time statistics (transferred low/high, requests, accepted) and the
upload priority; names and hashes are benign counters. The best of ``--repeat`` runs is kept.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from hashwatch.scan.p2p.emule import KnownMetReader


def _tag_u32(tag_id: int, value: int) -> bytes:
    return struct.pack("<BHBI", 0x03, 1, tag_id, value)


def _tag_str(tag_id: int, value: str) -> bytes:
    raw = value.encode()
    return struct.pack("<BHBH", 0x02, 1, tag_id, len(raw)) + raw


def write_known_met(path: Path, n: int) -> None:
    with path.open("wb") as out:
        out.write(struct.pack("<BI", 0x0E, n))
        for i in range(n):
            seed = i.to_bytes(8, "little")
            aich = base64.b32encode(hashlib.sha1(seed).digest()).decode()
            tags = [
                _tag_str(0x01, f"holiday-{i:07d}.jpg"),
                _tag_u32(0x02, 100_000 + i),
                _tag_str(0x27, aich),
                _tag_u32(0x34, 1_700_000_000 + i),
                _tag_u32(0x50, 5_000 + i),
                _tag_u32(0x54, 0),
                _tag_u32(0x51, 3),
                _tag_u32(0x52, 2),
                _tag_u32(0x19, 5),
            ]
            out.write(struct.pack("<I", 1_690_000_000 + i) + hashlib.md5(seed).digest())
            out.write(struct.pack("<HI", 0, len(tags)) + b"".join(tags))


def naive_read(path: Path) -> list[dict[str, Any]]:
    """The simplest reader: the whole file in memory, one struct.unpack per field."""
    data = path.read_bytes()
    (count,) = struct.unpack("<I", data[1:5])
    p = 5
    records = []
    for _ in range(count):
        (date,) = struct.unpack("<I", data[p : p + 4])
        ed2k = data[p + 4 : p + 20].hex()
        (parts,) = struct.unpack("<H", data[p + 20 : p + 22])
        p += 22 + 16 * parts
        (tag_count,) = struct.unpack("<I", data[p : p + 4])
        p += 4
        record: dict[str, Any] = {"date": date, "ed2k": ed2k}
        for _ in range(tag_count):
            kind = data[p]
            if kind & 0x80:
                kind &= 0x7F
                tag_id = data[p + 1]
                p += 2
            else:
                (length,) = struct.unpack("<H", data[p + 1 : p + 3])
                tag_id = data[p + 3] if length == 1 else 0
                p += 3 + length
            if kind == 0x03:
                (value,) = struct.unpack("<I", data[p : p + 4])
                p += 4
                record[str(tag_id)] = value
            elif kind == 0x02:
                (length,) = struct.unpack("<H", data[p : p + 2])
                record[str(tag_id)] = data[p + 2 : p + 2 + length].decode("utf-8", "replace")
                p += 2 + length
            else:
                raise ValueError(f"tag type {kind} not in the generated file")
        records.append(record)
    return records


def hashwatch_read(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in KnownMetReader().read(stream, None))


def best(fn: Any, path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "known.met"
        write_known_met(path, args.records)
        assert hashwatch_read(path) == len(naive_read(path)) == args.records
        naive = best(naive_read, path, args.repeat)
        ours = best(hashwatch_read, path, args.repeat)
        size = path.stat().st_size
    n = args.records
    print(f"known.met: {n:,} records, {size / 1e6:.1f} MB")
    print(f"naive (whole file, struct per field): {naive:.2f} s, {n / naive:,.0f} records/s")
    print(f"hashwatch (streamed, P2PRecord each):  {ours:.2f} s, {n / ours:,.0f} records/s")
    print(f"ratio hashwatch/naive speed: {naive / ours:.2f}")


if __name__ == "__main__":
    main()
