"""The one spreadsheet writer of the product: every XLSX/CSV it hands out goes through here (issues #17, #20, #22).

Invariant: ``safe_text`` / ``safe_cell`` is the only sanitiser.
Design: docs/design/reports-and-exports.md#core-spreadsheets.
"""
from __future__ import annotations

import io
import re
import tempfile
import unicodedata
import zoneinfo
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from babel.numbers import get_currency_precision, get_currency_symbol
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# --- Sanitiser ------------------------------------------------------------------------------------------------------
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# One search per text cell finds both a dangerous first character and any character XML 1.0 cannot hold.
NEEDS_CARE = re.compile(r"^[=+\-@\t\r]|[\x00-\x08\x0b\x0c\x0e-\x1f]")


def safe_text(value: str) -> str:
    value = ILLEGAL.sub("\ufffd", value)
    if value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_cell(value: Any) -> Any:
    """``safe_text`` for text; other values (numbers, dates) unchanged."""
    return safe_text(value) if isinstance(value, str) else value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]


# --- Number formats ---------------------------------------------------------------------------------------------------
COUNT_FORMAT = "#,##0"
MONEY_FORMAT = "#,##0"  # integer amounts in minor units (KRW has none), thousands separated
PERCENT_FORMAT = "0.0%"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def money_format(currency: str) -> str:
    """Excel number format for integer minor units of ``currency``: KRW → ``"₩"#,##0``; USD → ``"$"#,##0.00``."""
    digits = get_currency_precision(currency)
    symbol = get_currency_symbol(currency, locale="ko_KR" if currency == "KRW" else "en_US")
    return f'"{symbol}"#,##0' + ("." + "0" * digits if digits else "")


# --- Layout of the sheets we write (issue #20) -------------------------------------------------------------------
# Every XLSX the product writes opens with its header row frozen and each column wide enough for its heading and
# its usual values. Write-only sheets stream their rows, so widths come from the heading and a hint per column
# kind, not from measuring the data; they must be set before the first row is appended.
WIDTH_MIN, WIDTH_MAX = 8, 60
KIND_WIDTHS = {"date": 20, "money": 14, "code": 18, "id": 20, "number": 10, "text": 24}
BOLD = Font(bold=True)


def display_width(text: Any) -> int:
    """Columns a text takes in a spreadsheet: East Asian wide characters (Hangul, CJK) count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in str(text))


def column_widths(header: list[Any], kinds: list[str] | None = None) -> list[float]:
    widths = []
    for i, heading in enumerate(header):
        hint = KIND_WIDTHS.get((kinds or [])[i] if kinds and i < len(kinds) else "", 12)
        widths.append(float(max(WIDTH_MIN, min(WIDTH_MAX, max(display_width(heading) + 4, hint)))))
    return widths


def _size_columns(sheet: Any, header: list[Any], kinds: list[str] | None) -> None:
    for i, width in enumerate(column_widths(header, kinds), start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width


def new_workbook(*, streaming: bool = True) -> Workbook:
    """A write-only workbook (rows go to disk as they are appended; no default sheet) or, for a report with charts
    that reference its cells, a normal one (its first sheet is ``workbook.active``)."""
    return Workbook(write_only=streaming)


def start_sheet(sheet: Any, header: list[Any], kinds: list[str] | None = None) -> None:
    """Lay out a (write-only or normal) sheet and append its header: widths, bold header, header frozen."""
    _size_columns(sheet, header, kinds)
    sheet.freeze_panes = "A2"
    if isinstance(sheet, WriteOnlyWorksheet):
        cells = []
        for heading in header:
            cell = WriteOnlyCell(sheet, value=heading)
            cell.font = BOLD
            cells.append(cell)
        sheet.append(cells)
    else:
        sheet.append(list(header))
        bold_row(sheet, sheet.max_row)


def add_sheet(workbook: Workbook, title: str, header: list[Any], kinds: list[str] | None = None) -> Any:
    """A new sheet titled ``title`` (Excel allows 31 characters), laid out by ``start_sheet``."""
    sheet = workbook.create_sheet(title=str(title)[:31])
    start_sheet(sheet, header, kinds)
    return sheet


def append_row(sheet: Any, values: Sequence[Any], formats: Sequence[str | None] | None = None) -> None:
    """Append one row, every cell through the sanitiser; ``formats[i]`` (a number format) styles a non-empty cell."""
    row = safe_row(values)
    if not formats:
        sheet.append(row)
        return
    if isinstance(sheet, WriteOnlyWorksheet):
        for i, fmt in enumerate(formats):
            if fmt and i < len(row) and row[i] is not None:
                cell = WriteOnlyCell(sheet, value=row[i])
                cell.number_format = fmt
                row[i] = cell
        sheet.append(row)
        return
    sheet.append(row)
    # sheet[n] spans the sheet's max_column, which may be wider than this table: extra cells get no format.
    for cell, fmt in zip(sheet[sheet.max_row], formats, strict=False):
        if fmt and cell.value is not None:
            cell.number_format = fmt


def bold_row(sheet: Any, row: int = 1) -> None:
    for cell in sheet[row]:
        cell.font = BOLD


def lay_out(sheet: Any, kinds: list[str] | None = None) -> None:
    """``start_sheet``'s layout for a normal sheet whose first row, the header, is already written."""
    header = [c.value for c in sheet[1]] if sheet.max_row >= 1 else []
    _size_columns(sheet, header, kinds)
    bold_row(sheet, 1)
    sheet.freeze_panes = "A2"


def _content_width(value: Any) -> int:
    text = f"{value:,}" if isinstance(value, int) else str(value if value is not None else "")
    # East Asian characters take two columns in Excel's default font.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def fit_columns(sheet: Any, minimum: int = 8) -> None:
    """Size a normal (small) sheet's columns to their content, at most ``WIDTH_MAX``."""
    widths: dict[int, int] = {}
    for row in sheet.iter_rows():
        for cell in row:
            widths[cell.column] = max(widths.get(cell.column, minimum), _content_width(cell.value) + 2)
    for column, width in widths.items():
        sheet.column_dimensions[get_column_letter(column)].width = min(width, WIDTH_MAX)


def workbook_bytes(workbook: Workbook) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def save_workbook(workbook: Workbook, *, directory: Path, prefix: str) -> Path:
    """Save to a new file ``<prefix>…xlsx`` in ``directory`` (created if needed); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(prefix=prefix, suffix=".xlsx", dir=directory, delete=False)
    handle.close()
    workbook.save(handle.name)
    return Path(handle.name)


def local_stamp(when: Any, time_zone: str | None) -> str:
    """``YYYYMMDD-HHMMSS`` of ``when`` in ``time_zone`` (a tenant's): file names read in the operator's time."""
    try:
        zone = zoneinfo.ZoneInfo(time_zone) if time_zone else timezone.get_default_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = timezone.get_default_timezone()
    return f"{timezone.localtime(when, zone):%Y%m%d-%H%M%S}"
