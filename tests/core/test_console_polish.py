"""Issue #20, the items that need no browser: error pages, favicon, Korean formats and Django's Korean strings,
amounts as the operator reads them, the chart's axis, the upload page with nothing to choose, channel labels."""
from __future__ import annotations

import gettext as gettext_module
from datetime import datetime, UTC
from pathlib import Path

import django
import pytest
from django.test import RequestFactory
from django.utils import formats, translation

from dashboard.charts import line_chart, nice_ticks
from tests import factories

pytestmark = pytest.mark.django_db

SITE_HEADER_KO = "쿠폰 플랫폼 — 백오피스"


# --- favicon and error pages ---------------------------------------------------------------------------------------

def test_favicon_is_an_icon_not_a_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header


def test_the_operator_gets_the_consoles_own_403_in_korean_on_failed_jobs(client):
    tenant = factories.make_tenant(language="ko")
    operator = factories.make_operator(tenant)
    assert not operator.has_perm("ops.view_jobs")
    client.force_login(operator)
    response = client.get("/admin/ops/jobs/failed/")
    body = response.content.decode()
    assert response.status_code == 403
    assert '<html lang="ko"' in body
    assert SITE_HEADER_KO in body and 'id="console-error"' in body
    assert "이 페이지를 열 권한이 없습니다" in body
    assert "403 Forbidden" not in body and "Forbidden" not in body


def test_an_unknown_console_address_is_the_styled_404_and_the_api_keeps_its_json(client):
    tenant = factories.make_tenant(language="ko")
    client.force_login(factories.make_operator(tenant))
    response = client.get("/admin/no-such-page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert SITE_HEADER_KO in body and "페이지를 찾을 수 없습니다" in body and 'data-status="404"' in body
    api = client.get("/api/v1/no-such-endpoint/")
    assert api.status_code == 404 and api.json()["code"] == "not_found"


def test_the_500_page_is_styled_and_survives_without_a_user(db):
    from core.middleware import server_error_view

    request = RequestFactory().get("/admin/")  # no session, no user: a middleware failed before them
    with translation.override("ko"):
        response = server_error_view(request)
    body = response.content.decode()
    assert response.status_code == 500
    assert 'id="console-error"' in body and "문제가 발생했습니다" in body


# --- Korean formats and Django's Korean -----------------------------------------------------------------------------

def test_korean_times_are_24_hour():
    when = datetime(2026, 12, 7, 15, 5)
    with translation.override("ko"):
        assert formats.date_format(when, "TIME_FORMAT") == "15:05"
        assert formats.date_format(when, "DATETIME_FORMAT") == "2026년 12월 7일 15:05"
        assert formats.date_format(when, "SHORT_DATETIME_FORMAT") == "2026-12-07 15:05"
        assert "오후" not in formats.date_format(when, "DATETIME_FORMAT")
    with translation.override("en"):
        assert formats.date_format(when, "TIME_FORMAT") == "3:05 p.m."  # English keeps Django's own


DJANGO_KO = Path(django.__file__).parent / "contrib" / "admin" / "locale"


@pytest.mark.parametrize(("msgid", "ours", "djangos"), [
    ("Select %s to view", "볼 %s 선택", "보기위한 1%s 를(을) 선택"),
    ("View %s", "%s 보기", "뷰 %s"),
])
def test_the_project_catalogue_overrides_djangos_broken_korean(msgid, ours, djangos):
    # Django still ships the broken text (else the override is stale and can go) ...
    django_ko = gettext_module.translation("django", localedir=str(DJANGO_KO), languages=["ko"])
    assert django_ko.gettext(msgid) == djangos
    # ... and ours wins in the console (LOCALE_PATHS before Django's catalogues)
    with translation.override("ko"):
        assert translation.gettext(msgid) == ours


def test_the_changelist_title_of_a_view_only_list_reads_as_korean(client):
    tenant = factories.make_tenant(language="ko")
    client.force_login(factories.make_viewer(tenant))
    body = client.get("/admin/coupons/couponusage/").content.decode()
    assert "보기위한" not in body and "를(을)" not in body


# --- amounts ---------------------------------------------------------------------------------------------------------

def test_amount_fields_show_grouped_digits_and_accept_them():
    from django import forms

    from coupons.models import CouponPolicy

    form_class = forms.modelform_factory(CouponPolicy, fields=["amount", "threshold"])
    assert 'value="300,000"' in str(form_class(initial={"amount": 300000})["amount"])
    form = form_class(data={"amount": "30,000", "threshold": "₩1,000,000"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data == {"amount": 30000, "threshold": 1000000}


def test_an_amount_that_is_not_a_number_is_refused_in_the_operators_language():
    from django import forms

    from coupons.models import CouponPolicy

    form_class = forms.modelform_factory(CouponPolicy, fields=["amount"])
    with translation.override("ko"):
        form = form_class(data={"amount": "3만"})
        assert not form.is_valid()
        assert form.errors["amount"] == ["정수를 입력하세요."]


def test_dashboard_budgets_are_money_and_counts_are_grouped(client):
    tenant = factories.make_tenant(language="ko")
    inventory = factories.make_inventory(tenant, total_quantity=1000)
    type(inventory).objects.filter(pk=inventory.pk).update(issue_budget_amount=300000, issue_budget_count=25000)
    client.force_login(factories.make_operator(tenant))
    body = client.get("/admin/dashboard/").content.decode()
    assert "₩300,000" in body and "25,000" in body
    assert ">300000<" not in body and ">25000<" not in body


# --- the chart's y axis ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("peak", "ticks"), [
    (0, [0, 1, 2, 3, 4]), (3, [0, 1, 2, 3, 4]), (5, [0, 2, 4, 6, 8]), (8, [0, 2, 4, 6, 8]),
    (9, [0, 5, 10, 15, 20]), (1234, [0, 500, 1000, 1500, 2000]), (40_000, [0, 10_000, 20_000, 30_000, 40_000]),
])
def test_chart_ticks_are_evenly_spaced_integers_covering_the_peak(peak, ticks):
    assert nice_ticks(peak) == ticks


def test_the_chart_labels_its_axis_with_those_ticks_grouped():
    from datetime import date

    svg = str(line_chart(days=[date(2026, 12, d) for d in (1, 2, 3)], series={"issued": [0, 5, 1234]},
                         title="t", chart_id="c"))
    import re

    labels = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert labels == ["0", "500", "1,000", "1,500", "2,000"]


# --- generation progress: status and percentage agree ---------------------------------------------------------------

def test_generation_percent_is_100_only_once_the_batch_is_completed(db):
    from coupons.services.generation import batch_generation_progress
    from coupons.models import CouponBatch

    tenant = factories.make_tenant()
    batch = factories.make_batch(factories.make_inventory(tenant, total_quantity=1000), quantity=1000)
    for status, generated, percent in ((CouponBatch.Status.PENDING, 0, 0.0), (CouponBatch.Status.RUNNING, 250, 25.0),
                                       (CouponBatch.Status.RUNNING, 1000, 99.9),
                                       (CouponBatch.Status.COMPLETED, 1000, 100.0)):
        CouponBatch.objects.filter(pk=batch.pk).update(status=status, generated_count=generated)
        batch.refresh_from_db()
        progress = batch_generation_progress(batch)
        assert (progress["status"], progress["percent"]) == (status, percent)


# --- the upload page with nothing to choose -------------------------------------------------------------------------

def test_the_upload_page_says_there_is_no_partner_and_links_to_adding_one(client):
    from partners.models import PartnerUpload

    tenant = factories.make_tenant(language="ko")
    factories.make_inventory(tenant)
    client.force_login(factories.make_operator(tenant))
    body = client.get("/admin/partners/partnerupload/upload/").content.decode()
    assert 'id="no-partners"' in body and 'href="/admin/partners/partner/add/"' in body
    assert "novalidate" in body  # the server's Korean messages, not the browser's "Please select an item"
    response = client.post("/admin/partners/partnerupload/upload/", {"partner": "", "inventory": ""})
    assert response.status_code == 200
    assert "필수 항목입니다." in response.content.decode()
    assert not PartnerUpload.objects.exists()


# --- stored keys shown by their labels ------------------------------------------------------------------------------

def test_draws_and_log_rows_name_themselves_in_the_readers_language(db):
    from draws.models import Draw

    draw = Draw(name="연말 추첨", round=2)
    with translation.override("ko"):
        assert str(draw) == "연말 추첨 (2회차)"
    with translation.override("en"):
        assert str(draw) == "연말 추첨 (round 2)"


def test_usage_channels_are_labelled_in_the_list_filter(client):
    tenant = factories.make_tenant(language="ko")
    client.force_login(factories.make_operator(tenant))
    body = client.get("/admin/coupons/couponusage/").content.decode()
    assert "안드로이드 앱" in body and "미니 프로그램" in body
    assert ">mini_program<" not in body and ">android<" not in body


def test_export_time_in_the_download_name_is_the_tenants(db):
    from exports.models import Export

    tenant = factories.make_tenant(time_zone="Asia/Seoul")
    export = Export(tenant=tenant, kind="usages", public_id="ABCDEFGHJKLMNPQR",
                    created_at=datetime(2026, 12, 6, 23, 30, 5, tzinfo=UTC))
    assert export.download_filename == "usages-ABCDEFGHJKLMNPQR-20261207-083005.xlsx"
    assert export.filename == "usages-ABCDEFGHJKLMNPQR-20261206-233005.xlsx"  # the stored file keeps its name
