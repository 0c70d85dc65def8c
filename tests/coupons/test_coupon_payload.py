"""The hot-path Coupon renderer and the documented CouponSerializer give the same object, in every state."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from coupons.api.serializers import CouponSerializer, coupon_payload
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode
from tests import factories


@pytest.mark.parametrize("state", ["AVAILABLE", "ISSUED", "LOCKED", "USED", "REVOKED", "PAST_VALIDITY"])
def test_payload_equals_the_serializer(tenant, state):
    inventory, codes = factories.make_pool(tenant, size=2)
    coupon = codes[0]
    if state != "AVAILABLE":
        coupon = issue_from_pool(inventory=inventory, member_id="m", via="grant", ctx=RequestContext())
    now = timezone.now()
    updates = {"LOCKED": {"status": "LOCKED", "locked_order_id": "o", "locked_at": now},
               "USED": {"status": "USED", "used_at": now}, "REVOKED": {"status": "REVOKED"},
               "PAST_VALIDITY": {"valid_until": now - timedelta(seconds=1)}}.get(state)
    if updates:
        CouponCode.objects.filter(pk=coupon.pk).update(**updates)
    row = CouponCode.objects.select_related("inventory__policy", "batch").get(pk=coupon.pk)
    assert coupon_payload(row, now) == CouponSerializer(row, context={"now": now}).data
