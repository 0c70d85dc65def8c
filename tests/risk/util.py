"""Helpers for the risk tests: configuration through the services, counters read back (the webhook receiver is
tests/risk/webhook_receiver.py)."""
from __future__ import annotations

from typing import Any

from coupons.models import CouponInventory, CouponPolicy
from risk import services
from risk.models import FrequencyLimit, MemberRisk
from tests import factories


def add_limit(*, inventory: CouponInventory | None = None, policy: CouponPolicy | None = None, action: str = "claim",
              dimension: str = "device_id", max_per_day: int = 5) -> FrequencyLimit:
    tenant = (inventory or policy).tenant
    return services.frequency_limit_save(
        limit=FrequencyLimit(tenant=tenant, inventory=inventory, policy=policy, action=action, dimension=dimension,
                             max_per_day=max_per_day), actor=factories.TEST_ACTOR)


def set_level(tenant: Any, member_id: str, level: str, **kwargs: Any) -> MemberRisk:
    return services.member_risk_save(entry=MemberRisk(tenant=tenant, member_id=member_id, level=level, **kwargs),
                                     actor=factories.TEST_ACTOR)


def claim(api: Any, inventory: CouponInventory, member: str, **context: Any) -> Any:
    return api.post("/api/v1/claims", {"member_id": member, "inventory": inventory.public_id, **context},
                    format="json")
