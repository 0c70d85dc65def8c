"""The coupon lifecycle's webhook events (issue #16; docs/WEBHOOKS.md): each written to the signed outbox
(``risk.webhooks.outbox_add``) inside the transaction of the change it reports, so an event exists exactly when its
change committed. A tenant without an endpoint taking the event pays one indexed query."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from coupons.models import CouponCode, CouponInventory
from risk.webhooks import event_time, outbox_add
from core.models import Tenant
from risk.models import WebhookEndpoint


def coupon_data(coupon: CouponCode, inventory: CouponInventory, time_zone: str) -> dict[str, Any]:
    return {"code": coupon.code, "member_id": coupon.member_id, "inventory": inventory.public_id,
            "policy": inventory.policy.public_id, "valid_until": event_time(coupon.valid_until, time_zone)}


def _tenant_zone(inventory: CouponInventory) -> str:
    tenant = inventory._state.fields_cache.get("tenant")
    if tenant is None:
        return Tenant.objects.filter(pk=inventory.tenant_id).values_list("time_zone", flat=True).get()
    return str(tenant.time_zone)


def _emit(event: str, coupon: CouponCode, inventory: CouponInventory, now: datetime,
          endpoint_ids: list[int] | None = None, **extra: Any) -> None:
    """``endpoint_ids``: the endpoints taking the event, when the change's own statement already read them
    (``risk.webhooks.endpoints_taking_sql``); None reads them here."""
    if endpoint_ids is not None:
        if not endpoint_ids:
            return  # the claim and redeem paths: no endpoint, no query (#21)
        endpoints = list(WebhookEndpoint.objects.filter(tenant_id=inventory.tenant_id, pk__in=endpoint_ids))
    else:
        endpoints = list(WebhookEndpoint.objects.filter(tenant_id=inventory.tenant_id, is_active=True,
                                                        events__contains=[event]))
    if not endpoints:
        return
    zone = _tenant_zone(inventory)
    data = {**coupon_data(coupon, inventory, zone),
            **{k: event_time(v, zone) if isinstance(v, datetime) else v for k, v in extra.items()}}
    outbox_add(tenant_id=inventory.tenant_id, event=event, data=data, occurred_at=now, endpoints=endpoints)


def coupon_issued(*, coupon: CouponCode, inventory: CouponInventory, via: str, now: datetime,
                  endpoint_ids: list[int] | None = None) -> None:
    _emit("coupon.issued", coupon, inventory, now, endpoint_ids, issued_at=now, via=via)


def coupon_redeemed(*, coupon: CouponCode, order_id: str, order_amount: int, discount: int, now: datetime,
                    endpoint_ids: list[int] | None = None) -> None:
    _emit("coupon.redeemed", coupon, coupon.inventory, now, endpoint_ids, order_id=order_id,
          order_amount=order_amount, discount=discount, used_at=now)


def coupon_refunded(*, coupon: CouponCode, order_id: str, discount: int, now: datetime) -> None:
    _emit("coupon.refunded", coupon, coupon.inventory, now, order_id=order_id, discount=discount,
          status=coupon.status)
