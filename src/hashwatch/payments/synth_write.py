"""Writing the generated payments: numeric batches into DuckDB, then one sorted ``COPY … TO``.

The batches are appended to a table in a temporary DuckDB database (on disk, so memory stays
within ``memory_limit`` whatever the row count); the strings — account names, countries,
devices, notes, timestamps with the sender's UTC offset — are made by one SELECT joined with
small lookup tables, sorted by time and written as CSV or Parquet in one of three shapes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hashwatch.errors import ConfigError
from hashwatch.payments.synth_world import CHANNELS, COUNTRIES, Batch, NoteTable, World

if TYPE_CHECKING:
    import duckdb

__all__ = ["SynthWriter"]

# SAML-D writes bank locations as names, with "UK" and "USA" for two of them.
_SAML_NAMES = {"GB": "UK", "US": "USA"}
# SAML-D's payment types for hashwatch's channels (cross-border where the countries differ).
_SAML_TYPES = {
    "card": "Debit card",
    "bank_transfer": "ACH",
    "direct_debit": "ACH",
    "remittance": "Cross-border",
    "p2p": "ACH",
    "gift_card": "Credit card",
    "crypto": "ACH",
}
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class SynthWriter:
    """A temporary DuckDB database that collects batches and writes the sorted file."""

    def __init__(self, tmp: Path, memory_limit: str) -> None:
        import duckdb

        if not _MEMORY.match(memory_limit):
            raise ConfigError(f"memory limit {memory_limit!r}: expected e.g. 1GB or 512MB")
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(str(tmp / "synth.duckdb"))
        self.con.execute(f"SET memory_limit = {_quote(memory_limit)}")
        self.con.execute(f"SET temp_directory = {_quote(str(tmp / 'spill'))}")
        self.con.execute(
            "CREATE TABLE tx (seq BIGINT, ts BIGINT, off INTEGER, sender INTEGER, "
            "receiver INTEGER, amount BIGINT, channel TINYINT, note INTEGER, label TINYINT)"
        )
        self.rows = 0

    def append(self, batch: Batch) -> None:
        n = len(batch)
        chunk = {
            "seq": np.arange(self.rows, self.rows + n, dtype=np.int64),
            "ts": batch.ts,
            "off": batch.offset.astype(np.int32),
            "sender": batch.sender.astype(np.int32),
            "receiver": batch.receiver.astype(np.int32),
            "amount": batch.amount,
            "channel": batch.channel.astype(np.int8),
            "note": batch.note.astype(np.int32),
            "label": batch.label.astype(np.int8),
        }
        self.con.register("chunk", chunk)
        self.con.execute("INSERT INTO tx SELECT * FROM chunk")
        self.con.unregister("chunk")
        self.rows += n

    def lookups(self, world: World, notes: NoteTable, label_names: dict[int, str]) -> None:
        """The small tables the final SELECT joins: accounts, countries, channels, notes."""
        acc = world.accounts
        width = max(6, len(str(world.n - 1)))
        accounts = {
            "idx": np.arange(world.n, dtype=np.int64),
            "country": acc.country,
            "device": acc.device,
            "ip": acc.ip,
            "wallet": acc.wallet,
        }
        self._countries()
        self.con.register("acc_in", accounts)
        # Multiplying by an odd constant modulo 2**32 is a bijection: distinct ids stay distinct
        # and look unordered.
        self.con.execute(
            f"""CREATE TABLE accounts AS SELECT a.idx,
                'ACC-' || lpad(CAST(a.idx AS VARCHAR), {width}, '0') AS name,
                c.code AS country, c.saml AS location, c.currency,
                printf('DEV-%08X', (a.device * 2654435761) % 4294967296) AS device,
                printf('10.%d.%d.%d', (a.ip // 65536) % 256, (a.ip // 256) % 256, a.ip % 256)
                    AS ip,
                printf('WAL-%08X', (a.wallet * 2246822519) % 4294967296) AS wallet
            FROM acc_in a JOIN countries c ON c.idx = a.country"""
        )
        self.con.unregister("acc_in")
        self.con.execute("CREATE TABLE channels (code TINYINT, name VARCHAR, saml VARCHAR)")
        self.con.executemany(
            "INSERT INTO channels VALUES (?, ?, ?)",
            [(i, name, _SAML_TYPES[name]) for i, name in enumerate(CHANNELS)],
        )
        self.con.execute("CREATE TABLE notes (code INTEGER, text VARCHAR)")
        self.con.executemany("INSERT INTO notes VALUES (?, ?)", list(enumerate(notes.texts)))
        self.con.execute("CREATE TABLE typologies (code TINYINT, name VARCHAR)")
        self.con.executemany("INSERT INTO typologies VALUES (?, ?)", sorted(label_names.items()))

    def _countries(self) -> None:
        self.con.execute(
            "CREATE TABLE countries (idx INTEGER, code VARCHAR, saml VARCHAR, currency VARCHAR)"
        )
        self.con.executemany(
            "INSERT INTO countries VALUES (?, ?, ?, ?)",
            [
                (i, c.code, _SAML_NAMES.get(c.code, c.name), c.currency)
                for i, c in enumerate(COUNTRIES)
            ],
        )

    def _select(self, schema: str) -> str:
        width = max(8, len(str(self.rows)))
        local = "make_timestamp((t.ts + t.off * 60) * 1000000)"
        offset = (
            "CASE WHEN t.off < 0 THEN '-' ELSE '+' END"
            " || lpad(CAST(abs(t.off) // 60 AS VARCHAR), 2, '0') || ':'"
            " || lpad(CAST(abs(t.off) % 60 AS VARCHAR), 2, '0')"
        )
        joins = (
            "FROM tx t JOIN accounts s ON s.idx = t.sender JOIN accounts r ON r.idx = t.receiver"
            " JOIN channels ch ON ch.code = t.channel JOIN notes n ON n.code = t.note"
            " LEFT JOIN typologies ty ON ty.code = t.label"
        )
        order = "ORDER BY t.ts, t.seq"
        if schema == "native":
            return f"""SELECT
                'TX-' || lpad(CAST(row_number() OVER ({order}) AS VARCHAR), {width}, '0')
                    AS tx_id,
                strftime({local}, '%Y-%m-%dT%H:%M:%S') || {offset} AS ts,
                s.name AS sender, r.name AS receiver,
                CAST(t.amount / 100.0 AS DECIMAL(18, 2)) AS amount, s.currency,
                s.country AS sender_country, r.country AS receiver_country,
                ch.name AS channel, n.text AS note, s.device AS sender_device,
                s.ip AS sender_ip, r.wallet AS receiver_account_ref
                {joins} {order}"""
        if schema == "amlsim":
            # AMLSim: one currency, UTC times, a transaction type, and its label columns.
            return f"""SELECT row_number() OVER ({order}) AS tran_id,
                s.name AS orig_acct, r.name AS bene_acct, 'TRANSFER' AS tx_type,
                CAST(t.amount / 100.0 * rates.rate AS DECIMAL(18, 2)) AS base_amt,
                strftime(make_timestamp(t.ts * 1000000), '%Y-%m-%dT%H:%M:%SZ')
                    AS tran_timestamp,
                CASE WHEN t.label > 0 THEN 'True' ELSE 'False' END AS is_sar,
                CASE WHEN t.label > 0 THEN t.label ELSE -1 END AS alert_id
                {joins} JOIN rates ON rates.currency = s.currency {order}"""
        # SAML-D: date and time apart (the sender's clock), locations as names, its labels.
        return f"""SELECT strftime({local}, '%H:%M:%S') AS "Time",
                strftime({local}, '%Y-%m-%d') AS "Date",
                s.name AS "Sender_account", r.name AS "Receiver_account",
                CAST(t.amount / 100.0 AS DECIMAL(18, 2)) AS "Amount",
                s.currency AS "Payment_currency", r.currency AS "Received_currency",
                s.location AS "Sender_bank_location", r.location AS "Receiver_bank_location",
                CASE WHEN ch.saml = 'ACH' AND s.country <> r.country THEN 'Cross-border'
                     ELSE ch.saml END AS "Payment_type",
                CASE WHEN t.label > 0 THEN 1 ELSE 0 END AS "Is_laundering",
                coalesce(ty.name, 'Normal') AS "Laundering_type"
                {joins} {order}"""

    def write(self, path: Path, schema: str, fmt: str, rates: dict[str, float]) -> None:
        self.con.execute("CREATE OR REPLACE TABLE rates (currency VARCHAR, rate DOUBLE)")
        self.con.executemany("INSERT INTO rates VALUES (?, ?)", sorted(rates.items()))
        options = "FORMAT parquet" if fmt == "parquet" else "HEADER, DELIMITER ','"
        self.con.execute(f"COPY ({self._select(schema)}) TO {_quote(str(path))} ({options})")

    def close(self) -> None:
        self.con.close()
