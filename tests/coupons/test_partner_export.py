"""Partner export of a batch's codes, CSV and XLSX, recorded as distributed (R-PART-4), and the batch console pages."""
from __future__ import annotations

import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from core.audit import Actor
from core.models import AuditLog
from coupons import distribution
from coupons.bloom import bloom_drop
from coupons.distribution import BatchNotGenerated, batch_export_codes, csv_stream
from coupons.generation import batch_generate
from coupons.models import CouponBatch, CouponCode, CouponCodeExport
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = Actor.system("tests")


@pytest.fixture(autouse=True)
def own_small_filter(settings, transactional_db):
    settings.GENERATION_CHUNK_SIZE = 1000
    settings.BLOOM_CAPACITY = 100_000
    bloom_drop()
    yield
    bloom_drop()


@pytest.fixture
def generated(tenant):
    inventory = factories.make_inventory(tenant, total_quantity=100_000)
    batch = factories.make_batch(inventory, quantity=2500, batch_code="PARTNER-1")
    return batch_generate(batch_id=batch.pk, actor=ACTOR)


def available_codes(batch: CouponBatch) -> list[str]:
    return list(CouponCode.objects.filter(batch=batch, status="AVAILABLE").order_by("id")
                .values_list("code", flat=True))


def test_an_export_records_partner_format_count_and_who(generated, operator_user):
    export = batch_export_codes(batch=generated, partner_name="  Mall A  ", fmt="csv", actor=Actor.user(operator_user),
                                user=operator_user)

    export.refresh_from_db()
    assert (export.partner_name, export.format, export.code_count) == ("Mall A", "csv", 2500)
    assert (export.exported_by, export.actor_label, export.tenant_id) == (operator_user, operator_user.username,
                                                                          generated.tenant_id)
    audit = AuditLog.objects.get(action="batch.codes_exported")
    assert audit.after == {"export": export.pk, "partner": "Mall A", "format": "csv", "codes": 2500,
                           "earlier_exports": 0}


def test_the_csv_holds_exactly_the_batchs_available_codes_in_id_order(generated, monkeypatch):
    monkeypatch.setattr(distribution, "EXPORT_BLOCK", 700)  # several blocks
    issued = CouponCode.objects.filter(batch=generated).order_by("id").first()
    CouponCode.objects.filter(pk=issued.pk).update(status="ISSUED", member_id="m-1", issued_at=generated.created_at)
    export = batch_export_codes(batch=generated, partner_name="Mall A", fmt="csv", actor=ACTOR)

    body = b"".join(csv_stream(export)).decode()

    lines = body.splitlines()
    assert lines[0] == "code"
    assert lines[1:] == available_codes(generated)
    assert len(lines[1:]) == export.code_count == 2499
    assert issued.code not in lines


def test_a_batch_still_generating_cannot_be_exported_and_nothing_is_recorded(tenant):
    inventory = factories.make_inventory(tenant, total_quantity=1000)
    batch = factories.make_batch(inventory, quantity=10)

    with pytest.raises(BatchNotGenerated):
        batch_export_codes(batch=batch, partner_name="Mall A", fmt="csv", actor=ACTOR)

    assert CouponCodeExport.objects.count() == 0
    assert not AuditLog.objects.filter(action="batch.codes_exported").exists()


@pytest.mark.parametrize("partner, fmt", [("", "csv"), ("Mall A", "pdf")])
def test_an_export_without_a_partner_or_with_an_unknown_format_is_refused(generated, partner, fmt):
    from core.exceptions import InvalidInput

    with pytest.raises(InvalidInput):
        batch_export_codes(batch=generated, partner_name=partner, fmt=fmt, actor=ACTOR)
    assert CouponCodeExport.objects.count() == 0


def test_the_console_export_streams_the_csv_and_records_the_operator(client, generated, operator_user):
    client.force_login(operator_user)

    response = client.post(reverse("admin:coupons_couponbatch_export", args=[generated.pk]),
                           {"partner_name": "Mall C", "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="PARTNER-1-Mall-C-')
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[1:] == available_codes(generated)
    export = CouponCodeExport.objects.get()
    assert (export.partner_name, export.exported_by, export.code_count) == ("Mall C", operator_user, 2500)


def test_the_console_xlsx_export_is_written_by_the_export_job_and_holds_the_handed_over_codes(
        client, generated, operator_user, settings, tmp_path):
    """R-PART-4, R-REP-2: the workbook is not built inside the request; the Exports page offers it."""
    from exports.models import Export

    settings.MEDIA_ROOT = str(tmp_path)
    issued = CouponCode.objects.filter(batch=generated).order_by("id").first()
    CouponCode.objects.filter(pk=issued.pk).update(status="ISSUED", member_id="m-1", issued_at=generated.created_at)
    client.force_login(operator_user)

    response = client.post(reverse("admin:coupons_couponbatch_export", args=[generated.pk]),
                           {"partner_name": "Mall D", "format": "xlsx"})

    assert response.status_code == 302 and response["Location"] == reverse("admin:exports_export_changelist")
    handover = CouponCodeExport.objects.get()
    export = Export.objects.get()
    assert (export.code_export, export.kind, export.status, export.rows_done) == (handover, "codes", "DONE", 2499)
    download = client.get(reverse("admin:exports_export_download", args=[export.pk]))
    workbook = load_workbook(io.BytesIO(b"".join(download.streaming_content)), read_only=True)
    assert [r[0] for r in workbook.worksheets[0].iter_rows(values_only=True)] == ["code", *available_codes(generated)]


def test_the_console_generate_button_queues_generation_and_the_progress_endpoint_reports_it(
        client, tenant, operator_user):
    inventory = factories.make_inventory(tenant, total_quantity=10_000)
    batch = factories.make_batch(inventory, quantity=3000)
    client.force_login(operator_user)
    page = client.get(reverse("admin:coupons_couponbatch_change", args=[batch.pk])).content.decode()
    assert reverse("admin:coupons_couponbatch_generate", args=[batch.pk]) in page

    started = client.post(reverse("admin:coupons_couponbatch_generate", args=[batch.pk]))
    progress = client.get(reverse("admin:coupons_couponbatch_progress", args=[batch.pk])).json()

    assert started.status_code == 302
    assert (progress["status"], progress["generated_count"], progress["percent"], progress["chunks"]) == (
        "COMPLETED", 3000, 100.0, 3)  # jobs run inline in tests


def test_a_viewer_can_watch_progress_but_not_generate_or_export(client, tenant, generated):
    viewer = factories.make_viewer(tenant)
    client.force_login(viewer)
    pending = factories.make_batch(generated.inventory, quantity=10)

    assert client.get(reverse("admin:coupons_couponbatch_progress", args=[pending.pk])).status_code == 200
    assert client.post(reverse("admin:coupons_couponbatch_generate", args=[pending.pk])).status_code == 403
    assert client.post(reverse("admin:coupons_couponbatch_export", args=[generated.pk]),
                       {"partner_name": "X", "format": "csv"}).status_code == 403
    assert CouponBatch.objects.get(pk=pending.pk).status == "PENDING"
    assert CouponCodeExport.objects.count() == 0


def test_another_tenants_batch_is_not_found_for_progress_generate_or_export(client, generated, other_tenant):
    intruder = factories.make_operator(other_tenant)
    client.force_login(intruder)

    for name in ("progress", "generate", "export"):
        url = reverse(f"admin:coupons_couponbatch_{name}", args=[generated.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"partner_name": "X", "format": "csv"}).status_code == 404
    assert CouponCodeExport.objects.count() == 0
