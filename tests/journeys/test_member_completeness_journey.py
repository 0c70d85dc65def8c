"""Issue #16 end to end over the real HTTP API of a live server: a guest is refused a members-only coupon in
validate and best (with its reason), a coupon valid until the end of the day shows its exact end in the tenant's
zone, and the issue, redemption and refund reach the tenant's webhook receiver — a real HTTP server that checks each
delivery with the example of docs/WEBHOOKS.md."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.utils import timezone

from risk import services
from risk.models import WebhookEndpoint
from tests import factories
from tests.risk.webhook_receiver import lifecycle_receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app(live_server, tenant):
    token = factories.make_client(tenant)[1]
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}) as client:
        yield client


def test_guest_refusal_end_of_day_validity_and_lifecycle_webhooks_over_the_api(tenant, app, settings):
    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the receiver listens on 127.0.0.1
    tenant.time_zone = "Asia/Seoul"
    tenant.save(update_fields=["time_zone"])
    members_only, _ = factories.make_pool(tenant, size=5, policy=factories.make_approved_policy(
        tenant, audience="members", amount=3000))
    today_only, _ = factories.make_pool(tenant, size=5, policy=factories.make_approved_policy(
        tenant, amount=2000, validity_type="end_of_day", validity_days=0, valid_from=None, valid_until=None))
    order = factories.order(40_000, order_id="o-9")

    with lifecycle_receiver() as hook:
        hook.secret = services.webhook_endpoint_save(endpoint=WebhookEndpoint(
            tenant=tenant, name="crm", url=hook.url, events=["coupon.issued", "coupon.redeemed", "coupon.refunded"]),
            actor=factories.TEST_ACTOR).secret

        # A members-only coupon: a guest checking out with it is refused, with the reason, in validate and best.
        vip = app.post("/claims", json={"member_id": "shopper-1", "inventory": members_only.public_id})
        assert vip.status_code == 201, vip.text
        vip_code = vip.json()["coupon"]["code"]
        assert vip.json()["coupon"]["policy"]["audience"] == "members"
        guest = {"member_id": "shopper-1", "order": order, "buyer": "guest"}
        validated = app.post("/checkout/validate", json={**guest, "codes": [vip_code]}).json()
        assert (validated["valid"], validated["discount"]) == (False, 0)
        assert validated["rejected"] == [{"code": vip_code, "reason": "members_only",
                                          "message": "This coupon is for members only; a guest cannot use it."}]
        assert {"code": vip_code, "reason": "members_only",
                "message": "This coupon is for members only; a guest cannot use it."} in app.post(
            "/checkout/best", json=guest).json()["rejected"]
        korean = app.post("/checkout/validate", json={**guest, "codes": [vip_code]},
                          headers={"Accept-Language": "ko"}).json()["rejected"][0]
        assert (korean["reason"], korean["message"]) == ("members_only",
                                                          "회원 전용 쿠폰입니다. 비회원은 사용할 수 없습니다.")

        # A coupon valid until the end of the day of issue: its exact end, 23:59:59 in Seoul.
        before = timezone.now()
        today = app.post("/claims", json={"member_id": "shopper-1", "inventory": today_only.public_id})
        assert today.status_code == 201, today.text
        seoul_day = before.astimezone(ZoneInfo("Asia/Seoul")).date()
        if timezone.now().astimezone(ZoneInfo("Asia/Seoul")).date() != seoul_day:  # claimed across midnight
            seoul_day += timedelta(days=1)
        end = f"{seoul_day.isoformat()}T23:59:59+09:00"
        code = today.json()["coupon"]["code"]
        assert today.json()["coupon"]["valid_until"] == end
        assert app.get(f"/coupons/{code}").json()["valid_until"] == end
        assert datetime.fromisoformat(end) > before

        # The member pays with it, then the order is refunded in full.
        redeemed = app.post(f"/coupons/{code}/redeem", json={"member_id": "shopper-1", "order": order,
                                                              "buyer": "member"})
        assert redeemed.status_code == 200, redeemed.text
        refunded = app.post(f"/coupons/{code}/refund", json={"order_id": "o-9"})
        assert (refunded.status_code, refunded.json()["returned"]) == (200, True)

    # Each change reached the receiver once, signed and verified by the documented example.
    assert {r["answer"] for r in hook.requests} == {200}
    assert sorted(e["data"]["code"] for e in hook.events("coupon.issued")) == sorted([vip_code, code])
    (used,) = hook.events("coupon.redeemed")
    assert (used["data"]["code"], used["data"]["order_id"], used["data"]["discount"]) == (code, "o-9", 2000)
    assert used["data"]["valid_until"] == end
    (back,) = hook.events("coupon.refunded")
    assert (back["data"]["code"], back["data"]["status"]) == (code, "ISSUED")
    assert len({e["id"] for e in hook.processed}) == len(hook.requests) == 4
