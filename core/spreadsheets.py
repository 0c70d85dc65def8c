"""One sanitiser for text written to spreadsheets (XLSX/CSV exports, console downloads) — issue #17.

- Text a spreadsheet would run as a formula (starting with ``= + - @``, tab or CR) gets a leading apostrophe
  (OWASP "CSV injection").
- Characters XML 1.0 cannot carry (C0 controls other than tab, LF, CR) are replaced with U+FFFD, the replacement
  character, like django-import-export's ``IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT``: rows written before the
  identifier rule (``core.identifiers``) may still hold them, and openpyxl would refuse the whole file.
"""
from __future__ import annotations

import re
from typing import Any

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


# --- Layout of the sheets we write (issue #20) -------------------------------------------------------------------
# Every XLSX the product writes opens with its header row frozen and each column wide enough for its heading and
# its usual values. Write-only sheets stream their rows, so widths come from the heading and a hint per column
# kind, not from measuring the data; they must be set before the first row is appended.
WIDTH_MIN, WIDTH_MAX = 8, 60
KIND_WIDTHS = {"date": 20, "money": 14, "code": 18, "id": 20, "number": 10, "text": 24}


def display_width(text: Any) -> int:
    """Columns a text takes in a spreadsheet: East Asian wide characters (Hangul, CJK) count twice."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in str(text))


def column_widths(header: list[Any], kinds: list[str] | None = None) -> list[float]:
    widths = []
    for i, heading in enumerate(header):
        hint = KIND_WIDTHS.get((kinds or [])[i] if kinds and i < len(kinds) else "", 12)
        widths.append(float(max(WIDTH_MIN, min(WIDTH_MAX, max(display_width(heading) + 4, hint)))))
    return widths


def start_sheet(sheet: Any, header: list[Any], kinds: list[str] | None = None) -> None:
    """Lay out a (write-only or normal) sheet and append its header: widths, bold header, header frozen."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    for i, width in enumerate(column_widths(header, kinds), start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

    if isinstance(sheet, WriteOnlyWorksheet):
        cells = []
        for heading in header:
            cell = WriteOnlyCell(sheet, value=heading)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)
    else:
        sheet.append(list(header))
        for cell in sheet[sheet.max_row]:
            cell.font = bold


def local_stamp(when: Any, time_zone: str | None) -> str:
    """``YYYYMMDD-HHMMSS`` of ``when`` in ``time_zone`` (a tenant's): file names read in the operator's time."""
    import zoneinfo

    from django.utils import timezone

    try:
        zone = zoneinfo.ZoneInfo(time_zone) if time_zone else timezone.get_default_timezone()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = timezone.get_default_timezone()
    return f"{timezone.localtime(when, zone):%Y%m%d-%H%M%S}"
