"""Payment screening at scale: DuckDB (hashwatch) beside the same rules in naive pandas.

For each size, a synthetic export (``hashwatch payments synth``, 20 payments per account,
cached under ``bench/out/payments-<rows>``) is screened in a child process with DuckDB's
``memory_limit`` set low (default 1GB), and — up to ``--pandas-max`` rows — with the pandas
reference (``bench/_payments_pandas.py``) in another child. Each child reports its wall time
and its peak resident memory (``ru_maxrss``), so the two never share a heap. The 10,000,000-row
CSV is about 1.3 GB: its DuckDB run is the "1 GB input in bounded memory" measurement.

    .venv/bin/python bench/bench_payments.py --sizes 1000000,10000000 --pandas-max 3000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "out"
BOUND_GB = 4.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _child(engine: str, data: Path, memory_limit: str) -> dict[str, Any]:
    from hashwatch.payments.config import RELATION_RULES, load_config, load_rates

    rates = load_rates(data / "rates.csv")
    config = load_config(overrides={"engine": {"memory_limit": memory_limit}})
    started = time.perf_counter()
    if engine == "duckdb-sql":
        # The SQL half of the screening alone: read, parse, convert, relation rules (the part
        # that runs in DuckDB under its memory_limit); the network rules and scores that
        # follow run in Python over the reduced graph.
        import shutil

        from hashwatch.payments.ingest import connect, ingest_file
        from hashwatch.payments.rules import build_relations

        out = data / "screen-sql"
        out.mkdir(exist_ok=True)
        con = connect(config.engine, out, config, {"EUR": 1.0, **rates})
        ingest_file(con, data / "transactions.csv", 0, config)
        read_s = time.perf_counter() - started
        build_relations(con, config)
        fired = " OR ".join(f"f_{r}" for r in RELATION_RULES)
        row = con.execute(
            f"SELECT count(*), count(*) FILTER ({fired}), count(*) FILTER (f_corridor) FROM rel"
        ).fetchone()
        con.close()
        shutil.rmtree(out, ignore_errors=True)
        found = {
            "relations": row[0] if row else 0,
            "relations_with_a_rule": row[1] if row else 0,
            "corridor_relations": row[2] if row else 0,
            "read_seconds": read_s,
        }
    elif engine == "duckdb":
        from hashwatch.payments.screen import screen

        def step(phase: str, done: int, total: int) -> None:
            print(
                f"  [{done}/{total}] {phase} {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
                flush=True,
            )

        out = data / "screen-duckdb"
        result = screen([data / "transactions.csv"], config, out, None, step, rates)
        written = json.loads((out / "screening.json").read_text())
        found = {
            "rows": result.rows,
            "relations": result.relations,
            "relations_in_scope": written["relations_in_scope"],
            "alerts": len(result.alerts),
            "phases": {k: round(v, 1) for k, v in result.timings.items()},
        }
    else:
        sys.path.insert(0, str(ROOT))
        from _payments_pandas import screen_pandas

        found = screen_pandas(data / "transactions.csv", config, rates)
    return {**found, "seconds": time.perf_counter() - started, "peak_rss_mb": _peak_mb()}


def _run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    sys.stderr.write(done.stderr[-2000:])
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}", "peak_rss_mb": float("nan")}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _generate(rows: int, seed: int) -> tuple[Path, dict[str, Any]]:
    data = DATA / f"payments-{rows}"
    manifest = data / "synth.json"
    if manifest.is_file():
        known = json.loads(manifest.read_text())
        if known["settings"]["seed"] == seed and known["rows"] == rows:
            return data, {"cached": True}
    started = time.perf_counter()
    cmd = [
        sys.executable,
        "-m",
        "hashwatch",
        "payments",
        "synth",
        "--out",
        str(data),
        "--accounts",
        str(rows // 20),
        "--transactions",
        str(rows),
        "--seed",
        str(seed),
    ]
    wrapped = [sys.executable, __file__, "--child-cmd", *cmd]
    done = subprocess.run(wrapped, capture_output=True, text=True, check=True)
    peak = float(done.stdout.strip().splitlines()[-1])
    return data, {"seconds": time.perf_counter() - started, "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--pandas-max", type=int, default=3_000_000)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--full-max",
        type=int,
        default=10_000_000,
        help="Largest size screened in full (the SQL half is measured at every size).",
    )
    parser.add_argument(
        "--no-sql-half",
        action="store_true",
        help="Leave out the SQL half measured alone (the full screening includes it).",
    )
    args = parser.parse_args()
    print(f"payments screening, memory_limit={args.memory_limit}, bound {BOUND_GB:g} GB")
    for rows in (int(s) for s in args.sizes.split(",")):
        data, gen = _generate(rows, args.seed)
        size_gb = (data / "transactions.csv").stat().st_size / 1e9
        print(f"\n{rows:,} payments ({size_gb:.2f} GB CSV); generated: {json.dumps(gen)}")
        sql: dict[str, Any] = {"error": "not run (--no-sql-half)"}
        if not args.no_sql_half:
            sql = _run_child("duckdb-sql", str(data), args.memory_limit)
            print(f"  duckdb, SQL half (read + relation rules): {json.dumps(sql)}")
        if rows > args.full_max:
            print(f"  full screening: not run above {args.full_max:,} rows (--full-max)")
            continue
        duck = _run_child("duckdb", str(data), args.memory_limit)
        print(f"  duckdb: {json.dumps(duck)}")
        if "error" not in duck:
            ok = duck["peak_rss_mb"] / 1024 <= BOUND_GB
            print(
                f"  duckdb peak RSS {duck['peak_rss_mb'] / 1024:.2f} GB "
                f"({'within' if ok else 'OVER'} the {BOUND_GB:g} GB bound), "
                f"{rows / duck['seconds']:,.0f} payments/s"
            )
        if rows > args.pandas_max:
            print(f"  pandas: not run above {args.pandas_max:,} rows (--pandas-max)")
            continue
        ref = _run_child("pandas", str(data), args.memory_limit)
        print(f"  pandas: {json.dumps(ref)}")
        if "error" not in sql and "error" not in ref:
            print(f"  ratio pandas/duckdb SQL half: {ref['seconds'] / sql['seconds']:.2f}x time")
        if "error" not in duck and "error" not in ref:
            print(
                f"  ratio pandas/duckdb: {ref['seconds'] / duck['seconds']:.2f}x time, "
                f"{ref['peak_rss_mb'] / duck['peak_rss_mb']:.2f}x peak memory; alerts "
                f"{duck['alerts']} (duckdb) vs {ref['alerts']} (pandas)"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], Path(sys.argv[3]), sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-cmd":
        subprocess.run(sys.argv[2:], check=True, stdout=subprocess.DEVNULL)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        print(f"{peak:.1f}")
    else:
        main()
