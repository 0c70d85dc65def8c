"""Claim by partner code (flow 2, R-ISS-1). Partner uploads and mappings arrive with issue #6; until a partner code is
mapped there is nothing to claim, and the answer is the same 404 as for any unknown code."""
from __future__ import annotations

from typing import Any

from coupons.exceptions import CouponNotFound


def claim_partner_code(*, tenant: Any, partner_code: str, member_id: str, ctx: Any) -> Any:
    raise CouponNotFound("No coupon is mapped to this partner code.")
