"""eMule cancelled.met records matched by salting the lists' ED2K hashes: one pass of
:func:`hashwatch.matching.salted.match_salted_ed2k` over a known list of N ED2K values
(streamed from the store), beside the reference in the same run: the same N values salted from
a Python list already in memory (MD5 alone, no store).

    .venv/bin/python bench/bench_p2p_salted.py [--entries 1000000]

200 salted values are asked for, 100 of listed entries: the pass must find exactly those 100.
Printed: seconds of each, their ratio, values salted per second, and the main process's peak
RSS before and after the pass (the pass keeps only the rows it finds).
Values are MD5 digests of benign counters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import struct
import tempfile
import time
from pathlib import Path

from hashwatch.app import Hashwatch
from hashwatch.config import Settings
from hashwatch.lists.model import ListKind
from hashwatch.matching.salted import match_salted_ed2k, salt_ed2k

SEED = 0x5EED1234


def _value(i: int) -> bytes:
    return hashlib.md5(i.to_bytes(8, "little")).digest()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    n: int = args.entries
    step = max(1, n // 100)
    wanted = {salt_ed2k(SEED, _value(i)).hex() for i in range(0, n, step)}
    wanted |= {salt_ed2k(SEED, _value(n + i)).hex() for i in range(100)}  # not listed
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        listed = tmp / "known.txt"
        with listed.open("w") as fh:
            for i in range(n):
                fh.write(f"ed2k {_value(i).hex()}\n")
        app = Hashwatch(Settings(database_url=f"sqlite:///{tmp / 'hw.sqlite3'}", data_dir=tmp))
        try:
            start = time.perf_counter()
            app.lists.import_file("bench-known", listed, kind=ListKind.KNOWN)
            import_s = time.perf_counter() - start
            matcher = app.matcher(None)
            rss_before = _rss_mib()
            start = time.perf_counter()
            answer = match_salted_ed2k(matcher, SEED, wanted, max_entries=n)
            pass_s = time.perf_counter() - start
            rss_after = _rss_mib()
        finally:
            app.close()
        found = len(answer.matches)
        assert answer.checked == n and found == len(range(0, n, step)), (answer.checked, found)

        values = [_value(i) for i in range(n)]  # the reference: the values already in memory
        targets = {bytes.fromhex(v) for v in wanted}
        prefix = struct.pack("<I", SEED)
        start = time.perf_counter()
        ref_found = sum(1 for v in values if hashlib.md5(prefix + v).digest() in targets)
        ref_s = time.perf_counter() - start
        assert ref_found == found
        print(
            json.dumps(
                {
                    "entries": n,
                    "import_s": round(import_s, 1),
                    "pass_s": round(pass_s, 2),
                    "reference_md5_only_s": round(ref_s, 2),
                    "ratio_pass_to_reference": round(pass_s / ref_s, 2),
                    "salted_per_s": round(n / pass_s),
                    "found": found,
                    "rss_before_pass_mib": round(rss_before, 1),
                    "rss_after_pass_mib": round(rss_after, 1),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
