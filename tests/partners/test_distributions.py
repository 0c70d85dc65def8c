"""Flow 1 — our codes handed to a partner (seed 001 §2.1, R-PART-4): a distribution reserves its codes once, in one
transaction; nothing else can take them; members register them; bad input reserves nothing."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse

from core.models import AuditLog
from coupons.services import issue as issuing
from coupons.services import grant as grants
from coupons.services.lifecycle import coupons_expire
from coupons.models import CouponCode, CouponIssue
from partners import distribution
from partners.models import Distribution, Partner
from partners.services import partner_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant):
    inventory = factories.make_inventory(tenant, total_quantity=1000, per_member_limit=1)
    codes = factories.make_codes(factories.make_batch(inventory, quantity=30), 30)
    partner = partner_create(tenant=tenant, name="GS25 stores", code="GS25", actor=factories.TEST_ACTOR)
    other = partner_create(tenant=tenant, name="CU stores", code="CU", actor=factories.TEST_ACTOR)
    return inventory, codes, partner, other


def distribute(api, inventory, partner="GS25", quantity=10):
    return api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": partner,
                                              "quantity": quantity}, format="json")


def csv_codes(response) -> list[str]:
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["code"]
    return [r[0] for r in rows[1:]]


def distributed(dist_id: int | None = None) -> list[str]:
    qs = CouponCode.objects.filter(status="DISTRIBUTED")
    if dist_id is not None:
        qs = qs.filter(distribution_id=dist_id)
    return list(qs.order_by("id").values_list("code", flat=True))


def test_a_distribution_reserves_exactly_its_codes_and_the_file_holds_them_in_id_order(tenant, world):
    inventory, codes, _partner, _other = world
    api = factories.make_operator_api(tenant)
    response = distribute(api, inventory, quantity=10)
    assert response.status_code == 201, response.json()
    body = response.json()
    dist = Distribution.objects.get(public_id=body["id"])
    assert (body["quantity"], body["partner"], body["inventory"], body["batch"]) == (10, "GS25", inventory.public_id,
                                                                                   None)
    assert body["codes"] == {"reserved": 10, "waiting": 10, "registered": 0, "used": 0}
    assert distributed(dist.pk) == [c.code for c in codes[:10]]  # the pool's first ten, in id order
    first = api.get(f"/api/v1/distributions/{dist.public_id}/codes")
    assert first.status_code == 200 and first["Content-Type"].startswith("text/csv")
    assert csv_codes(first) == distributed(dist.pk)
    assert csv_codes(api.get(f"/api/v1/distributions/{dist.public_id}/codes")) == distributed(dist.pk)  # again
    audit = AuditLog.objects.get(action="distribution.create")
    assert audit.after == {"public_id": dist.public_id, "partner": "GS25", "inventory": inventory.public_id,
                           "batch": None, "quantity": 10}
    assert AuditLog.objects.filter(action="distribution.download", object_id=str(dist.pk)).count() == 2


def test_a_second_distribution_gets_other_codes_and_the_pool_never_hands_out_distributed_ones(tenant, world, api):
    inventory, _codes, _partner, _other = world
    ops = factories.make_operator_api(tenant)
    one = distribute(ops, inventory, quantity=10).json()
    two = distribute(ops, inventory, partner="cu", quantity=10).json()
    first = set(distributed(Distribution.objects.get(public_id=one["id"]).pk))
    second = set(distributed(Distribution.objects.get(public_id=two["id"]).pk))
    assert len(first) == len(second) == 10 and not first & second
    claimed = [api.post("/api/v1/claims", {"member_id": f"m-{i}", "inventory": inventory.public_id},
                        format="json") for i in range(11)]
    assert [r.status_code for r in claimed] == [201] * 10 + [422]
    assert claimed[-1].json()["code"] == "sold_out"  # 30 codes: 20 with partners, 10 claimed
    assert not {r.json()["coupon"]["code"] for r in claimed[:10]} & (first | second)


def test_grants_and_partner_uploads_never_take_distributed_codes(tenant, world):
    inventory, _codes, _partner, _other = world
    distribution.distribution_create(tenant=tenant, inventory=inventory, partner=world[2], quantity=30,
                                     actor=factories.TEST_ACTOR)
    result = grants.grant_create(tenant=tenant, inventory_public_id=inventory.public_id, member_ids=["g-1"],
                                  ctx=issuing.RequestContext())
    assert result.failed == [{"member_id": "g-1", "code": "sold_out"}]
    from django.core.files.uploadedfile import SimpleUploadedFile

    from partners.services import partner_upload_create, partner_upload_process

    upload, _ = partner_upload_create(tenant=tenant, partner_code="CU", inventory_public_id=inventory.public_id,
                                      uploaded=SimpleUploadedFile("c.csv", b"CU0001\n"), actor=factories.TEST_ACTOR)
    upload = partner_upload_process(upload_id=upload.pk, tenant_id=upload.tenant_id)
    assert (upload.mapped, upload.failed) == (0, 1)
    assert len(distributed()) == 30


def test_a_member_registers_a_distributed_code_and_the_distribution_counts_it(tenant, world, api):
    inventory, _codes, partner, _other = world
    dist = distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=5,
                                            actor=factories.TEST_ACTOR)
    code = distributed(dist.pk)[2]
    response = api.post("/api/v1/claims", {"member_id": "m-1", "code": code.lower()}, format="json")
    assert response.status_code == 201, response.json()
    coupon = CouponCode.objects.get(code=code)
    assert (coupon.status, coupon.member_id, coupon.distribution_id) == ("ISSUED", "m-1", dist.pk)
    assert CouponIssue.objects.get(coupon=coupon).via == "code"
    again = api.post("/api/v1/claims", {"member_id": "m-2", "code": code}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "already_claimed")
    limit = api.post("/api/v1/claims", {"member_id": "m-1", "code": distributed(dist.pk)[0]}, format="json")
    assert (limit.status_code, limit.json()["code"]) == (409, "already_claimed")  # the inventory's limit of 1
    redeem = api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order_id": "o-1",
                                                        "order": factories.order()}, format="json")
    assert redeem.status_code == 200, redeem.json()
    stats = distribution.distribution_stats(dist)
    assert (stats.reserved, stats.waiting, stats.registered, stats.used) == (5, 4, 1, 1)
    detail = factories.make_operator_api(tenant).get(f"/api/v1/distributions/{dist.public_id}").json()
    assert detail["codes"] == {"reserved": 5, "waiting": 4, "registered": 1, "used": 1}


def test_a_whole_batch_is_distributed_when_no_quantity_is_given(tenant, world):
    inventory, _codes, partner, _other = world
    batch = factories.make_batch(inventory, quantity=4)
    extra = factories.make_codes(batch, 4)
    dist = distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, batch=batch,
                                            quantity=None, actor=factories.TEST_ACTOR)
    assert dist.quantity == 4
    assert distributed(dist.pk) == [c.code for c in extra]


@pytest.mark.parametrize("quantity, code", [
    (0, "invalid"), (-5, "invalid"), ("ten", "invalid"), (1.5, "invalid"), (True, "invalid"), (None, "invalid"),
    (10_000_001, "invalid"), (31, "not_enough_codes"),
])
def test_a_bad_quantity_is_refused_with_its_reason_and_nothing_is_reserved(tenant, world, quantity, code):
    inventory, _codes, _partner, _other = world
    response = distribute(factories.make_operator_api(tenant), inventory, quantity=quantity)
    assert response.status_code == (422 if code == "not_enough_codes" else 400), response.json()
    body = response.json()
    assert body["code"] == code and body["message"]
    if code == "not_enough_codes":
        assert body["details"] == {"available": 30, "quantity": 31}
        assert "30" in body["message"] and "31" in body["message"]
    else:
        assert list(body["details"]["fields"]) == ["quantity"]
    assert Distribution.objects.count() == 0 and distributed() == []


def test_an_unknown_partner_or_another_tenants_inventory_or_partner_is_404_and_reserves_nothing(
        tenant, other_tenant, world):
    inventory, _codes, _partner, _other = world
    foreign_inventory, _ = factories.make_pool(other_tenant, size=5)
    partner_create(tenant=other_tenant, name="Foreign", code="FOREIGN", actor=factories.TEST_ACTOR)
    api = factories.make_operator_api(tenant)
    unknown = distribute(api, inventory, partner="NOSUCH")
    foreign_partner = distribute(api, inventory, partner="FOREIGN")
    foreign_pool = distribute(api, foreign_inventory)
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["details"]) == (
        404, "partner_not_found", {"field": "partner"})
    assert (foreign_partner.status_code, foreign_partner.json()["code"]) == (404, "partner_not_found")
    assert (foreign_pool.status_code, foreign_pool.json()["code"]) == (404, "not_found")
    bad_id = distribute(api, type("I", (), {"public_id": "not-an-id"})())
    assert (bad_id.status_code, list(bad_id.json()["details"]["fields"])) == (400, ["inventory"])
    assert Distribution.objects.count() == 0 and not CouponCode.objects.filter(status="DISTRIBUTED").exists()


def test_distributions_are_operator_only_and_another_tenants_distribution_is_not_found(
        tenant, other_tenant, world, api):
    inventory, _codes, partner, _other = world
    assert distribute(api, inventory).status_code == 403  # a member-app token
    dist = distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=2,
                                            actor=factories.TEST_ACTOR)
    intruder = factories.make_operator_api(other_tenant)
    assert intruder.get(f"/api/v1/distributions/{dist.public_id}").status_code == 404
    assert intruder.get(f"/api/v1/distributions/{dist.public_id}/codes").status_code == 404
    assert api.get(f"/api/v1/distributions/{dist.public_id}/codes").status_code == 403


def test_distributed_codes_expire_with_their_policy_and_can_be_revoked(tenant, world):
    inventory, _codes, partner, _other = world
    dist = distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=3,
                                            actor=factories.TEST_ACTOR)
    revoked = distributed(dist.pk)[0]
    from coupons.services.lifecycle import coupon_revoke

    assert coupon_revoke(tenant=tenant, code=revoked, reason="misprint", ctx=issuing.RequestContext()).status == \
        "REVOKED"
    after_policy = inventory.policy.valid_until + timedelta(seconds=1)
    assert coupons_expire(now=after_policy) == 29  # every unissued code of the pool, distributed ones too
    assert list(CouponCode.objects.filter(distribution_id=dist.pk).order_by("id").values_list("status", flat=True)
                ) == ["REVOKED", "EXPIRED", "EXPIRED"]


def test_the_database_refuses_a_distributed_code_without_its_distribution(tenant, world):
    from django.db import IntegrityError, transaction

    code = world[1][0]
    with pytest.raises(IntegrityError, match="code_distributed_has_distribution"), transaction.atomic():
        CouponCode.objects.filter(pk=code.pk).update(status="DISTRIBUTED")
    with pytest.raises(IntegrityError, match="code_unissued_has_no_member"), transaction.atomic():
        CouponCode.objects.filter(pk=code.pk).update(status="DISTRIBUTED", distribution_id=1, member_id="m-1")


# --- console ---------------------------------------------------------------------------------------------------------

def test_the_console_distributes_from_a_batch_and_the_file_can_be_downloaded_again(client, tenant, world):
    inventory, _codes, partner, _other = world
    batch = factories.make_batch(inventory, quantity=6)
    factories.make_codes(batch, 6)
    operator = factories.make_operator(tenant)
    client.force_login(operator)
    url = reverse("admin:partners_distribution_distribute")
    response = client.post(f"{url}?batch={batch.pk}", {"inventory": inventory.pk, "batch": batch.pk,
                                                        "partner": partner.pk, "quantity": 4})
    dist = Distribution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:partners_distribution_change", args=[dist.pk])
    assert (dist.quantity, dist.batch, dist.created_by, dist.actor_label) == (4, batch, operator, operator.username)
    page = client.get(response["Location"]).content.decode()
    assert reverse("admin:partners_distribution_csv", args=[dist.pk]) in page
    first = client.get(reverse("admin:partners_distribution_csv", args=[dist.pk]))
    again = client.get(reverse("admin:partners_distribution_csv", args=[dist.pk]))
    assert csv_codes(first) == csv_codes(again) == distributed(dist.pk)
    assert len(distributed(dist.pk)) == 4 and Distribution.objects.count() == 1  # reserved once


def test_the_console_refuses_more_codes_than_available_on_the_form_and_reserves_nothing(client, tenant, world):
    inventory, _codes, partner, _other = world
    client.force_login(factories.make_operator(tenant))
    response = client.post(reverse("admin:partners_distribution_distribute"),
                           {"inventory": inventory.pk, "partner": partner.pk, "quantity": 31})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Only 30 codes are available; 31 were asked for. Nothing was reserved."]
    missing = client.post(reverse("admin:partners_distribution_distribute"), {"inventory": inventory.pk})
    assert set(missing.context["form"].errors) == {"partner", "quantity"}
    assert Distribution.objects.count() == 0 and distributed() == []


def test_the_console_says_how_to_add_a_partner_when_there_is_none(client, tenant):
    factories.make_pool(tenant, size=1)
    client.force_login(factories.make_operator(tenant))
    page = client.get(reverse("admin:partners_distribution_distribute")).content.decode()
    assert 'id="no-partners"' in page and reverse("admin:partners_partner_add") in page


@pytest.mark.django_db(transaction=True)  # the export job reads on its own connection: the rows must be committed
def test_the_xlsx_of_a_distribution_is_written_by_the_export_job(client, tenant, world):
    from openpyxl import load_workbook

    from exports.models import Export

    inventory, _codes, partner, _other = world
    dist = distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=3,
                                            actor=factories.TEST_ACTOR)
    client.force_login(factories.make_operator(tenant))
    response = client.post(reverse("admin:exports_export_distribution", args=[dist.pk]))
    assert response.status_code == 302
    export = Export.objects.get()
    assert (export.kind, export.filters, export.status, export.rows_done) == (
        "codes", {"distribution": dist.public_id}, "DONE", 3)
    download = client.get(reverse("admin:exports_export_download", args=[export.pk]))
    sheet = load_workbook(io.BytesIO(b"".join(download.streaming_content)), read_only=True).worksheets[0]
    assert [r[0] for r in sheet.iter_rows(values_only=True)] == ["code", *distributed(dist.pk)]


def test_demo_data_names_its_partner(db, settings, tmp_path):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path

    out = io.StringIO()
    call_command("demo_data", "--json", stdout=out)
    import json

    data = json.loads(out.getvalue())
    assert data["partner"] == "GS25"
    assert Partner.objects.filter(tenant__slug=data["tenant"], code="GS25").exists()


def test_the_api_distributes_a_whole_batch_or_part_of_one_and_refuses_an_unknown_batch(tenant, world):
    inventory, _codes, _partner, _other = world
    batch = factories.make_batch(inventory, quantity=6, batch_code="PRINT-RUN-2")
    extra = factories.make_codes(batch, 6)
    api = factories.make_operator_api(tenant)
    part = api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": "GS25",
                                              "batch": "PRINT-RUN-2", "quantity": 2}, format="json")
    assert (part.status_code, part.json()["batch"], part.json()["quantity"]) == (201, "PRINT-RUN-2", 2)
    whole = api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": "CU",
                                               "batch": "PRINT-RUN-2"}, format="json")
    assert (whole.status_code, whole.json()["quantity"]) == (201, 4)
    assert distributed() == [c.code for c in extra]
    unknown = api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": "CU",
                                                 "batch": "NO-SUCH-RUN", "quantity": 1}, format="json")
    assert (unknown.status_code, unknown.json()["code"], unknown.json()["details"]) == (
        404, "not_found", {"field": "batch"})
    empty = api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": "CU",
                                               "batch": "PRINT-RUN-2"}, format="json")
    assert (empty.status_code, empty.json()["code"]) == (422, "not_enough_codes")
    assert Distribution.objects.count() == 2
