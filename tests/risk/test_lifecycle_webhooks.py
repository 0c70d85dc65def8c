"""Issue #16: lifecycle webhooks through the signed outbox — coupon.issued / redeemed / refunded written with their
change, coupon.expiring / expired and points.expiring by a scan, once each; per-endpoint event selection; a receiver
that is down is retried until it answers, and sees each event once (the event id), verified with the example of
docs/WEBHOOKS.md. The receiver is a real HTTP server (tests/risk/webhook_receiver.py)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.exceptions import InvalidInput
from coupons.models import CouponCode
from rewards.models import PointsEntry
from risk import services, webhooks
from risk.models import WebhookDelivery, WebhookEndpoint
from ops.webhook_scans import webhook_events_scan
from tests import factories
from tests.risk.webhook_receiver import lifecycle_receiver

pytestmark = pytest.mark.django_db

ORDER = factories.order(40_000, order_id="o-77")
LIFECYCLE = ["coupon.issued", "coupon.redeemed", "coupon.refunded"]


@pytest.fixture(autouse=True)
def allow_private_receivers(settings):
    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the receiver is 127.0.0.1
    settings.COUPON_WEBHOOK_JOB_ATTEMPTS = 1  # one attempt per job: the retries below are the cron's


def endpoint_for(tenant, url, events, **fields):
    return services.webhook_endpoint_save(
        endpoint=WebhookEndpoint(tenant=tenant, name=f"hook {len(events)}", url=url, events=events, **fields),
        actor=factories.TEST_ACTOR)


def claim_redeem_refund(api, tenant, capture):
    inventory, _ = factories.make_pool(tenant, size=2)
    with capture(execute=True):
        code = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                        format="json").json()["coupon"]["code"]
    with capture(execute=True):
        assert api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": "m-1", "order": ORDER},
                        format="json").status_code == 200
    with capture(execute=True):
        assert api.post(f"/api/v1/coupons/{code}/refund", {"order_id": "o-77"}, format="json").status_code == 200
    return inventory, CouponCode.objects.select_related("inventory__policy").get(code=code)


def cron_until_quiet():
    for _ in range(3):  # due now each time: what a day of cron runs would do, without waiting for the backoff
        WebhookDelivery.objects.filter(status="PENDING").update(next_attempt_at=timezone.now())
        call_command("deliver_webhooks")


def test_a_receiver_down_for_three_attempts_then_up_gets_each_event_once_and_verifies_it(
        api, tenant, django_capture_on_commit_callbacks):
    with lifecycle_receiver(down_for=3) as hook:
        endpoint = endpoint_for(tenant, hook.url, LIFECYCLE)
        hook.secret = endpoint.secret
        inventory, coupon = claim_redeem_refund(api, tenant, django_capture_on_commit_callbacks)
        # each event was tried at once, at commit, and refused: three attempts, the receiver down
        assert [r["answer"] for r in hook.requests] == [503, 503, 503]
        assert sorted(WebhookDelivery.objects.values_list("status", "attempts")) == [("PENDING", 1)] * 3
        cron_until_quiet()
    answers = [r["answer"] for r in hook.requests]
    assert answers == [503, 503, 503, 200, 200, 200]  # up again: each delivered once, nothing more
    assert sorted(WebhookDelivery.objects.values_list("status", "attempts")) == [("DELIVERED", 2)] * 3
    assert [e["event"] for e in sorted(hook.processed, key=lambda e: LIFECYCLE.index(e["event"]))] == LIFECYCLE
    ids = {e["id"] for e in hook.processed}
    assert len(ids) == 3
    for request in hook.requests:  # a retry sends the same bytes, the same event id
        event = json.loads(request["body"])
        assert request["headers"]["X-Coupon-Event-Id"] == event["id"] and event["id"] in ids
    redeemed = hook.events("coupon.redeemed")[0]
    usage = coupon.usages.get()
    zone = "+09:00"
    assert redeemed["data"] == {
        "code": coupon.code, "member_id": "m-1", "inventory": inventory.public_id,
        "policy": inventory.policy.public_id, "valid_until": webhooks.event_time(coupon.valid_until, tenant.time_zone),
        "order_id": "o-77", "order_amount": 43_000, "discount": 5000,
        "used_at": webhooks.event_time(usage.used_at, tenant.time_zone)}
    assert redeemed["tenant"] == tenant.slug and redeemed["occurred_at"].endswith(zone)
    assert hook.events("coupon.refunded")[0]["data"]["status"] == "ISSUED"
    assert hook.events("coupon.issued")[0]["data"]["via"] == "inventory"


def test_an_answer_lost_on_the_way_back_brings_the_event_again_and_the_receiver_sees_it_once(
        api, tenant, django_capture_on_commit_callbacks):
    with lifecycle_receiver() as hook:
        hook.secret = endpoint_for(tenant, hook.url, ["coupon.issued"]).secret
        hook.drop_answer_once = True
        inventory, _ = factories.make_pool(tenant, size=1)
        with django_capture_on_commit_callbacks(execute=True):
            api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
        cron_until_quiet()
    assert [r["answer"] for r in hook.requests] == ["dropped", 200]
    assert len(hook.processed) == 1  # the repeat had the same event id: the documented handler ignored it
    assert WebhookDelivery.objects.get().status == "DELIVERED"


def test_a_forged_or_stale_delivery_fails_the_documented_check(tenant):
    from tests.risk.webhook_receiver import documented_example

    example = documented_example()
    body = b'{"id":"evt_1","event":"coupon.issued"}'
    good = {"X-Coupon-Signature": webhooks.sign("whsec_x", body), "X-Coupon-Timestamp": str(int(
        timezone.now().timestamp()))}
    assert example["verify_webhook"]("whsec_x", good, body)["id"] == "evt_1"
    with pytest.raises(ValueError, match="bad signature"):
        example["verify_webhook"]("whsec_other", good, body)
    with pytest.raises(ValueError, match="stale timestamp"):
        example["verify_webhook"]("whsec_x", {**good, "X-Coupon-Timestamp": "1000"}, body)


def test_each_endpoint_gets_only_the_events_it_chose(api, tenant, django_capture_on_commit_callbacks):
    with lifecycle_receiver() as redeems, lifecycle_receiver() as everything:
        redeems.secret = endpoint_for(tenant, redeems.url, ["coupon.redeemed"]).secret
        everything.secret = endpoint_for(tenant, everything.url, LIFECYCLE).secret
        alarms_only = WebhookEndpoint.objects.create(tenant=tenant, name="old", url=everything.url + "/old")
        claim_redeem_refund(api, tenant, django_capture_on_commit_callbacks)
    assert [e["event"] for e in redeems.processed] == ["coupon.redeemed"]
    assert sorted(e["event"] for e in everything.processed) == sorted(LIFECYCLE)
    assert alarms_only.events == ["budget.alarm"] and not alarms_only.deliveries.exists()


def test_expiring_and_expired_coupons_and_expiring_points_are_sent_once_each(tenant, api):
    now = timezone.now()
    policy = factories.make_approved_policy(tenant, valid_until=now + timedelta(days=2))
    inventory, _ = factories.make_pool(tenant, size=3, policy=policy)
    codes = [api.post("/api/v1/claims", {"member_id": f"m-{i}", "inventory": inventory.public_id},
                      format="json").json()["coupon"]["code"] for i in range(3)]
    with lifecycle_receiver() as hook:
        endpoint = endpoint_for(tenant, hook.url, ["coupon.expiring", "coupon.expired", "points.expiring"],
                                notice_days=3)
        hook.secret = endpoint.secret
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(created_at=now - timedelta(days=1))
        CouponCode.objects.filter(code=codes[2]).update(valid_until=now - timedelta(hours=1))  # ended an hour ago
        far = PointsEntry.objects.create(tenant=tenant, member_id="m-0", amount=300, remaining=300, reason="grant",
                                         expires_at=now + timedelta(days=10))
        soon = PointsEntry.objects.create(tenant=tenant, member_id="m-0", amount=500, remaining=200, reason="grant",
                                          expires_at=now + timedelta(days=1), reference="signup:signup")
        with transaction.atomic():
            first = webhook_events_scan(now=now)
        call_command("scan_webhook_events")  # again (and later): nothing twice
        cron_until_quiet()
    assert first == {"endpoints": 1, "coupon.expiring": 2, "coupon.expired": 1, "points.expiring": 1}
    assert sorted(e["data"]["code"] for e in hook.events("coupon.expiring")) == sorted(codes[:2])
    assert [e["data"]["code"] for e in hook.events("coupon.expired")] == [codes[2]]
    (points,) = hook.events("points.expiring")
    assert points["data"] == {"member_id": "m-0", "points": 200, "reference": "signup:signup",
                              "expires_at": webhooks.event_time(soon.expires_at, tenant.time_zone)}
    assert len(hook.requests) == 4 and far.pk != soon.pk


def test_the_database_holds_once_per_coupon_even_if_the_scan_forgot_to_look(tenant):
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, name="e", url="https://example.com/h",
                                              events=["coupon.expiring"])
    with transaction.atomic():
        webhooks.outbox_add(tenant_id=tenant.pk, event="coupon.expiring", data={}, key="coupon.expiring:1",
                            endpoints=[endpoint])
    with transaction.atomic():  # ON CONFLICT DO NOTHING: no second delivery
        assert webhooks.outbox_add(tenant_id=tenant.pk, event="coupon.expiring", data={}, key="coupon.expiring:1",
                                   endpoints=[endpoint]) == []
    assert WebhookDelivery.objects.filter(event_key="coupon.expiring:1").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(tenant=tenant, endpoint=endpoint, event="coupon.expiring", body="{}",
                                       event_key="coupon.expiring:1", next_attempt_at=timezone.now())


@pytest.mark.parametrize("fields, message", [
    ({"events": []}, "Choose one or more of the events"),
    ({"events": ["coupon.stolen"]}, "Choose one or more of the events"),
    ({"events": ["coupon.issued"], "notice_days": 0}, "The notice is 1 to 90 days."),
    ({"events": ["coupon.issued"], "notice_days": 91}, "The notice is 1 to 90 days."),
])
def test_an_endpoint_with_bad_events_or_notice_is_refused_and_not_saved(tenant, fields, message):
    with pytest.raises(InvalidInput, match=message):
        services.webhook_endpoint_save(endpoint=WebhookEndpoint(tenant=tenant, name="x", url="https://example.com/h",
                                                                **fields), actor=factories.TEST_ACTOR)
    assert not WebhookEndpoint.objects.exists()


def test_rows_written_by_the_code_before_these_columns_get_their_defaults_from_the_database(tenant):
    """R-OPS-4: during a rolling deploy the previous code inserts without the new columns."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO risk_webhookendpoint (tenant_id, name, url, secret, is_active, created_at) "
                       "VALUES (%s, 'old', 'https://example.com/h', 'whsec_old', true, now()) RETURNING id",
                       [tenant.pk])
        endpoint = WebhookEndpoint.objects.get(pk=cursor.fetchone()[0])
        cursor.execute("INSERT INTO risk_webhookdelivery (tenant_id, endpoint_id, event, body, status, attempts, "
                       "next_attempt_at, last_error, created_at) VALUES (%s, %s, 'budget.alarm', '{}', 'PENDING', 0, "
                       "now(), '', now()) RETURNING event_id, event_key", [tenant.pk, endpoint.pk])
        assert cursor.fetchone() == ("", "")
    assert (endpoint.events, endpoint.notice_days) == (["budget.alarm"], 3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT column_default, is_nullable FROM information_schema.columns "
                       "WHERE table_name = 'coupons_couponpolicy' AND column_name IN ('audience_tiers', "
                       "'validity_days') ORDER BY column_name")
        (tiers_default, tiers_nullable), (_, days_nullable) = cursor.fetchall()
    assert tiers_default is not None and "{}" in tiers_default and (tiers_nullable, days_nullable) == ("NO", "YES")


def test_the_console_sends_a_given_up_delivery_again_and_it_arrives_once(
        api, tenant, client, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from core.models import AuditLog

    with lifecycle_receiver(down_for=webhooks.MAX_ATTEMPTS) as hook:
        hook.secret = endpoint_for(tenant, hook.url, ["coupon.issued"]).secret
        inventory, _ = factories.make_pool(tenant, size=1)
        with django_capture_on_commit_callbacks(execute=True):
            api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id}, format="json")
        for _ in range(webhooks.MAX_ATTEMPTS):
            cron_until_quiet()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("FAILED", webhooks.MAX_ATTEMPTS)
        client.force_login(factories.make_operator(tenant))
        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(reverse("admin:risk_webhookdelivery_changelist"),
                                 {"action": "retry", "_selected_action": [delivery.pk]}, follow=True)
        assert "1 failed delivery will be sent again." in answer.content.decode()
        with django_capture_on_commit_callbacks(execute=True):  # delivered now: nothing to send again
            client.post(reverse("admin:risk_webhookdelivery_changelist"),
                        {"action": "retry", "_selected_action": [delivery.pk]})
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("DELIVERED", 1)
    assert [r["answer"] for r in hook.requests] == [503] * webhooks.MAX_ATTEMPTS + [200]
    assert len(hook.processed) == 1
    assert AuditLog.objects.filter(action="risk.webhook_retry", object_id=str(delivery.pk)).count() == 1
