"""Every XLSX the product writes opens with its header frozen and its columns sized (issue #20), and a file name's
time is the tenant's: the usage/issue/codes/winners exports (exports/writer.py), the draw winners action
(draws/exports.py), the partner-upload failures action (partners/admin.py) and the list export of
django-import-export (core/export_formats.py)."""
from __future__ import annotations

import io
import re
from datetime import datetime, UTC
from unittest import mock

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import load_workbook

from core.spreadsheets import column_widths, display_width, local_stamp
from tests import factories

pytestmark = pytest.mark.django_db


def _assert_laid_out(sheet, header):
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == header
    assert all(c.font.bold for c in sheet[1])
    for i, heading in enumerate(header):
        letter = chr(ord("A") + i)
        width = sheet.column_dimensions[letter].width
        assert width and width >= display_width(heading) + 2, (letter, heading, width)


def test_widths_count_korean_characters_twice_and_stay_within_bounds():
    assert display_width("사용 일시") == 9
    assert column_widths(["사용 일시", "x", "y" * 200], ["date", "", "text"]) == [20.0, 12.0, 60.0]


def test_the_export_writer_freezes_the_header_and_sizes_the_columns(tmp_path):
    from exports.columns import USAGES
    from exports.writer import SheetWriter

    header = ["사용 일시", "환불 일시", "주문", "회원", "쿠폰 코드", "주문 금액", "할인", "이벤트"]
    writer = SheetWriter(columns=USAGES[:8], title="사용 내역", header=header)
    writer.write_block([(datetime(2026, 12, 7, 8, 0), None, "o-1", "m-1", "ABCD2345", 53000, 5000, "이벤트")])
    writer.save(tmp_path / "usages.xlsx")
    sheet = load_workbook(tmp_path / "usages.xlsx").worksheets[0]
    _assert_laid_out(sheet, header)
    assert sheet.column_dimensions["A"].width == 20  # a date column: room for yyyy-mm-dd hh:mm:ss
    assert sheet["F2"].value == 53000 and sheet["F2"].number_format == "#,##0"


def test_the_winners_file_is_laid_out(tmp_path):
    from draws.exports import HEADER, winners_xlsx

    sheet = load_workbook(winners_xlsx([], directory=tmp_path)).worksheets[0]
    _assert_laid_out(sheet, HEADER)


def test_the_failures_download_is_laid_out_and_named_in_the_tenants_time(client, django_capture_on_commit_callbacks):
    from partners.models import PartnerUploadFailure
    from partners.services import partner_create, partner_upload_create

    tenant = factories.make_tenant(language="ko", time_zone="Asia/Seoul")
    inventory, _codes = factories.make_pool(tenant, size=3)
    partner_create(tenant=tenant, name="편의점", code="GS25", actor=factories.TEST_ACTOR)
    with django_capture_on_commit_callbacks(execute=True):  # the upload job starts once the upload is committed
        partner_upload_create(tenant=tenant, partner_code="GS25", inventory_public_id=inventory.public_id,
                              uploaded=SimpleUploadedFile("a.csv", b"partner_code\nBAD-CODE!\n",
                                                          content_type="text/csv"),
                              actor=factories.TEST_ACTOR)
    failure = PartnerUploadFailure.objects.get(upload__tenant=tenant)
    client.force_login(factories.make_operator(tenant))
    frozen = datetime(2026, 12, 6, 23, 30, 0, tzinfo=UTC)  # 08:30 the next day in Seoul
    with mock.patch("django.utils.timezone.now", return_value=frozen):
        response = client.post("/admin/partners/partneruploadfailure/",
                               {"action": "download_xlsx", "_selected_action": [failure.pk]})
    assert response.status_code == 200
    assert re.search(r'filename="partner_upload_failures-20261207-083000\.xlsx"', response["Content-Disposition"])
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    _assert_laid_out(sheet, [c.value for c in sheet[1]])
    assert sheet.max_row == 2


def test_the_list_export_of_the_console_is_laid_out_and_offers_csv_and_xlsx_only():
    from core.export_formats import EXPORT_FORMATS, LaidOutXLSX

    assert [f().get_title() for f in EXPORT_FORMATS] == ["csv", "xlsx"]
    data = tablib.Dataset(["GS25", "편의점"], headers=["코드", "이름"])
    sheet = load_workbook(io.BytesIO(LaidOutXLSX().export_data(data))).worksheets[0]
    _assert_laid_out(sheet, ["코드", "이름"])


def test_file_name_stamps_are_in_the_given_zone():
    when = datetime(2026, 12, 6, 23, 30, 5, tzinfo=UTC)
    assert local_stamp(when, "Asia/Seoul") == "20261207-083005"
    assert local_stamp(when, "Europe/London") == "20261206-233005"
    assert local_stamp(when, "Not/AZone") == "20261207-083005"  # the server's zone (Asia/Seoul) for a bad value
