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
