"""Partners console (R-PART-1…3, R-TEN-3): upload page with a template, upload → processed, reprocess with corrected
values (button and list action), failures filtered by reason and downloaded as XLSX (formulas escaped), mappings
list, per-partner summary — each limited to the user's tenant."""
from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from core.models import AuditLog
from coupons.models import CouponCode
from partners.models import CouponMapping, Partner, PartnerUpload, PartnerUploadFailure
from tests import factories

pytestmark = pytest.mark.django_db

CSV = b"partner_code\nGOOD1\nAB$1\n\nGOOD2\nGOOD1\n=HYPERLINK(\"http://x\")\n"


@pytest.fixture
def partner(tenant):
    return Partner.objects.create(tenant=tenant, name="GS Retail", code="GS25")


@pytest.fixture
def pool(tenant):
    inventory, _codes = factories.make_pool(tenant, size=10)
    return inventory


@pytest.fixture
def console(client, operator_user):
    client.force_login(operator_user)
    return client


def post_upload(console, partner, inventory, content: bytes, name: str = "codes.csv"):
    return console.post(reverse("admin:partners_partnerupload_upload"), {
        "partner": partner.pk, "inventory": inventory.pk, "file": SimpleUploadedFile(name, content)})


def test_the_upload_page_shows_the_form_and_the_template_downloads(console, partner, pool, other_tenant):
    Partner.objects.create(tenant=other_tenant, name="SECRETB partner", code="B1")
    page = console.get(reverse("admin:partners_partnerupload_upload"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="file"' in html
    assert reverse("admin:partners_partnerupload_template") in html
    assert "GS Retail" in html and "SECRETB" not in html  # only the user's tenant's partners to choose from
    template = console.get(reverse("admin:partners_partnerupload_template"))
    assert template.status_code == 200 and template["Content-Type"] == "text/csv"
    assert "attachment" in template["Content-Disposition"]
    assert template.content.splitlines()[0] == b"partner_code"
    # the template itself is a valid upload: its two codes map
    response = post_upload(console, partner, pool, template.content, "template.csv")
    upload = PartnerUpload.objects.get()
    assert (upload.status, upload.rows, upload.mapped, upload.failed) == ("DONE", 2, 2, 0)
    assert response.status_code == 302


def test_a_csv_posted_on_the_upload_page_is_stored_processed_and_shown_with_its_counts(console, partner, pool,
                                                                                      operator_user):
    response = post_upload(console, partner, pool, CSV)
    upload = PartnerUpload.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:partners_partnerupload_change", args=[upload.pk])
    assert (upload.status, upload.rows, upload.mapped, upload.failed) == ("DONE", 6, 2, 4)
    assert upload.created_by == operator_user and upload.original_name == "codes.csv"
    page = console.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert '<progress max="6" value="6"' in html
    assert reverse("admin:partners_partnerupload_reprocess", args=[upload.pk]) in html
    assert f"?upload__id__exact={upload.pk}" in html
    assert AuditLog.objects.filter(action="partner_upload.create", object_id=str(upload.pk)).count() == 1
    # the same file again: no second upload, a warning and the earlier one shown
    again = post_upload(console, partner, pool, CSV, "renamed.csv")
    assert again["Location"] == response["Location"]
    assert PartnerUpload.objects.count() == 1 and CouponMapping.objects.count() == 2
    messages = [str(m) for m in again.wsgi_request._messages]
    assert messages == ["This file was already uploaded for this inventory: showing the earlier upload."]


def test_an_xlsx_posted_on_the_upload_page_maps_its_first_column(console, partner, pool):
    workbook = Workbook()
    for row in (["partner_code"], ["X-1"], ["X2"], ["$"]):
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    post_upload(console, partner, pool, out.getvalue(), "codes.xlsx")
    upload = PartnerUpload.objects.get()
    assert (upload.status, upload.rows, upload.mapped, upload.failed) == ("DONE", 3, 2, 1)
    assert sorted(CouponMapping.objects.values_list("partner_code", flat=True)) == ["X1", "X2"]


def test_a_hostile_file_on_the_upload_page_fails_the_upload_with_its_reason(console, partner, pool):
    post_upload(console, partner, pool, b"not a workbook", "codes.xlsx")
    upload = PartnerUpload.objects.get()
    assert (upload.status, upload.mapped, upload.failed) == ("FAILED", 0, 0)
    page = console.get(reverse("admin:partners_partnerupload_change", args=[upload.pk])).content.decode()
    assert "not a valid XLSX workbook" in page
    assert CouponCode.objects.filter(inventory=pool, status="AVAILABLE").count() == 10


def test_the_upload_page_refuses_a_missing_file_and_another_tenants_inventory(console, partner, pool, other_tenant):
    inventory_b, _codes = factories.make_pool(other_tenant, size=3)
    missing = console.post(reverse("admin:partners_partnerupload_upload"), {"partner": partner.pk,
                                                                           "inventory": pool.pk})
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    foreign = post_upload(console, partner, inventory_b, CSV)
    assert foreign.status_code == 200 and "Select a valid choice" in foreign.content.decode()
    assert not PartnerUpload.objects.exists()


def test_reprocess_from_the_console_with_corrected_values_maps_exactly_those(console, tenant, partner, pool):
    upload = factories.make_partner_upload(tenant, pool, CSV)
    assert dict(upload.failures.values_list("line", "reason")) == {
        3: "bad_format", 4: "empty", 6: "duplicate_in_file", 7: "bad_format"}
    url = reverse("admin:partners_partnerupload_reprocess", args=[upload.pk])
    page = console.get(url)
    assert page.status_code == 200 and "AB$1" in page.content.decode()
    response = console.post(url, {"corrections": "3,AB1\n4, NEW-4\n"})
    assert response.status_code == 302
    upload.refresh_from_db()
    assert (upload.status, upload.rows, upload.mapped, upload.failed) == ("DONE", 6, 4, 2)
    assert set(CouponMapping.objects.filter(upload=upload).values_list("line", "partner_code")) == {
        (2, "GOOD1"), (3, "AB1"), (4, "NEW4"), (5, "GOOD2")}
    assert dict(upload.failures.values_list("line", "reason")) == {6: "duplicate_in_file", 7: "bad_format"}
    assert AuditLog.objects.filter(action="partner_upload.reprocess", object_id=str(upload.pk)).count() == 1


@pytest.mark.parametrize("corrections, message", [
    ("2,NEW2", "does not name a failed line"),   # line 2 mapped: not a failed line
    ("three,NEW", "is not LINE,VALUE"),
    ("3", "is not LINE,VALUE"),
])
def test_a_bad_correction_in_the_console_is_refused_and_changes_nothing(console, tenant, partner, pool, corrections,
                                                                        message):
    upload = factories.make_partner_upload(tenant, pool, CSV)
    before = list(PartnerUploadFailure.objects.order_by("line").values_list("line", "value", "reason", "corrected"))
    response = console.post(reverse("admin:partners_partnerupload_reprocess", args=[upload.pk]),
                            {"corrections": corrections})
    assert response.status_code == 200 and message in response.content.decode()
    upload.refresh_from_db()
    assert (upload.status, upload.mapped, upload.failed) == ("DONE", 2, 4)
    assert list(PartnerUploadFailure.objects.order_by("line").values_list("line", "value", "reason",
                                                                           "corrected")) == before


def test_the_reprocess_list_action_retries_failed_rows_as_they_are(console, tenant, partner):
    inventory, _codes = factories.make_pool(tenant, size=2)
    upload = factories.make_partner_upload(tenant, inventory, b"A1\nA2\nA3\n")
    assert (upload.mapped, upload.failed) == (2, 1)
    factories.make_codes(inventory.batches.first(), 1)  # one more code arrives
    response = console.post(reverse("admin:partners_partnerupload_changelist"),
                            {"action": "reprocess_failed_rows", "_selected_action": [upload.pk]})
    assert response.status_code == 302
    upload.refresh_from_db()
    assert (upload.status, upload.mapped, upload.failed) == ("DONE", 3, 0)


def test_another_tenants_upload_cannot_be_reprocessed_from_the_console(console, other_tenant):
    Partner.objects.create(tenant=other_tenant, name="B", code="GS25")
    inventory_b, _codes = factories.make_pool(other_tenant, size=3)
    upload_b = factories.make_partner_upload(other_tenant, inventory_b, CSV)
    url = reverse("admin:partners_partnerupload_reprocess", args=[upload_b.pk])
    assert console.get(url).status_code == 404
    assert console.post(url, {"corrections": "3,AB1"}).status_code == 404
    upload_b.refresh_from_db()
    assert (upload_b.mapped, upload_b.failed) == (2, 4)


def test_a_viewer_sees_no_reprocess_button_and_cannot_reprocess(client, tenant, partner, pool):
    upload = factories.make_partner_upload(tenant, pool, CSV)
    client.force_login(factories.make_viewer(tenant))
    page = client.get(reverse("admin:partners_partnerupload_change", args=[upload.pk]))
    assert page.status_code == 200
    url = reverse("admin:partners_partnerupload_reprocess", args=[upload.pk])
    assert url not in page.content.decode()
    assert client.post(url, {"corrections": "3,AB1"}).status_code == 403
    upload.refresh_from_db()
    assert upload.failed == 4


def listed(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_the_failure_list_filters_by_reason_and_by_upload(console, tenant, partner, pool):
    upload = factories.make_partner_upload(tenant, pool, CSV)
    other = factories.make_partner_upload(tenant, pool, b"$$\n")
    url = reverse("admin:partners_partneruploadfailure_changelist")
    assert len(listed(console.get(url))) == 5
    bad_format = console.get(url, {"reason": "bad_format"})
    assert sorted((f.upload_id, f.line) for f in listed(bad_format)) == [(upload.pk, 3), (upload.pk, 7),
                                                                         (other.pk, 1)]
    assert "AB$1" in bad_format.content.decode()
    empty = listed(console.get(url, {"reason": "empty", "upload__id__exact": upload.pk}))
    assert [(f.line, f.reason) for f in empty] == [(4, "empty")]
    assert [(f.line, f.value) for f in listed(console.get(url, {"upload__id__exact": other.pk}))] == [(1, "$$")]


def download_failures(console, action="download_xlsx"):
    response = console.post(reverse("admin:partners_partneruploadfailure_changelist") + "?reason=bad_format", {
        "action": action, "select_across": "1", "index": "0",
        "_selected_action": list(PartnerUploadFailure.objects.values_list("pk", flat=True))})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    sheet = load_workbook(io.BytesIO(response.content)).active
    return sheet, [tuple(c.value for c in row) for row in sheet.iter_rows()]


def test_the_failures_download_as_xlsx_with_formulas_escaped(console, tenant, partner, pool):
    upload = factories.make_partner_upload(tenant, pool, CSV)
    sheet, rows = download_failures(console)
    assert sheet.title == "Failures"
    assert rows[0] == ("Upload", "Line", "Value", "Reason", "Message")
    assert [(r[0], r[1], r[2], r[3]) for r in rows[1:]] == [
        (upload.public_id, 3, "AB$1", "bad format"), (upload.public_id, 7, "'=HYPERLINK(\"http://x\")", "bad format")]
    # no cell is a formula: the hostile value is text with a leading apostrophe
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)


def test_the_failures_sheet_is_in_the_tenant_language_with_a_machine_key_variant(console, tenant, partner, pool):
    """Issue #11: sheet name, headers and reasons in the tenant's language — whatever the operator's console
    language; the machine-key download has stable keys for both, in every language."""
    tenant.language = "ko"
    tenant.save(update_fields=["language"])
    upload = factories.make_partner_upload(tenant, pool, CSV)
    sheet, rows = download_failures(console)
    assert sheet.title == "실패 내역"
    assert rows[0] == ("업로드", "줄", "값", "사유", "메시지")
    assert [r[3] for r in rows[1:]] == ["형식 오류", "형식 오류"]
    sheet, rows = download_failures(console, "download_xlsx_keys")
    assert sheet.title == "failures"
    assert rows[0] == ("upload", "line", "value", "reason", "message")
    assert [(r[0], r[1], r[3]) for r in rows[1:]] == [(upload.public_id, 3, "bad_format"),
                                                      (upload.public_id, 7, "bad_format")]


def test_the_mappings_list_shows_the_codes_of_an_upload(console, tenant, partner, pool, other_tenant):
    upload = factories.make_partner_upload(tenant, pool, CSV)
    factories.make_partner_upload(tenant, pool, b"OTHER1\n")
    Partner.objects.create(tenant=other_tenant, name="B", code="GS25")
    inventory_b, _codes = factories.make_pool(other_tenant, size=3)
    factories.make_partner_upload(other_tenant, inventory_b, b"SECRETB1\n")
    url = reverse("admin:partners_couponmapping_changelist")
    everything = console.get(url)
    assert sorted(m.partner_code for m in listed(everything)) == ["GOOD1", "GOOD2", "OTHER1"]
    assert "SECRETB1" not in everything.content.decode()
    of_upload = console.get(url, {"upload__id__exact": upload.pk})
    assert sorted(m.partner_code for m in listed(of_upload)) == ["GOOD1", "GOOD2"]
    coupon = CouponMapping.objects.get(partner_code="GOOD2").coupon
    assert str(coupon) in of_upload.content.decode()


def test_the_partner_list_summarises_uploads_mapped_failed_and_claimed(console, tenant, partner, pool, api):
    factories.make_partner_upload(tenant, pool, CSV)
    factories.make_partner_upload(tenant, pool, b"OTHER1\nOTHER2\n$\n")
    Partner.objects.create(tenant=tenant, name="Idle partner", code="IDLE")
    assert api.post("/api/v1/claims", {"member_id": "m-1", "partner_code": "OTHER1"},
                    format="json").status_code == 201
    response = console.get(reverse("admin:partners_partner_changelist"))
    summary = {p.code: (p.uploads_n, p.rows_n, p.mapped_n, p.failed_n, p.claimed_n) for p in listed(response)}
    assert summary == {"GS25": (2, 9, 4, 5, 1), "IDLE": (0, 0, 0, 0, 0)}
    html = response.content.decode()
    assert "Claimed by members" in html
