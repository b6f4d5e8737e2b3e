"""``hashwatch serve`` beside Meta's HMA 2.0 (OpenMediaMatch): the same hashes, the same queries.

    .venv/bin/python bench/bench_vs_hma.py --hma-src PATH [--entries 1000000] [--queries 20000]

``PATH`` is a checkout of github.com/facebook/ThreatExchange (or its
``hasher-matcher-actioner`` folder): HMA installs only from source, so it is installed with
``pip install -e`` into its own virtual environment (``--hma-venv``, default
``/tmp/hma-venv``; never hashwatch's). HMA runs on the machine's PostgreSQL in a throwaway
database (created and dropped here; ``--pg-admin`` is an administrator's URL), hashwatch on
SQLite. Both get the same ``--entries`` random PDQ hashes (benign: random bits) and answer the
same ``--queries`` queries: half stored hashes with 0-31 bits flipped, half fresh. Each
server runs alone, with 1 and 2 workers, driven by ``--threads`` client threads (each level
in turn, e.g. ``--threads 1 4 16``) on keep-alive loopback connections; HMA tuned as its peer
should be (faiss on one thread: ``OMP_NUM_THREADS=1``), by ``/m/raw_lookup`` (index only) and
``/m/lookup`` (with bank metadata; ``--hma-requests`` picks). Printed: lookups/s, p50/p99,
the server's CPU per lookup (user + system of its process tree while the queries ran: HMA's
PostgreSQL, which ``/m/lookup`` asks, is not in it), the servers' RSS and PSS (summed over the
process tree; PSS shares pages that processes map together), start-up time, whether the
answers agreed on every query, and the ratios.
Without ``--hma-src`` only hashwatch runs.

The load generator shares the machine's cores with the server, so every number is a floor;
compare ratios from one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _serving import free_port, start_serve

HERE = Path(__file__).resolve().parent
BANK = "BENCH_BANK"


# -- data ---------------------------------------------------------------------------------


def make_hashes(entries: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for start in range(0, entries, 100_000):
        rows = rng.integers(0, 256, size=(min(100_000, entries - start), 32), dtype=np.uint8)
        out.extend(r.tobytes().hex() for r in rows)
    return out


def make_queries(stored: list[str], count: int, seed: int = 7) -> list[str]:
    """Half stored hashes with 0-31 bits flipped, half fresh random hashes, shuffled."""
    rng = np.random.default_rng(seed)
    queries: list[str] = []
    for i in range(count):
        if i % 2 == 0:
            raw = bytearray(bytes.fromhex(stored[int(rng.integers(len(stored)))]))
            for bit in rng.choice(256, size=int(rng.integers(0, 32)), replace=False):
                raw[int(bit) // 8] ^= 1 << (int(bit) % 8)
            queries.append(raw.hex())
        else:
            queries.append(rng.bytes(32).hex())
    order = rng.permutation(count)
    return [queries[int(i)] for i in order]


# -- measuring ----------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    workers: int
    threads: int
    request: str
    lookups_s: float
    p50: float
    p99: float
    rss_mib: float
    pss_mib: float
    ready_s: float
    answers: list[frozenset[str]]
    cpu_ms: float = float("nan")  # the server's CPU (user + system, its process tree) a lookup


def tree(pid: int) -> list[int]:
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out.extend(tree(int(child)))
    return out


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (threads included) so far:
    per lookup, a measure the other work on a shared machine moves less than the rate."""
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def memory_mib(pid: int) -> tuple[float, float]:
    """RSS and PSS of a process and its descendants, in MiB."""
    rss = pss = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


Ask = Callable[[http.client.HTTPConnection, str], frozenset[str]]


def drive(
    port: int, queries: list[str], threads: int, ask: Ask
) -> tuple[float, list[float], list[frozenset[str]]]:
    """Every query once, split over ``threads`` keep-alive connections; lookups/s, latencies
    in ms and each query's matched hashes (in query order)."""
    answers: list[frozenset[str]] = [frozenset()] * len(queries)
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local: list[float] = []
        try:
            for i in range(k, len(queries), threads):
                t = time.perf_counter()
                answers[i] = ask(conn, queries[i])
                local.append((time.perf_counter() - t) * 1000)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()
        with lock:
            latencies.extend(local)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return len(queries) / elapsed, latencies, answers


def measure(
    server: str,
    workers: int,
    threads: int,
    request: str,
    pid: int,
    port: int,
    ask: Ask,
    queries: list[str],
    ready_s: float,
) -> Run:
    """One load level against a running server: a 400-query warm-up, then every query once;
    the server's CPU a lookup and memory (its process tree) taken around the timed run."""
    drive(port, queries[: min(len(queries), 400)], threads, ask)  # warm-up
    cpu = cpu_s(pid)
    rate, lat, answers = drive(port, queries, threads, ask)
    cpu_ms = (cpu_s(pid) - cpu) / len(queries) * 1000
    rss, pss = memory_mib(pid)
    run = Run(
        server, workers, threads, request, rate, *_pcts(lat), rss, pss, ready_s, answers, cpu_ms
    )
    print(_row(run), flush=True)
    return run


def _get_json(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> object:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{method} {path.split('?')[0]}: HTTP {response.status}")
    return json.loads(data)


# -- hashwatch ----------------------------------------------------------------------------


def hashwatch_setup(base: Path, stored: list[str]) -> tuple[str, str, dict[int, str]]:
    """A SQLite database holding ``stored`` (reused when ``base`` has one of these hashes),
    a matcher key, and entry id -> hash."""
    from sqlalchemy import text

    from hashwatch.app import Hashwatch
    from hashwatch.store.service import KeyStore, Role

    url = f"sqlite:///{base / 'bench.sqlite3'}"
    listing = base / "list.txt"
    fresh = not (base / "bench.sqlite3").exists()
    if fresh:
        base.mkdir(parents=True, exist_ok=True)
        with listing.open("w") as out:
            out.writelines(f"pdq {v}\n" for v in stored)
    hw = Hashwatch.open(url, base)
    if fresh:
        started = time.perf_counter()
        hw.lists.import_file("bench", listing)
        print(
            f"hashwatch: imported {len(stored):,} hashes in {time.perf_counter() - started:.0f} s"
        )
    with hw.db.read() as conn:
        rows = conn.execute(
            text("SELECT entry_id, value FROM entry_hashes WHERE hash_type = 'pdq'")
        ).all()
    by_entry = {int(r[0]): str(r[1]) for r in rows}
    if sorted(by_entry.values()) != sorted(stored):
        raise SystemExit(f"{base} holds other hashes than this run's: use an empty directory")
    started = time.perf_counter()
    _ = hw.pdq_index  # build and persist the index once, as an import before serving does
    print(f"hashwatch: index ready in {time.perf_counter() - started:.1f} s", flush=True)
    token = (
        KeyStore(hw.db)
        .create(f"bench-{secrets.token_hex(3)}", Role.MATCHER, rate_per_s=10**6)
        .token
    )
    hw.close()
    return url, token, by_entry


def hashwatch_runs(
    base: Path,
    url: str,
    token: str,
    by_entry: dict[int, str],
    queries: list[str],
    threads: list[int],
    workers: list[int],
) -> list[Run]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def ask(conn: http.client.HTTPConnection, q: str) -> frozenset[str]:
        body = json.dumps({"signals": [{"type": "pdq", "value": q}]}).encode()
        answer = _get_json(conn, "POST", "/v1/match", body, headers)
        assert isinstance(answer, dict)
        return frozenset(by_entry[int(m["entry_id"])] for m in answer["matches"])

    runs = []
    for n in workers:
        started = time.perf_counter()
        proc, address = start_serve(url, base, "--workers", str(n))
        ready = time.perf_counter() - started
        try:
            port = int(address.rsplit(":", 1)[1])
            for t in threads:
                runs.append(
                    measure(
                        "hashwatch",
                        n,
                        t,
                        "/v1/match, 1 signal",
                        proc.pid,
                        port,
                        ask,
                        queries,
                        ready,
                    )
                )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return runs


# -- HMA ----------------------------------------------------------------------------------


def hma_install(src: Path, venv: Path) -> Path:
    hma = src / "hasher-matcher-actioner" if (src / "hasher-matcher-actioner").is_dir() else src
    if not (hma / "src" / "OpenMediaMatch").is_dir():
        raise SystemExit(f"{src} is not a ThreatExchange checkout (no hasher-matcher-actioner)")
    python = venv / "bin" / "python"
    # HMA's package declares no modules: it runs with its src/ folder on the path.
    check = [str(python), "-c", "import OpenMediaMatch.app, faiss, gunicorn"]
    env = {**os.environ, "PYTHONPATH": str(hma / "src")}
    if not python.exists() or subprocess.run(check, env=env, capture_output=True).returncode:
        print(f"HMA: installing {hma} into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "-e", f"{hma}[prod]"], check=True
        )
    return hma


def hma_config(path: Path, db_url: str) -> None:
    path.write_text(
        f"""
from OpenMediaMatch.storage.postgres.impl import DefaultOMMStore
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.content_type.photo import PhotoContent

DATABASE_URI = {db_url!r}
PRODUCTION = True
ROLE_HASHER = False
ROLE_MATCHER = True
ROLE_CURATOR = False
UI_ENABLED = False
TASK_FETCHER = False
TASK_INDEXER = False
TASK_INDEX_CACHE = True
TASK_INDEX_CACHE_INTERVAL_SECONDS = 30
INDEX_CACHE_MAX_STALE_SEC = 0
STORAGE_IFACE_INSTANCE = DefaultOMMStore(
    signal_types=[PdqSignal], content_types=[PhotoContent], exchange_types=[]
)
"""
    )


def hma_setup(
    hma: Path, venv: Path, pg_admin: str, stored: list[str], work: Path
) -> tuple[dict[str, str], str]:
    """A fresh database with HMA's schema, one bank holding ``stored`` (content id i+1 for
    hash i) and its PDQ index built; the environment to run HMA in, and the database name."""
    import psycopg

    name = f"hma_bench_{secrets.token_hex(4)}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(pg_admin)
    db_url = urllib.parse.urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{name}", "", ""))
    config = work / "omm_config.py"
    hma_config(config, db_url)
    env = {
        **os.environ,
        "OMM_CONFIG": str(config),
        "OMP_NUM_THREADS": "1",  # faiss on one thread: the tuned peer
        "PYTHONPATH": str(hma / "src"),
    }
    flask = [str(venv / "bin" / "flask"), "--app", "OpenMediaMatch.app"]
    migrations = hma / "src" / "OpenMediaMatch" / "migrations"
    subprocess.run(
        [*flask, "db", "upgrade", "--directory", str(migrations)],
        env={**env, "MIGRATION_COMMAND": "1"},
        check=True,
        capture_output=True,
    )
    started = time.perf_counter()
    target = urllib.parse.urlunsplit(("postgresql", parts.netloc, f"/{name}", "", ""))
    with psycopg.connect(target) as conn:
        conn.execute("INSERT INTO bank (id, name, enabled_ratio) VALUES (1, %s, 1.0)", (BANK,))
        with conn.cursor().copy(
            "COPY bank_content (id, bank_id, disable_until_ts) FROM STDIN"
        ) as cp:
            for i in range(len(stored)):
                cp.write_row((i + 1, 1, 1))
        with conn.cursor().copy(
            "COPY content_signal (content_id, signal_type, signal_val) FROM STDIN"
        ) as cp:
            for i, value in enumerate(stored):
                cp.write_row((i + 1, "pdq", value))
        conn.execute("SELECT setval('bank_content_id_seq', %s)", (len(stored),))
    print(
        f"HMA: loaded {len(stored):,} hashes in {time.perf_counter() - started:.0f} s", flush=True
    )
    started = time.perf_counter()
    subprocess.run([*flask, "build_indices"], env=env, check=True, capture_output=True)
    print(f"HMA: index built in {time.perf_counter() - started:.0f} s", flush=True)
    return env, name


def hma_runs(
    venv: Path,
    env: dict[str, str],
    stored: list[str],
    queries: list[str],
    threads: list[int],
    workers: list[int],
    work: Path,
    requests: list[str],
) -> list[Run]:
    def raw(conn: http.client.HTTPConnection, q: str) -> frozenset[str]:
        path = f"/m/raw_lookup?signal_type=pdq&signal={q}&include_distance=true"
        answer = _get_json(conn, "GET", path)
        assert isinstance(answer, dict)
        return frozenset(stored[int(m["bank_content_id"]) - 1] for m in answer["matches"])

    def with_banks(conn: http.client.HTTPConnection, q: str) -> frozenset[str]:
        answer = _get_json(conn, "GET", f"/m/lookup?signal_type=pdq&signal={q}")
        assert isinstance(answer, dict)
        return frozenset(
            stored[int(m["bank_content_id"]) - 1]
            for matches in answer.values()
            if isinstance(matches, list)
            for m in matches
        )

    runs = []
    for n in workers:
        port = free_port()
        cmd = [
            str(venv / "bin" / "gunicorn"),
            "-w",
            str(n),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "600",
            "OpenMediaMatch.app:create_app()",
        ]
        log = (work / f"hma-{n}.log").open("wb")
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        try:
            ready = _wait_ready(port, n, proc)
            ready_s = time.perf_counter() - started
            kinds = {"raw_lookup": ("/m/raw_lookup", raw), "lookup": ("/m/lookup", with_banks)}
            for label, ask in (kinds[r] for r in requests):
                for t in threads:
                    runs.append(measure("HMA", n, t, label, proc.pid, port, ask, queries, ready_s))
            del ready
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            log.close()
    return runs


def _wait_ready(port: int, workers: int, proc: subprocess.Popen[bytes]) -> bool:
    """Until ``/status`` says the index is loaded in every worker (asked repeatedly: each
    connection may reach another worker), at most 20 minutes."""
    deadline = time.monotonic() + 1200
    good = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("HMA exited before it was ready (see its log)")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/status")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        good = good + 1 if ok else 0
        if good >= 4 * workers:
            return True
        time.sleep(0.25 if ok else 1.0)
    raise SystemExit("HMA did not load its index in 20 minutes")


# -- report -------------------------------------------------------------------------------


def _pcts(latencies: list[float]) -> tuple[float, float]:
    a = np.asarray(latencies)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _row(r: Run) -> str:
    return (
        f"| {r.server} | {r.workers} | {r.threads} | {r.request} | {r.lookups_s:,.0f} | "
        f"{r.p50:.1f} | "
        f"{r.p99:.1f} | {r.cpu_ms:.2f} | {r.rss_mib:,.0f} | {r.pss_mib:,.0f} | {r.ready_s:.1f} |"
    )


def report(runs: list[Run], queries: list[str], entries: int) -> None:
    print(
        f"\n{entries:,} PDQ hashes, {len(queries):,} queries (half near stored hashes), "
        "client threads on keep-alive loopback connections\n"
    )
    print(
        "| server | workers | client threads | request | lookups/s | p50 ms | p99 ms "
        "| server CPU ms/lookup | RSS MiB | PSS MiB | ready s |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        print(_row(r))
    base = runs[0]
    for r in runs[1:]:
        differ = sum(a != b for a, b in zip(base.answers, r.answers, strict=True))
        print(
            f"answers of {r.server} {r.workers}w {r.threads}t {r.request} differ from "
            f"{base.server} {base.workers}w {base.threads}t on "
            f"{differ} of {len(queries):,} queries"
        )
    matched = sum(bool(a) for a in base.answers)
    print(f"hashwatch matched {matched:,} queries")
    hw = {(r.workers, r.threads): r for r in runs if r.server == "hashwatch"}
    for r in runs:
        if r.server == "HMA" and (r.workers, r.threads) in hw:
            mine = hw[r.workers, r.threads]
            print(
                f"{r.workers} worker(s), {r.threads} client thread(s): hashwatch / HMA "
                f"{r.request}: lookups/s "
                f"{mine.lookups_s / r.lookups_s:.2f}x, p99 {mine.p99 / r.p99:.2f}x, "
                f"server CPU a lookup {mine.cpu_ms / r.cpu_ms:.2f}x, "
                f"PSS {mine.pss_mib / r.pss_mib:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hma-src", type=Path, help="ThreatExchange checkout (HMA's source)")
    parser.add_argument("--hma-venv", type=Path, default=Path("/tmp/hma-venv"))
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[4], help="client threads; each level in turn"
    )
    parser.add_argument(
        "--hma-requests",
        nargs="+",
        choices=["raw_lookup", "lookup"],
        default=["raw_lookup", "lookup"],
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--hashwatch-dir", type=Path, help="keep (and reuse) hashwatch's database here"
    )
    args = parser.parse_args()
    stored = make_hashes(args.entries)
    queries = make_queries(stored, args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = args.hashwatch_dir or work / "hashwatch"
        url, token, by_entry = hashwatch_setup(base, stored)
        runs = hashwatch_runs(base, url, token, by_entry, queries, args.threads, args.workers)
        if args.hma_src is not None:
            import psycopg

            hma = hma_install(args.hma_src, args.hma_venv)
            env, name = hma_setup(hma, args.hma_venv, args.pg_admin, stored, work)
            try:
                runs += hma_runs(
                    args.hma_venv,
                    env,
                    stored,
                    queries,
                    args.threads,
                    args.workers,
                    work,
                    args.hma_requests,
                )
            finally:
                with psycopg.connect(args.pg_admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report(runs, queries, args.entries)


if __name__ == "__main__":
    main()
