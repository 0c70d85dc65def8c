"""Issue #22: one spreadsheet sanitiser (core.spreadsheets.safe_cell) behind every file the product writes. Each
export path, fed a value a spreadsheet would run (``=HYPERLINK(...)``), produces a file where it is inert text:
the export jobs (exports/writer.py), the draw winners action (draws/exports.py), the partner-upload failures
download (partners/admin.py), the console's list export in CSV and XLSX (core/export_formats.py) and the campaign
report (dashboard/report_xlsx.py). Numbers stay numbers."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from core.spreadsheets import safe_cell, safe_text
from tests import factories

pytestmark = pytest.mark.django_db

LINK = '=HYPERLINK("http://x","click")'
INERT = "'" + LINK


def _inert(cell) -> bool:
    """An openpyxl cell holding ``LINK`` as text: apostrophe first, data type string, never a formula."""
    return cell.value == INERT and cell.data_type == "s"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_of_the_owasp_list_is_prefixed(start):
    assert safe_text(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell(f"x{start}1") == f"x{start}1"  # only the first character matters


def test_numbers_dates_and_empty_cells_stay_what_they_are():
    for value in (-5, 3.5, Decimal("-1.25"), 0, None, True, date(2026, 12, 7), datetime(2026, 12, 7, 9, 0), ""):
        assert safe_cell(value) == value and type(safe_cell(value)) is type(value)


def test_the_export_writer_writes_formulas_as_text(tmp_path):
    from exports.columns import USAGES
    from exports.writer import SheetWriter

    writer = SheetWriter(columns=USAGES[:6], title="Usages", header=[str(c.label) for c in USAGES[:6]])
    writer.write_block([(datetime(2026, 12, 7, 9, 0), None, "o-1", LINK, "CODE1", -5000)])
    writer.save(tmp_path / "u.xlsx")
    row = load_workbook(tmp_path / "u.xlsx").worksheets[0][2]
    assert _inert(row[3])
    assert row[5].value == -5000 and row[5].data_type == "n"  # a (negative) amount is a number, not text


def test_the_winners_file_writes_formulas_as_text(tenant, tmp_path):
    from draws.exports import winners_xlsx
    from draws.services import draw_run
    from tests.draws.helpers import committed_draw, ended_event_with

    draw = committed_draw(ended_event_with(tenant, [LINK]), [("all", 1)])
    draw = draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR)
    sheet = load_workbook(winners_xlsx([draw], directory=tmp_path)).worksheets[0]
    assert _inert(sheet["G2"])
    assert sheet["C2"].value == 1 and sheet["C2"].data_type == "n"  # the round


def test_the_failures_download_writes_formulas_as_text(client, django_capture_on_commit_callbacks):
    from partners.models import PartnerUploadFailure
    from partners.services import partner_create, partner_upload_create

    tenant = factories.make_tenant()
    inventory, _codes = factories.make_pool(tenant, size=3)
    partner_create(tenant=tenant, name="Shop", code="GS25", actor=factories.TEST_ACTOR)
    content = f'partner_code\n"{LINK.replace(chr(34), chr(34) * 2)}"\n'.encode()
    with django_capture_on_commit_callbacks(execute=True):
        partner_upload_create(tenant=tenant, partner_code="GS25", inventory_public_id=inventory.public_id,
                              uploaded=SimpleUploadedFile("a.csv", content, content_type="text/csv"),
                              actor=factories.TEST_ACTOR)
    failure = PartnerUploadFailure.objects.get(upload__tenant=tenant)
    assert failure.value == LINK
    client.force_login(factories.make_operator(tenant))
    response = client.post("/admin/partners/partneruploadfailure/",
                           {"action": "download_xlsx", "_selected_action": [failure.pk]})
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    assert _inert(sheet["C2"])
    assert sheet["B2"].value == 2 and sheet["B2"].data_type == "n"  # the line number


def test_the_console_list_export_writes_formulas_as_text_in_csv_and_xlsx():
    from core.export_formats import EXPORT_FORMATS, LaidOutXLSX, SafeCSV

    assert EXPORT_FORMATS == [SafeCSV, LaidOutXLSX]
    data = tablib.Dataset([LINK, -3, "@SUM(A1)"], headers=["name", "count", "note"])
    rows = list(csv.reader(io.StringIO(SafeCSV().export_data(data))))
    assert rows[1] == [INERT, "-3", "'@SUM(A1)"]
    sheet = load_workbook(io.BytesIO(LaidOutXLSX().export_data(data))).worksheets[0]
    assert _inert(sheet["A2"])
    assert sheet["B2"].value == -3 and sheet["B2"].data_type == "n"
    assert sheet["C2"].value == "'@SUM(A1)"


def test_the_campaign_report_writes_formulas_as_text(client, tenant):
    event = factories.make_event(tenant, name=LINK)
    factories.make_pool(tenant, size=2, event=event, name=LINK)
    client.force_login(factories.make_viewer(tenant))
    wb = load_workbook(io.BytesIO(client.get(reverse("dashboard:event_report_xlsx", args=[event.pk])).content))
    assert _inert(wb["Summary"]["B1"])
    assert _inert(wb["By pool"]["A2"])
    assert wb["By pool"]["C2"].data_type == "n"  # issued: a count
