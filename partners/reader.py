"""Reading partner files as a stream of rows, with hostile input refused clearly (R-PART-1, R-PART-5).

``open_rows(path)`` yields ``Row(line, value, problem)`` for every data row, header excluded, holding one line in
memory at a time. A problem of the whole file (not UTF-8, not a real XLSX, a zip bomb, several columns in the header)
raises ``FileRejected`` with a sentence for the operator; a problem of one row (a line longer than
``MAX_LINE_BYTES``, more than one non-empty column) comes back as ``Row.problem`` so the row fails, not the upload.

CSV lines are read in binary with a bounded ``readline`` and decoded one at a time (``utf-8-sig`` semantics: a BOM
on the first line is dropped); a quoted field cannot span lines (partner codes never contain a newline).
"""
from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_LINE_BYTES = 1024
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_XLSX_RATIO = 200  # compressed → uncompressed: above this a member is treated as a bomb
HEADER_NAMES = {"partner_code", "partnercode", "partner code", "partner-code"}
BOM = b"\xef\xbb\xbf"


class FileRejected(Exception):
    """The file as a whole cannot be read; nothing of it is processed."""


@dataclass(frozen=True)
class Row:
    line: int
    value: str
    problem: str = ""  # "" or a PartnerUploadFailure.Reason value
    detail: str = ""


def detect_format(path: Path, name: str = "") -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK\x03\x04") or name.lower().endswith((".xlsx", ".xlsm")):
        return "xlsx"
    return "csv"


def _cells(values: list[str]) -> tuple[str, str, str]:
    """(value, problem, detail) of a row's cells: only the first column may hold something."""
    extra = [i + 1 for i, v in enumerate(values) if i > 0 and v.strip()]
    first = values[0] if values else ""
    if extra:
        return (",".join(values), "extra_columns",
                f"Only one column is read; column(s) {', '.join(map(str, extra))} also hold a value.")
    return first, "", ""


def _csv_lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(line number, raw bytes without the line end) — bytes None when the line is longer than MAX_LINE_BYTES."""
    with open(path, "rb") as f:
        line_no = 0
        while True:
            raw = f.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            line_no += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line without holding it
                    raw = f.readline(64 * 1024)
                yield line_no, None
                continue
            if line_no == 1 and raw.startswith(BOM):
                raw = raw[3:]
            yield line_no, raw.rstrip(b"\r\n")


def _split_csv(text: str) -> list[str]:
    if "," not in text and '"' not in text:
        return [text]
    try:
        return next(csv.reader((text,)))
    except (csv.Error, StopIteration):
        return [text]


def _is_header(value: str) -> bool:
    return value.strip().strip('"').lower() in HEADER_NAMES


def check_csv(path: Path) -> int:
    """Validate the whole file's encoding and header; the number of data rows."""
    rows = 0
    for line_no, raw in _csv_lines(path):
        if raw is None:
            rows += 1
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRejected(f"The file is not UTF-8 text (line {line_no}, byte {exc.start + 1}). Save it as "
                               "'CSV UTF-8' or as XLSX and upload it again.") from None
        if line_no == 1:
            cells = _split_csv(text)
            named = [c.strip() for c in cells if c.strip()]
            if len(named) > 1:
                raise FileRejected(f"The file has {len(named)} columns ({', '.join(n[:40] for n in named[:5])}); "
                                   "it must have exactly one: the partner code.")
            if _is_header(text):
                continue
        rows += 1
    return rows


def csv_rows(path: Path) -> Iterator[Row]:
    for line_no, raw in _csv_lines(path):
        if raw is None:
            yield Row(line_no, "", "line_too_long", f"The line is longer than {MAX_LINE_BYTES} bytes.")
            continue
        text = raw.decode("utf-8")  # checked by check_csv before any row is processed
        if line_no == 1 and _is_header(text):
            continue
        value, problem, detail = _cells(_split_csv(text))
        yield Row(line_no, value, problem, detail)


def check_xlsx_container(path: Path) -> None:
    """Refuse what is not a sound zip, or unpacks to more than MAX_XLSX_UNCOMPRESSED, before openpyxl opens it."""
    if not zipfile.is_zipfile(path):
        raise FileRejected("The file is not a valid XLSX workbook (it is not a zip archive).")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_XLSX_UNCOMPRESSED:
                raise FileRejected(f"The workbook unpacks to {total // (1024 * 1024):,} MB, more than the "
                                   f"{MAX_XLSX_UNCOMPRESSED // (1024 * 1024)} MB allowed.")
            for info in infos:
                if info.compress_size and info.file_size / info.compress_size > MAX_XLSX_RATIO \
                        and info.file_size > 10 * 1024 * 1024:
                    raise FileRejected(f"The workbook member {info.filename[:80]} is compressed "
                                       f"{info.file_size // info.compress_size}:1; it looks like a zip bomb.")
            bad = archive.testzip()
            if bad is not None:
                raise FileRejected(f"The workbook is damaged (member {bad[:80]} fails its checksum).")
            if "[Content_Types].xml" not in archive.namelist():
                raise FileRejected("The file is a zip archive but not an XLSX workbook.")
    except zipfile.BadZipFile as exc:
        raise FileRejected(f"The file is not a valid XLSX workbook ({exc}).") from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def xlsx_rows(path: Path) -> Iterator[Row]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a malformed workbook
        raise FileRejected(f"The workbook cannot be read ({type(exc).__name__}).") from None
    try:
        sheet = workbook.worksheets[0]
        for index, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            values = [_cell_text(c) for c in cells]
            while values and not values[-1].strip():
                values.pop()
            if index == 1:
                named = [v.strip() for v in values if v.strip()]
                if len(named) > 1:
                    raise FileRejected(f"The sheet has {len(named)} columns ({', '.join(n[:40] for n in named[:5])}"
                                       "); it must have exactly one: the partner code.")
                if values and _is_header(values[0]):
                    continue
            value, problem, detail = _cells(values or [""])
            if len(value) > MAX_LINE_BYTES:
                yield Row(index, value[:200], "line_too_long", f"The row is longer than {MAX_LINE_BYTES} bytes.")
                continue
            yield Row(index, value, problem, detail)
    finally:
        workbook.close()


def check_file(path: Path, fmt: str) -> int:
    """Raise FileRejected for a file that cannot be processed at all; else its number of data rows."""
    if fmt == "xlsx":
        check_xlsx_container(path)
        return sum(1 for _ in xlsx_rows(path))
    return check_csv(path)


def open_rows(path: Path, fmt: str) -> Iterator[Row]:
    return xlsx_rows(path) if fmt == "xlsx" else csv_rows(path)
