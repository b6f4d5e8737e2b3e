"""Reading transaction exports into DuckDB: mapping, parsing, conversion, bad rows.

Every input is read through DuckDB (``read_csv`` with every column as text, ``read_parquet``)
into one table ``tx`` of canonical columns, in bounded memory: ``memory_limit`` and
``temp_directory`` let DuckDB spill to disk. Only mapped columns are selected, so a data set's
label columns are never read. A row that does not parse (empty sender or receiver, an amount
that is no number, a time that cannot be read, a currency without a rate) goes to ``bad`` with
its line; a CSV row DuckDB itself rejects (wrong number of fields) is counted the same way.
The sender's local hour is computed here, once, so the rules need no time-zone functions.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hashwatch.errors import PaymentsInputError
from hashwatch.payments.config import EngineSettings, PaymentsConfig
from hashwatch.payments.countries import COUNTRY_KEYS, CURRENCY_NAMES
from hashwatch.payments.model import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, BadRow, InputSummary

if TYPE_CHECKING:
    import duckdb

__all__ = ["IngestResult", "connect", "ingest_file", "sha256_file"]

BAD_ROW_SAMPLES = 20

TX_SCHEMA = """
CREATE TABLE tx (
    tx_id VARCHAR, sender VARCHAR, receiver VARCHAR, amount DOUBLE, currency VARCHAR,
    amount_eur DOUBLE, ts TIMESTAMP, epoch_s DOUBLE, local_hour INTEGER,
    sender_country VARCHAR, receiver_country VARCHAR, channel VARCHAR, note VARCHAR,
    sender_device VARCHAR, sender_ip VARCHAR, receiver_account_ref VARCHAR, file_idx INTEGER
)
"""


@dataclass(frozen=True, slots=True)
class IngestResult:
    summary: InputSummary
    bad_samples: tuple[BadRow, ...]
    unknown_countries: dict[str, int]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(
    engine: EngineSettings, work_dir: Path, config: PaymentsConfig, rates: dict[str, float]
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB bounded by ``memory_limit``, spilling to ``temp_directory``."""
    import duckdb

    con = duckdb.connect(":memory:")
    temp = Path(engine.temp_directory) if engine.temp_directory else work_dir / "duckdb-spill"
    temp.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = {_literal(engine.memory_limit)}")
    con.execute(f"SET temp_directory = {_literal(str(temp))}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    if engine.threads:
        con.execute(f"SET threads = {int(engine.threads)}")
    con.execute(TX_SCHEMA)
    con.execute("CREATE TABLE bad (file_idx INTEGER, rn BIGINT, reason VARCHAR)")
    _table(con, "country_keys", "k VARCHAR, code VARCHAR", list(COUNTRY_KEYS.items()))
    _table(con, "currency_names", "k VARCHAR, code VARCHAR", list(CURRENCY_NAMES.items()))
    _table(
        con,
        "rates",
        "currency VARCHAR, rate DOUBLE",
        [(k.upper(), repr(float(v))) for k, v in rates.items()],
        numeric=True,
    )
    valid = {row[0] for row in con.execute("SELECT name FROM pg_timezone_names()").fetchall()}
    con.execute("CREATE TABLE valid_zones AS SELECT name AS tz FROM pg_timezone_names()")
    zones = [(code, tz) for code, tz in config.country_zones.items() if tz in valid]
    _table(con, "zones", "code VARCHAR, tz VARCHAR", zones)
    return con


def _table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: str,
    rows: list[tuple[str, str]],
    numeric: bool = False,
) -> None:
    """A small lookup table in one statement (``executemany`` costs a round trip a row)."""
    con.execute(f"CREATE TABLE {name} ({columns})")
    if rows:
        second = (lambda v: v) if numeric else _literal
        values = ", ".join(f"({_literal(a)}, {second(b)})" for a, b in rows)
        con.execute(f"INSERT INTO {name} VALUES {values}")


def _csv_header(path: Path) -> list[str]:
    """The header as pandas names repeated columns (``Account``, ``Account.1``), which is how
    IBM AML-Data's users know its receiver column."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    seen: dict[str, int] = {}
    names: list[str] = []
    for name in header:
        if name in seen:
            seen[name] += 1
            names.append(f"{name}.{seen[name]}")
        else:
            seen[name] = 0
            names.append(name)
    return names


def _source(path: Path, idx: int) -> tuple[str, list[str], Literal["csv", "parquet"]]:
    literal = _literal(str(path))
    if path.suffix.lower() in (".parquet", ".pq"):
        return f"read_parquet({literal}, file_row_number = true)", [], "parquet"
    names = _csv_header(path)
    if not names:
        raise PaymentsInputError("the file is empty (no header row)", path=str(path))
    listed = ", ".join(_literal(n) for n in names)
    return (
        f"read_csv({literal}, header = true, names = [{listed}], all_varchar = true, "
        f"store_rejects = true, rejects_table = 'rejects_{idx}', rejects_scan = 'scans_{idx}')",
        names,
        "csv",
    )


def _expressions(config: PaymentsConfig, present: set[str], path: Path) -> dict[str, str]:
    mapping = config.mapping
    exprs: dict[str, str] = {}
    for canonical in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
        column = mapping.source(canonical)
        explicit = canonical in mapping.columns
        if column in present:
            exprs[canonical] = f"NULLIF(TRIM(CAST({_quote(column)} AS VARCHAR)), '')"
        elif explicit or canonical in REQUIRED_COLUMNS:
            raise PaymentsInputError(
                f"no column {column!r} for {canonical} (the file has: "
                f"{', '.join(sorted(present))})",
                path=str(path),
                column=column,
            )
        else:
            exprs[canonical] = "CAST(NULL AS VARCHAR)"
    return exprs


def _time_sql(config: PaymentsConfig) -> str:
    """SQL giving ``ts_utc`` (TIMESTAMPTZ) from the text columns ``ts_text`` and ``tz``."""
    mapping = config.mapping
    if mapping.ts_unit == "hours":
        naive = (
            f"(TIMESTAMP {_literal(mapping.ts_origin)} + "
            "TRY_CAST(TRY_CAST(ts_text AS DOUBLE) * 3600 AS BIGINT) * INTERVAL 1 SECOND)"
        )
        zoned = "CAST(NULL AS TIMESTAMPTZ)"
    elif mapping.ts_format:
        if "%z" in mapping.ts_format or "%Z" in mapping.ts_format:
            zoned = f"CAST(try_strptime(ts_text, {_literal(mapping.ts_format)}) AS TIMESTAMPTZ)"
            naive = "CAST(NULL AS TIMESTAMP)"
        else:
            naive = f"CAST(try_strptime(ts_text, {_literal(mapping.ts_format)}) AS TIMESTAMP)"
            zoned = "CAST(NULL AS TIMESTAMPTZ)"
    else:
        has_zone = "regexp_matches(ts_text, '(Z|[+-][0-9][0-9]:?[0-9][0-9])$')"
        zoned = f"CASE WHEN {has_zone} THEN TRY_CAST(ts_text AS TIMESTAMPTZ) END"
        naive = f"CASE WHEN NOT {has_zone} THEN TRY_CAST(ts_text AS TIMESTAMP) END"
    local = mapping.naive_timestamps == "sender_local"
    from_naive = (
        f"CASE WHEN tz IS NOT NULL THEN timezone(tz, {naive}) ELSE timezone('UTC', {naive}) END"
        if local
        else f"timezone('UTC', {naive})"
    )
    return f"COALESCE({zoned}, {from_naive})"


def ingest_file(
    con: duckdb.DuckDBPyConnection, path: Path, idx: int, config: PaymentsConfig
) -> IngestResult:
    """Read one file into ``tx`` and ``bad``; refuse a file that does not fit the mapping."""
    if not path.is_file():
        raise PaymentsInputError("no such file", path=str(path))
    source, _, fmt = _source(path, idx)
    try:
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    except Exception as exc:  # duckdb.Error: the file is not a table DuckDB can read
        raise PaymentsInputError(f"cannot be read as {fmt}: {exc}", path=str(path)) from exc
    exprs = _expressions(config, present, path)
    rn = "file_row_number + 1" if fmt == "parquet" else "row_number() OVER ()"
    ts_time = exprs["ts_time"]
    ts_text = (
        f"CASE WHEN {ts_time} IS NULL THEN {exprs['ts']} ELSE {exprs['ts']} || ' ' || {ts_time} END"
    )
    default_currency = _literal(config.mapping.default_currency)
    stem = _literal(path.stem)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE stage AS
        WITH raw AS (
            SELECT {rn} AS rn, {", ".join(f"{e} AS {c}_raw" for c, e in exprs.items())},
                   {ts_text} AS ts_text
            FROM {source}
        ), named AS (
            SELECT raw.*,
                   COALESCE(ck_s.code, sender_country_raw) AS s_country,
                   COALESCE(ck_r.code, receiver_country_raw) AS r_country,
                   ck_s.code IS NULL AND sender_country_raw IS NOT NULL AS s_unknown,
                   ck_r.code IS NULL AND receiver_country_raw IS NOT NULL AS r_unknown,
                   COALESCE(cn.code, UPPER(COALESCE(currency_raw, {default_currency}))) AS cur,
                   COALESCE(vz.tz, zones.tz) AS tz
            FROM raw
            LEFT JOIN country_keys ck_s ON ck_s.k = UPPER(sender_country_raw)
            LEFT JOIN country_keys ck_r ON ck_r.k = UPPER(receiver_country_raw)
            LEFT JOIN currency_names cn ON cn.k = UPPER(currency_raw)
            LEFT JOIN valid_zones vz ON vz.tz = sender_tz_raw
            LEFT JOIN zones ON zones.code = COALESCE(ck_s.code, sender_country_raw)
        ), parsed AS (
            SELECT named.*, TRY_CAST(amount_raw AS DOUBLE) AS amt, {_time_sql(config)} AS ts_utc,
                   rates.rate AS rate
            FROM named LEFT JOIN rates ON rates.currency = named.cur
        )
        SELECT *, CASE
            WHEN sender_raw IS NULL THEN 'empty sender'
            WHEN receiver_raw IS NULL THEN 'empty receiver'
            WHEN amt IS NULL THEN 'amount is not a number: ' || COALESCE(amount_raw, '(empty)')
            WHEN amt < 0 THEN 'negative amount'
            WHEN ts_utc IS NULL THEN 'time not readable: ' || COALESCE(ts_text, '(empty)')
            WHEN rate IS NULL THEN 'no EUR rate for currency ' || cur
        END AS reason
        FROM parsed
    """)
    con.execute(f"""
        INSERT INTO tx SELECT
            COALESCE(tx_id_raw, {stem} || ':' || CAST(rn AS VARCHAR)), sender_raw, receiver_raw,
            amt, cur, amt * rate, CAST(timezone('UTC', ts_utc) AS TIMESTAMP),
            epoch(ts_utc), hour(timezone(COALESCE(tz, 'UTC'), ts_utc)),
            s_country, r_country, LOWER(channel_raw), note_raw, sender_device_raw,
            sender_ip_raw, receiver_account_ref_raw, {idx}
        FROM stage WHERE reason IS NULL
    """)
    con.execute(f"INSERT INTO bad SELECT {idx}, rn, reason FROM stage WHERE reason IS NOT NULL")
    kept = _scalar(con, "SELECT count(*) FROM stage WHERE reason IS NULL")
    typed_bad = _scalar(con, "SELECT count(*) FROM stage WHERE reason IS NOT NULL")
    unknown: dict[str, int] = {}
    for name, count in con.execute("""
        SELECT name, count(*) FROM (
            SELECT sender_country_raw AS name FROM stage WHERE s_unknown
            UNION ALL SELECT receiver_country_raw FROM stage WHERE r_unknown
        ) GROUP BY name ORDER BY 2 DESC, 1 LIMIT 50
    """).fetchall():
        unknown[str(name)] = int(count)
    samples, rejected = _bad_samples(con, path, idx, fmt)
    con.execute("DROP TABLE stage")
    summary = InputSummary(str(path), sha256_file(path), fmt, kept, typed_bad + rejected)
    return IngestResult(summary, samples, unknown)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _bad_samples(
    con: duckdb.DuckDBPyConnection, path: Path, idx: int, fmt: str
) -> tuple[tuple[BadRow, ...], int]:
    """The first bad rows with their line numbers, and how many rows DuckDB itself rejected.

    A CSV's data row ``rn`` sits on line ``rn + 1`` (the header) plus the rejected lines before
    it; only the first rejected lines are read back, so this stays bounded.
    """
    rejected: list[tuple[int, str]] = []
    count = 0
    if fmt == "csv":
        count = _scalar(con, f"SELECT count(DISTINCT line) FROM rejects_{idx}")
        rejected = [
            (int(line), f"not a valid CSV row ({error_type})")
            for line, error_type in con.execute(
                f"SELECT line, min(error_type) FROM rejects_{idx} GROUP BY line "
                "ORDER BY line LIMIT 10000"
            ).fetchall()
        ]
    typed = con.execute(
        f"SELECT rn, reason FROM bad WHERE file_idx = {idx} ORDER BY rn LIMIT {BAD_ROW_SAMPLES}"
    ).fetchall()
    rows: list[BadRow] = [BadRow(str(path), line, reason) for line, reason in rejected]
    reject_lines = sorted(line for line, _ in rejected)
    for rn, reason in typed:
        line = int(rn) + (1 if fmt == "csv" else 0)
        for reject in reject_lines:
            if reject <= line:
                line += 1
        rows.append(BadRow(str(path), line, str(reason)))
    rows.sort(key=lambda row: row.line)
    return tuple(rows[:BAD_ROW_SAMPLES]), count
