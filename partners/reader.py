"""Reading partner files as a stream of rows, with hostile input refused clearly (R-PART-1, R-PART-5).

``open_rows(path)`` yields ``Row(line, value, problem)`` for every data row, header excluded, holding one line in
memory at a time. A problem of the whole file (not UTF-8, not a real XLSX, a zip bomb, several columns in the header)
raises ``FileRejected`` with a sentence for the operator; a problem of one row (a line longer than
``MAX_LINE_BYTES``, more than one non-empty column) comes back as ``Row.problem`` so the row fails, not the upload.

CSV lines are read in binary with a bounded ``readline`` and decoded one at a time (``utf-8-sig`` semantics: a BOM
on the first line is dropped); a quoted field cannot span lines (partner codes never contain a newline).
"""
from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.utils.translation import gettext as _
from openpyxl import load_workbook

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
                _("Only one column is read; column(s) %(columns)s also hold a value.")
                % {"columns": ", ".join(map(str, extra))})
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
    """Validate the whole file's encoding and header; the number of data rows (as ``csv_rows`` will yield them).

    One pass in 1 MB blocks through an incremental UTF-8 decoder and ``bytes.count`` — C speed, bounded memory —
    so a file is refused as a whole before any row of it is mapped (a bad byte on line 900,000 changes nothing)."""
    with open(path, "rb") as f:
        first = f.readline(MAX_LINE_BYTES + 1)
    header = False
    if first and not (len(first) > MAX_LINE_BYTES and not first.endswith(b"\n")):
        raw = first[3:] if first.startswith(BOM) else first
        try:
            text = raw.rstrip(b"\r\n").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRejected(_not_utf8(1, exc.start + 1)) from None
        cells = _split_csv(text)
        named = [c.strip() for c in cells if c.strip()]
        if len(named) > 1:
            raise FileRejected(_("The file has %(count)s columns (%(names)s); it must have exactly one: the partner "
                                 "code.") % {"count": len(named), "names": ", ".join(n[:40] for n in named[:5])})
        header = _is_header(text)
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0          # newlines before the current block
    offset = 0         # bytes before the current block
    line_start = 0     # offset of the first byte of the current line
    last = b""
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                bad = offset - pending + exc.start  # absolute offset of the first bad byte
                before = block[:max(bad - offset, 0)]
                line_no = lines + before.count(b"\n") + 1
                newline = before.rfind(b"\n")
                start = offset + newline + 1 if newline >= 0 else line_start
                raise FileRejected(_not_utf8(line_no, bad - start + 1)) from None
            count = block.count(b"\n")
            if count:
                line_start = offset + block.rfind(b"\n") + 1
            lines += count
            offset += len(block)
            last = block[-1:]
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:  # the file ends inside a character
            raise FileRejected(_not_utf8(lines + 1, offset - pending - line_start + 1)) from None
    total = lines + (1 if offset and last != b"\n" else 0)
    return total - (1 if header else 0)


def _not_utf8(line_no: int, byte: int) -> str:
    return (_("The file is not UTF-8 text (line %(line)s, byte %(byte)s). Save it as 'CSV UTF-8' or as XLSX and "
              "upload it again.") % {"line": line_no, "byte": byte})


def csv_rows(path: Path) -> Iterator[Row]:
    for line_no, raw in _csv_lines(path):
        if raw is None:
            yield Row(line_no, "", "line_too_long",
                      _("The line is longer than %(max)s bytes.") % {"max": MAX_LINE_BYTES})
            continue
        text = raw.decode("utf-8")  # checked by check_csv before any row is processed
        if line_no == 1 and _is_header(text):
            continue
        value, problem, detail = _cells(_split_csv(text))
        yield Row(line_no, value, problem, detail)


def check_xlsx_container(path: Path) -> None:
    """Refuse what is not a sound zip, or unpacks to more than MAX_XLSX_UNCOMPRESSED, before openpyxl opens it."""
    if not zipfile.is_zipfile(path):
        raise FileRejected(_("The file is not a valid XLSX workbook (it is not a zip archive)."))
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_XLSX_UNCOMPRESSED:
                raise FileRejected(_("The workbook unpacks to %(size)s MB, more than the %(max)s MB allowed.")
                                   % {"size": f"{total // (1024 * 1024):,}",
                                      "max": MAX_XLSX_UNCOMPRESSED // (1024 * 1024)})
            for info in infos:
                if info.compress_size and info.file_size / info.compress_size > MAX_XLSX_RATIO \
                        and info.file_size > 10 * 1024 * 1024:
                    raise FileRejected(_("The workbook member %(name)s is compressed %(ratio)s:1; it looks like a zip "
                                         "bomb.") % {"name": info.filename[:80],
                                                     "ratio": info.file_size // info.compress_size})
            bad = archive.testzip()
            if bad is not None:
                raise FileRejected(_("The workbook is damaged (member %(name)s fails its checksum).")
                                   % {"name": bad[:80]})
            if "[Content_Types].xml" not in archive.namelist():
                raise FileRejected(_("The file is a zip archive but not an XLSX workbook."))
    except zipfile.BadZipFile as exc:
        raise FileRejected(_("The file is not a valid XLSX workbook (%(error)s).") % {"error": exc}) from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def xlsx_rows(path: Path) -> Iterator[Row]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a malformed workbook
        raise FileRejected(_("The workbook cannot be read (%(error)s).") % {"error": type(exc).__name__}) from None
    try:
        sheet = workbook.worksheets[0]
        for index, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            values = [_cell_text(c) for c in cells]
            while values and not values[-1].strip():
                values.pop()
            if index == 1:
                named = [v.strip() for v in values if v.strip()]
                if len(named) > 1:
                    raise FileRejected(_("The sheet has %(count)s columns (%(names)s); it must have exactly one: the "
                                         "partner code.") % {"count": len(named),
                                                             "names": ", ".join(n[:40] for n in named[:5])})
                if values and _is_header(values[0]):
                    continue
            value, problem, detail = _cells(values or [""])
            if len(value) > MAX_LINE_BYTES:
                yield Row(index, value[:200], "line_too_long",
                          _("The row is longer than %(max)s bytes.") % {"max": MAX_LINE_BYTES})
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
