"""Rows from PostgreSQL into a write-only XLSX workbook, in bounded memory (R-REP-2).

Design: docs/design/reports-and-exports.md#exports-writer.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection
from openpyxl.cell import WriteOnlyCell

from core.spreadsheets import MONEY_FORMAT, NEEDS_CARE, add_sheet, new_workbook, safe_text
from exports.columns import DATETIME, MONEY, TEXT, Column

ROWS_PER_SHEET = 1_000_000  # Excel's limit is 1,048,576 rows per sheet
FETCH_ROWS = 5_000
PROGRESS_EVERY_SECONDS = 1.0


def reader_connection() -> psycopg.Connection:
    """A separate connection to the same database as Django's (tests included)."""
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return psycopg.connect(**params)


def stream_rows(sql: str, params: Sequence[Any], *, on_count: Callable[[int], None] | None = None,
                fetch: int | None = None) -> Iterator[list[tuple]]:
    """Blocks of rows of ``sql`` read through a named cursor; ``on_count`` gets the row count first."""
    fetch = fetch or FETCH_ROWS
    with reader_connection() as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if on_count is not None:
            counted = conn.execute(f"SELECT count(*) FROM ({sql}) AS export_rows", params).fetchone()
            assert counted is not None  # count(*) always gives a row
            on_count(counted[0])
        with conn.cursor(name="export_rows") as cursor:
            cursor.itersize = fetch
            cursor.execute(sql, params)
            while True:
                block = cursor.fetchmany(fetch)
                if not block:
                    break
                yield block
        conn.rollback()


def _kind(column: Column) -> str:
    """The width hint of a column (core.spreadsheets.KIND_WIDTHS) from its type and key."""
    if column.type == MONEY:
        return "money"
    if column.type == DATETIME:
        return "date"
    if column.type != TEXT:
        return "number"
    return "code" if column.key.endswith(("code", "_id")) else "text"


class SheetWriter:
    """Appends rows to a write-only workbook, a new sheet (with its header) every ``ROWS_PER_SHEET`` rows."""

    def __init__(self, *, columns: list[Column], title: str, header: list[str],
                 rows_per_sheet: int | None = None) -> None:
        self.workbook = new_workbook(streaming=True)
        self.columns, self.title, self.header = columns, title[:25], header
        self.rows_per_sheet = rows_per_sheet or ROWS_PER_SHEET
        self.sheet: Any = None
        self.sheets = 0
        self.in_sheet = 0
        self.rows = 0
        self.text_idx = [i for i, c in enumerate(columns) if c.type == TEXT]
        self.money_idx = [i for i, c in enumerate(columns) if c.type == MONEY]
        self._money_cells: list[WriteOnlyCell] = []
        self.kinds = [_kind(c) for c in columns]

    def _new_sheet(self) -> None:
        self.sheets += 1
        title = self.title if self.sheets == 1 else f"{self.title} {self.sheets}"
        self.sheet = add_sheet(self.workbook, title, self.header, self.kinds)
        self.in_sheet = 0
        # One styled cell per amount column, reused: write-only rows are serialised as soon as they are appended.
        self._money_cells = [WriteOnlyCell(self.sheet) for _ in self.money_idx]
        for cell in self._money_cells:
            cell.number_format = MONEY_FORMAT

    def write_block(self, block: list[tuple]) -> None:
        text_idx, money_idx, care = self.text_idx, self.money_idx, NEEDS_CARE.search
        for row in block:
            if self.sheet is None or self.in_sheet >= self.rows_per_sheet:
                self._new_sheet()
            out = list(row)
            for i in text_idx:
                value = out[i]
                if value and care(value):
                    out[i] = safe_text(value)
            for n, i in enumerate(money_idx):
                value = out[i]
                if value is not None:
                    cell = self._money_cells[n]
                    cell.value = value
                    out[i] = cell
            self.sheet.append(out)
            self.in_sheet += 1
        self.rows += len(block)

    def save(self, path: Path | str) -> None:
        if self.sheet is None:
            self._new_sheet()
        self.workbook.save(str(path))


def write_xlsx(*, sql: str, params: Sequence[Any], columns: list[Column], title: str, header: list[str],
               path: Path | str, on_count: Callable[[int], None] | None = None,
               on_progress: Callable[[int], None] | None = None, rows_per_sheet: int | None = None) -> int:
    """Write the rows of ``sql`` to ``path``; ``on_progress(rows_done)`` about once a second. Returns the row count."""
    writer = SheetWriter(columns=columns, title=title, header=header, rows_per_sheet=rows_per_sheet)
    last = time.monotonic()
    for block in stream_rows(sql, params, on_count=on_count):
        writer.write_block(block)
        if on_progress is not None and time.monotonic() - last >= PROGRESS_EVERY_SECONDS:
            on_progress(writer.rows)
            last = time.monotonic()
    writer.save(path)
    return writer.rows
