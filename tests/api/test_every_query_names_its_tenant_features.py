"""#23 "Every query names its tenant", continued from test_every_query_names_its_tenant.py: the operator and feature
paths of the API (the client, grants and their job, revocations and batch actions, partner uploads and their job,
distributions, events, draws, rewards and points, exports, Idempotency-Key records), each run with the checker on
(tests/tenant_queries.py). Set-up runs outside the mode, the request (and the job it starts in-process) inside it;
each answer is the one the request gives without the mode."""
from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tests import factories
from tests.exports.conftest import sheet_rows

pytestmark = pytest.mark.django_db

ORDER = factories.order(40_000, order_id="o-1")


def claim(api, inventory, member="m-1"):
    response = api.post("/api/v1/claims", {"member_id": member, "inventory": inventory.public_id}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["coupon"]["code"]


# --- the client, idempotency -----------------------------------------------------------------------------------------

def test_get_the_client(api, member_client, every_query_names_its_tenant):
    with every_query_names_its_tenant():
        response = api.get("/api/v1/client")
    assert (response.status_code, response.json()["client"]) == (200, member_client[0].name), response.json()


def test_an_idempotency_key_stored_replayed_and_refused_for_another_body(api, tenant, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=3)
    body = {"member_id": "m-1", "inventory": inventory.public_id}
    with every_query_names_its_tenant():
        first = api.post("/api/v1/claims", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        again = api.post("/api/v1/claims", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        other = api.post("/api/v1/claims", {**body, "member_id": "m-2"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert again.json() == first.json()
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")


# --- grants, revocations, member coupons, batch actions --------------------------------------------------------------

def test_a_grant_at_once(operator_api, tenant, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=2)
    with every_query_names_its_tenant():
        response = operator_api.post("/api/v1/grants", {"inventory": inventory.public_id, "member_ids": ["a", "b", "c"]},
                                     format="json")
    assert response.status_code == 201, response.json()
    assert (len(response.json()["issued"]), response.json()["failed"]) == (2, [{"member_id": "c", "code": "sold_out"}])


def test_a_grant_as_a_job_and_its_status(operator_api, tenant, every_query_names_its_tenant, monkeypatch,
                                          django_capture_on_commit_callbacks):
    monkeypatch.setattr("coupons.services.grant.SYNC_GRANT_LIMIT", 2)  # three members make a job
    inventory, _codes = factories.make_pool(tenant, size=2)
    with every_query_names_its_tenant(), django_capture_on_commit_callbacks(execute=True):
        response = operator_api.post("/api/v1/grants", {"inventory": inventory.public_id, "member_ids": ["a", "b", "c"]},
                                     format="json")  # the job runs inline when the grant commits
    assert response.status_code == 202, response.json()
    with every_query_names_its_tenant():
        status = operator_api.get(f"/api/v1/grants/{response.json()['job']}")
        unknown = operator_api.get("/api/v1/grants/AAAAAAAAAAAAAAAA")
    assert {k: status.json()[k] for k in ("status", "total", "issued", "failed", "failures")} == {
        "status": "COMPLETED", "total": 3, "issued": 2, "failed": 1,
        "failures": [{"member_id": "c", "code": "sold_out"}]}
    assert unknown.status_code == 404


def test_a_grant_waiting_for_approval(operator_api, tenant, every_query_names_its_tenant):
    tenant.grant_approval_threshold = 2
    tenant.save(update_fields=["grant_approval_threshold"])
    inventory, _codes = factories.make_pool(tenant, size=2)
    with every_query_names_its_tenant():
        response = operator_api.post("/api/v1/grants", {"inventory": inventory.public_id, "member_ids": ["a", "b"]},
                                     format="json")
    assert response.status_code == 202, response.json()


def test_revocations(api, operator_api, tenant, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=2)
    code = claim(api, inventory)
    with every_query_names_its_tenant():
        response = operator_api.post("/api/v1/revocations", {"inventory": inventory.public_id,
                                                              "member_ids": ["m-1", "m-2"], "reason": "fraud"},
                                     format="json")
    assert response.status_code == 200, response.json()
    assert [(r["member_id"], r["revoked"]) for r in response.json()["results"]] == [("m-1", [code]), ("m-2", [])]


@pytest.mark.parametrize("state", ["usable", "used", "locked", "invalid", "all"])
def test_a_members_coupons_in_each_state(api, tenant, state, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=2, per_member_limit=2)
    usable, used = claim(api, inventory), claim(api, inventory)
    assert api.post(f"/api/v1/coupons/{used}/redeem", {"member_id": "m-1", "order_id": "o-1", "order": ORDER},
                    format="json").status_code == 200
    with every_query_names_its_tenant():
        response = api.get("/api/v1/members/m-1/coupons", {"state": state, "sku": "S1"})
    assert response.status_code == 200, response.json()
    expected = {"usable": [usable], "used": [used], "locked": [], "invalid": [], "all": sorted([usable, used])}[state]
    assert sorted(c["code"] for c in response.json()["results"]) == expected


def test_every_batch_action(api, operator_api, tenant, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=3, per_member_limit=3)
    codes = [claim(api, inventory) for _ in range(3)]

    def results(response):
        assert response.status_code == 200, response.json()
        return [(r["ok"], r.get("error", {}).get("code")) for r in response.json()["results"]]

    with every_query_names_its_tenant():
        locked = api.post("/api/v1/coupons/batch/lock", {"items": [
            {"code": codes[0], "member_id": "m-1", "order_id": "o-1", "order": ORDER},
            {"code": "NOPE", "member_id": "m-1", "order_id": "o-1", "order": ORDER}]}, format="json")
        released = api.post("/api/v1/coupons/batch/release", {"items": [{"code": codes[0], "order_id": "o-1"}]},
                            format="json")
        redeemed = api.post("/api/v1/coupons/batch/redeem", {"items": [
            {"code": codes[0], "member_id": "m-1", "order_id": "o-1", "order": ORDER},
            {"code": codes[1], "member_id": "m-2", "order_id": "o-2", "order": factories.order(order_id="o-2")},
            {"code": codes[2], "member_id": "m-1", "order_id": "o-3", "order": factories.order(order_id="o-3")}]},
            format="json")
        refunded = api.post("/api/v1/coupons/batch/refund", {"items": [{"code": codes[0], "order_id": "o-1"}]},
                            format="json")
        revoked = operator_api.post("/api/v1/coupons/batch/revoke", {"items": [
            {"code": codes[0], "reason": "fraud"}, {"code": codes[2], "reason": "fraud"}]}, format="json")
    assert results(locked) == [(True, None), (False, "not_found")]
    assert results(released) == [(True, None)]
    assert results(redeemed) == [(True, None), (False, "not_owner"), (True, None)]
    assert results(refunded) == [(True, None)]
    assert results(revoked) == [(True, None), (False, "already_used")]  # the refunded one; the used one is refused


# --- partner uploads and distributions -------------------------------------------------------------------------------

@pytest.fixture
def partner(tenant, monkeypatch):
    from partners.models import Partner

    # The test transaction never commits: the upload's mapping job starts at once (as tests/partners/conftest.py).
    monkeypatch.setattr("partners.services._after_commit", lambda fn: fn())
    return Partner.objects.create(tenant=tenant, name="GS Retail", code="GS25")


def upload(api, inventory, content: bytes, **headers):
    return api.post("/api/v1/partner-uploads", {"file": SimpleUploadedFile("codes.csv", content), "partner": "GS25",
                                                "inventory": inventory.public_id}, format="multipart", **headers)


def test_a_partner_upload_its_job_detail_failures_and_reprocess(operator_api, tenant, partner,
                                                                every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=3)
    with every_query_names_its_tenant():
        created = upload(operator_api, inventory, b"partner_code\nP0001\nAB$12\nP0002\n")  # the job runs inline
        upload_id = created.json()["id"]
        detail = operator_api.get(f"/api/v1/partner-uploads/{upload_id}")
        failures = operator_api.get(f"/api/v1/partner-uploads/{upload_id}/failures", {"reason": "bad_format"})
        reprocessed = operator_api.post(f"/api/v1/partner-uploads/{upload_id}/reprocess",
                                        {"rows": [{"line": 3, "value": "AB12"}]}, format="json")
        after = operator_api.get(f"/api/v1/partner-uploads/{upload_id}")
        again = upload(operator_api, inventory, b"partner_code\nP0001\nAB$12\nP0002\n")  # the same file
        unknown = operator_api.get("/api/v1/partner-uploads/AAAAAAAAAAAAAAAA")
    assert created.status_code == 202, created.json()
    assert {k: detail.json()[k] for k in ("status", "rows", "mapped", "failed")} == {
        "status": "DONE", "rows": 3, "mapped": 2, "failed": 1}
    assert [(f["line"], f["reason"]) for f in failures.json()["results"]] == [(3, "bad_format")]
    assert reprocessed.status_code == 202, reprocessed.json()
    assert {k: after.json()[k] for k in ("status", "mapped", "failed")} == {"status": "DONE", "mapped": 3, "failed": 0}
    assert (again.status_code, again.json()["id"]) == (202, upload_id)
    assert unknown.status_code == 404


def test_a_partner_upload_with_an_idempotency_key(operator_api, tenant, partner, every_query_names_its_tenant):
    inventory, _codes = factories.make_pool(tenant, size=2)
    with every_query_names_its_tenant():
        first = upload(operator_api, inventory, b"P0001\n", HTTP_IDEMPOTENCY_KEY="u-1")
        again = upload(operator_api, inventory, b"P0001\n", HTTP_IDEMPOTENCY_KEY="u-1")
    assert (first.status_code, again.status_code, again.json()) == (202, 202, first.json())


@pytest.fixture
def partners(tenant):
    from partners.services import partner_create

    return [partner_create(tenant=tenant, name=f"{code} stores", code=code, actor=factories.TEST_ACTOR)
            for code in ("GS25", "CU")]


def test_a_distribution_its_detail_codes_and_a_member_registering_one(api, operator_api, tenant, partners,
                                                                      every_query_names_its_tenant):
    inventory = factories.make_inventory(tenant, total_quantity=100, per_member_limit=1)
    batch = factories.make_batch(inventory, quantity=10)
    factories.make_codes(batch, 10)
    with every_query_names_its_tenant():
        created = operator_api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": "GS25",
                                                              "quantity": 3}, format="json")
        whole = operator_api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": "CU",
                                                            "batch": batch.batch_code}, format="json")
        dist_id = created.json()["id"]
        detail = operator_api.get(f"/api/v1/distributions/{dist_id}")
        codes = operator_api.get(f"/api/v1/distributions/{dist_id}/codes")
        lines = b"".join(codes.streaming_content).decode().split()
        registered = api.post("/api/v1/claims", {"member_id": "m-1", "code": lines[1]}, format="json")
        after = operator_api.get(f"/api/v1/distributions/{dist_id}")
        unknown = operator_api.get("/api/v1/distributions/AAAAAAAAAAAAAAAA")
    assert (created.status_code, whole.status_code) == (201, 201), (created.json(), whole.json())
    assert (whole.json()["quantity"], whole.json()["batch"]) == (7, batch.batch_code)  # the rest of the batch
    assert detail.json()["codes"] == {"reserved": 3, "waiting": 3, "registered": 0, "used": 0}
    assert (lines[0], len(lines)) == ("code", 4)
    assert (registered.status_code, registered.json()["coupon"]["code"]) == (201, lines[1]), registered.json()
    assert after.json()["codes"]["registered"] == 1
    assert unknown.status_code == 404


def test_a_distribution_waiting_for_approval(operator_api, tenant, partners, every_query_names_its_tenant):
    tenant.distribution_approval_threshold = 2
    tenant.save(update_fields=["distribution_approval_threshold"])
    inventory, _codes = factories.make_pool(tenant, size=3)
    with every_query_names_its_tenant():
        response = operator_api.post("/api/v1/distributions", {"inventory": inventory.public_id, "partner": "GS25",
                                                               "quantity": 2}, format="json")
        codes = operator_api.get(f"/api/v1/distributions/{response.json()['id']}/codes")
    assert response.status_code == 202, response.json()
    assert codes.status_code == 409


# --- events and draws ------------------------------------------------------------------------------------------------

def test_joining_and_leaving_an_event(api, tenant, every_query_names_its_tenant):
    event = factories.make_event(tenant, entries_per_member=2)
    with every_query_names_its_tenant():
        joined = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1", "channel": "ios"},
                          format="json")
        twice = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1"}, format="json")
        full = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1"}, format="json")
        left = api.delete(f"/api/v1/events/{event.public_id}/participants/m-1")
        nobody = api.delete(f"/api/v1/events/{event.public_id}/participants/m-2")
        unknown = api.post("/api/v1/events/ZZZZZZZZZZZZZZZZ/participants", {"member_id": "m-1"}, format="json")
    assert (joined.status_code, joined.json()["entry_no"], twice.json()["entry_no"]) == (201, 1, 2)
    assert (full.status_code, full.json()["code"]) == (409, "already_joined")
    assert (left.status_code, nobody.status_code, unknown.status_code) == (204, 404, 404)


def test_joining_an_allow_list_only_event(api, tenant, every_query_names_its_tenant):
    from events.models import EventAllowedMember

    event = factories.make_event(tenant, allow_list_only=True)
    EventAllowedMember.objects.create(tenant=tenant, event=event, member_id="m-1")
    with every_query_names_its_tenant():
        allowed = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1"}, format="json")
        refused = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-2"}, format="json")
    assert allowed.status_code == 201, allowed.json()
    assert (refused.status_code, refused.json()["code"]) == (422, "not_eligible")


def test_joining_an_event_for_members_who_redeemed_a_coupon(api, tenant, every_query_names_its_tenant):
    event = factories.make_event(tenant, require_redeemed_coupon=True)
    inventory, _codes = factories.make_pool(tenant, size=1, event=event)
    code = claim(api, inventory)
    assert api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order_id": "o-1", "order": ORDER},
                    format="json").status_code == 200
    with every_query_names_its_tenant():
        redeemed = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1"}, format="json")
        other = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-2"}, format="json")
    assert redeemed.status_code == 201, redeemed.json()
    assert (other.status_code, other.json()["details"]) == (422, {"reason": "no_redeemed_coupon"})


def test_an_events_draws_before_and_after_the_draw(api, tenant, every_query_names_its_tenant):
    from draws import services
    from tests.draws.helpers import ACTOR, committed_draw, ended_event_with

    event = ended_event_with(tenant, [f"m-{i}" for i in range(10)])
    draw = committed_draw(event, [("first", 1), ("second", 2)])
    with every_query_names_its_tenant():
        before = api.get(f"/api/v1/events/{event.public_id}/draws")
    services.draw_run(draw_id=draw.pk, actor=ACTOR)
    with every_query_names_its_tenant():
        after = api.get(f"/api/v1/events/{event.public_id}/draws")
        unknown = api.get("/api/v1/events/ZZZZZZZZZZZZZZZZ/draws")
    assert [(r["status"], r["winners"]) for r in before.json()] == [("COMMITTED", [])]
    (row,) = after.json()
    assert (row["status"], len(row["winners"]), row["participants_count"]) == ("DONE", 3, 10)
    assert unknown.status_code == 404


# --- rewards and points ----------------------------------------------------------------------------------------------

def test_reward_triggers(api, tenant, every_query_names_its_tenant):
    from tests.rewards.factories import make_rule

    inventory, _codes = factories.make_pool(tenant, size=2)
    make_rule(tenant, "review", review_text_points=500, review_image_points=2000, inventory=inventory)
    make_rule(tenant, "purchase_confirmed", purchase_rate_bp=100)
    body = {"member_id": "m-1", "trigger": "review", "reference": "r-1", "has_image": True}
    with every_query_names_its_tenant():
        first = api.post("/api/v1/rewards/triggers", body, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
        replayed = api.post("/api/v1/rewards/triggers", body, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
        again = api.post("/api/v1/rewards/triggers", body, format="json")
        purchase = api.post("/api/v1/rewards/triggers", {"member_id": "m-1", "trigger": "purchase_confirmed",
                                                         "reference": "o-1", "amount": 100_100}, format="json")
        no_rule = api.post("/api/v1/rewards/triggers", {"member_id": "m-1", "trigger": "signup", "reference": "s"},
                           format="json")
        points = api.get("/api/v1/members/m-1/points")
    assert (first.status_code, first.json()["grant"]["points"]) == (201, 2000), first.json()
    assert first.json()["grant"]["coupon"] is not None
    assert (replayed.json(), again.status_code) == (first.json(), 200)
    assert (purchase.status_code, purchase.json()["grant"]["points"]) == (201, 1000), purchase.json()
    assert no_rule.status_code == 422, no_rule.json()
    assert points.json()["balance"] == 3000


def test_points_spend_refund_and_exchange(api, tenant, every_query_names_its_tenant):
    from rewards import services
    from rewards.models import ExchangeOffer

    services.points_adjust(tenant=tenant, member_id="m-1", amount=1000, note="welcome", actor=factories.TEST_ACTOR,
                           valid_days=30)
    inventory, _codes = factories.make_pool(tenant, size=2)
    services.exchange_offer_save(offer=ExchangeOffer(tenant=tenant, inventory=inventory, points=400),
                                 actor=factories.TEST_ACTOR)
    with every_query_names_its_tenant():
        spent = api.post("/api/v1/members/m-1/points/spend", {"order_id": "o-1", "points": 300, "payable": 30_000},
                         format="json")
        twice = api.post("/api/v1/members/m-1/points/spend", {"order_id": "o-1", "points": 300}, format="json")
        too_much = api.post("/api/v1/members/m-1/points/spend", {"order_id": "o-2", "points": 5000}, format="json")
        refunded = api.post("/api/v1/members/m-1/points/refund", {"order_id": "o-1"}, format="json")
        refund_again = api.post("/api/v1/members/m-1/points/refund", {"order_id": "o-1"}, format="json")
        exchanged = api.post("/api/v1/members/m-1/points/exchange", {"inventory": inventory.public_id},
                             format="json", HTTP_IDEMPOTENCY_KEY="x-1")
        points = api.get("/api/v1/members/m-1/points", {"limit": 10})
    assert (spent.status_code, spent.json()["payable"], spent.json()["balance"]) == (201, 29_700, 700)
    assert twice.status_code == 200
    assert (too_much.status_code, too_much.json()["code"]) == (422, "insufficient_points")
    assert (refunded.json()["refunded"], refund_again.json()["refunded"]) == (True, False)
    assert (exchanged.status_code, exchanged.json()["balance"]) == (201, 600), exchanged.json()
    assert points.json()["balance"] == 600


# --- exports ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def done_export(tenant, settings, tmp_path):
    """A DONE export with its file in storage, made outside the mode (the builder reads on its own connection)."""
    from exports.models import Export
    from exports.services import storage_name

    settings.MEDIA_ROOT = str(tmp_path / "media")
    export = Export.objects.create(tenant=tenant, kind="issues", filters={}, description="all")
    name = default_storage.save(storage_name(export), ContentFile(b"PK fake xlsx"))
    Export.objects.filter(pk=export.pk).update(status="DONE", file=name, file_size=12, rows_done=1, rows_total=1,
                                               finished_at=timezone.now())
    return export


def test_an_export_requested_watched_and_downloaded(operator_api, tenant, done_export, every_query_names_its_tenant,
                                                    django_capture_on_commit_callbacks):
    inventory, _codes = factories.make_pool(tenant, size=1)
    payload = {"kind": "issues", "inventory": inventory.public_id, "event": inventory.event.public_id}
    with every_query_names_its_tenant(), django_capture_on_commit_callbacks() as queued:
        created = operator_api.post("/api/v1/exports", payload, format="json", HTTP_IDEMPOTENCY_KEY="e-1")
        replayed = operator_api.post("/api/v1/exports", payload, format="json", HTTP_IDEMPOTENCY_KEY="e-1")
        pending = operator_api.get(f"/api/v1/exports/{created.json()['id']}")
        not_ready = operator_api.get(f"/api/v1/exports/{created.json()['id']}/download",
                                     HTTP_ACCEPT="application/json")
        done = operator_api.get(f"/api/v1/exports/{done_export.public_id}")
        download = operator_api.get(f"/api/v1/exports/{done_export.public_id}/download")
        body = b"".join(download.streaming_content)
        unknown = operator_api.get("/api/v1/exports/AAAAAAAAAAAAAAAA")
    assert (created.status_code, replayed.json(), len(queued)) == (202, created.json(), 1), created.json()
    assert (pending.json()["status"], not_ready.status_code) == ("PENDING", 409)
    assert done.json()["download_url"] == f"/api/v1/exports/{done_export.public_id}/download"
    assert (download.status_code, body) == (200, b"PK fake xlsx")
    assert unknown.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_an_export_job_runs_in_the_mode(tenant, settings, tmp_path, every_query_names_its_tenant):
    """The job POST /exports queues, run when the request commits (the builder reads the rows on its own connection,
    which sees committed rows only: hence a transactional test)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    api, operator_api = factories.make_api(tenant), factories.make_operator_api(tenant)
    inventory, _codes = factories.make_pool(tenant, size=2)
    code = claim(api, inventory)
    with every_query_names_its_tenant():
        created = operator_api.post("/api/v1/exports", {"kind": "issues", "inventory": inventory.public_id},
                                    format="json")
        status = operator_api.get(f"/api/v1/exports/{created.json()['id']}")
        download = operator_api.get(status.json()["download_url"])
        body = b"".join(download.streaming_content)
    assert (status.json()["status"], status.json()["rows_done"]) == ("DONE", 1), status.json()
    assert download.status_code == 200
    assert [row for row in sheet_rows(body)[1:] if code in row]  # the one issue, in the file
