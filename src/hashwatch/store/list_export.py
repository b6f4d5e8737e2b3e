"""Reading a list out: its entries as records, and export to a file (see :mod:`.lists`).

Hash lists are sensitive: an export writes an audit record (who, which list, format, how
many entries) once the file is complete, whether the CLI, the library or the HTTP API asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from hashwatch import __version__
from hashwatch.lists.formats import write_list
from hashwatch.lists.model import CategoryScheme, EntryRecord, ListHeader, ListKind
from hashwatch.store.audit import record_audit
from hashwatch.store.database import Database
from hashwatch.store.list_import import entry_records
from hashwatch.store.list_status import list_row

__all__ = ["ListExportMixin"]


class ListExportMixin:
    """The reading methods of :class:`~hashwatch.store.lists.ListStore`."""

    db: Database

    def records(self, name: str, *, include_inactive: bool = False) -> Iterator[EntryRecord]:
        """Stream the list's entries as records (for export), in entry order."""
        with self.db.read() as conn:
            row = list_row(conn, name)
            yield from entry_records(conn, row.id, include_inactive=include_inactive)

    def export(
        self,
        name: str,
        out: str | Path | BinaryIO,
        fmt: str = "vics2",
        *,
        include_inactive: bool = False,
        actor: str | None = None,
    ) -> int:
        """Write the list to ``out`` in ``fmt``; returns the number of entries written."""
        with self.db.read() as conn:
            row = list_row(conn, name)
        header = ListHeader(
            format=fmt,
            scheme=CategoryScheme(row.scheme),
            suggested_kind=ListKind(row.kind),
            metadata={
                "CaseNumber": f"{row.name} version {row.version}",
                "ContactOrganization": row.source_org,
                "SourceApplicationName": "hashwatch",
                "SourceApplicationVersion": __version__,
            },
        )
        count = 0

        def counted() -> Iterator[EntryRecord]:
            nonlocal count
            for record in self.records(name, include_inactive=include_inactive):
                count += 1
                yield record

        write_list(out, fmt, header, counted())
        with self.db.begin() as conn:
            record_audit(
                conn,
                actor=actor,
                action="list.exported",
                target=name,
                details={
                    "format": fmt,
                    "entries": count,
                    "version": int(row.version),
                    "include_inactive": include_inactive,
                },
            )
        return count
