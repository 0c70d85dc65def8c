"""The risk checks of the claim and use paths (R-RISK-1/2/3), called by coupons.services.issue and
coupons.services.lifecycle; ``check`` runs inside the transaction it guards.

Design: docs/design/claims-and-limits.md#risk-guard.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from core.config_cache import ConfigCache
from risk import limits
from risk.exceptions import BudgetExhausted, MemberBlocked, RiskContextRequired
from risk.models import FrequencyLimit, MemberRisk
from risk.budgets import alarm_exhausted

if TYPE_CHECKING:
    from coupons.models import CouponInventory

logger = logging.getLogger("coupons.risk")

_rules: ConfigCache[tuple[int, int, str], list[tuple[str, str, int]]] = ConfigCache()


def frequency_rules(inventory: CouponInventory, action: str) -> list[tuple[str, str, int]]:
    """(scope, dimension, max_per_day) of the active limits on the inventory and on its policy, kept per process for
    COUPON_CONFIG_CACHE_SECONDS like the rest of the claim path's configuration."""
    key = (inventory.pk, inventory.policy_id, action)
    cached = _rules.get(key)
    if cached is not None:
        return cached
    rows = FrequencyLimit.objects.filter(tenant_id=inventory.tenant_id, action=action, is_active=True).filter(
        Q(inventory_id=inventory.pk) | Q(policy_id=inventory.policy_id)).values_list(
        "inventory_id", "policy_id", "dimension", "max_per_day")
    rules = [(f"i{inv}" if inv else f"p{pol}", dimension, limit) for inv, pol, dimension, limit in rows]
    _rules.put(key, rules)
    return rules


# The member's current risk level (NULL: none). Named parameters, so the claim path can ask it in the same round
# trip as the member's slot count (coupons.services.issue._next_slot, #21).
MEMBER_LEVEL_SQL = ("(SELECT level FROM risk_memberrisk WHERE tenant_id = %(tenant)s AND member_id = %(member)s "
                    "AND (expires_at IS NULL OR expires_at > %(now)s))")

_UNREAD = object()


def member_level(*, tenant_id: int, member_id: str, now: datetime | None = None) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + MEMBER_LEVEL_SQL,
                       {"tenant": tenant_id, "member": member_id, "now": now or timezone.now()})
        row = cursor.fetchone()
    return row[0] if row else None


def dimension_value(dimension: str, *, member_id: str, ctx: Any) -> str:
    """The request's value for a dimension, normalised so trivial variations count as one ('' = not given)."""
    if dimension == FrequencyLimit.Dimension.MEMBER:
        return member_id
    if dimension == FrequencyLimit.Dimension.DEVICE:
        return (ctx.device_id or "").strip()
    if dimension == FrequencyLimit.Dimension.IP:
        return str(ctx.ip or "").strip().lower()
    if dimension == FrequencyLimit.Dimension.PHONE:
        raw = (ctx.phone or "").strip()
        digits = re.sub(r"\D", "", raw)
        return ("+" + digits if raw.startswith("+") else digits) if digits else ""
    if dimension == FrequencyLimit.Dimension.POSTCODE:
        return re.sub(r"[\s-]", "", (ctx.postcode or "")).upper()
    raise ValueError(f"unknown dimension {dimension!r}")


class RiskGuard:
    def __init__(self, *, action: str, member_id: str, ctx: Any, count_limits: bool = True) -> None:
        self.action = action
        self.member_id = member_id
        self.ctx = ctx
        self.count_limits = count_limits
        self.taken: limits.Taken | None = None

    def __enter__(self) -> RiskGuard:
        return self

    def check(self, inventory: CouponInventory, now: datetime | None = None, level: object = _UNREAD) -> None:
        """``level``: the member's level when the caller read it in its own statement (MEMBER_LEVEL_SQL, in this
        transaction); read here otherwise."""
        now = now or timezone.now()
        if level is _UNREAD:
            level = member_level(tenant_id=inventory.tenant_id, member_id=self.member_id, now=now)
        if level == MemberRisk.Level.BLOCK:
            raise MemberBlocked()
        if level == MemberRisk.Level.WATCH:
            logger.info("watched member %s: %s of inventory %s", self.member_id, self.action, inventory.public_id)
        if not self.count_limits or level == MemberRisk.Level.ALLOW:
            return  # allow-listed (trusted) members skip the daily frequency limits, never the budgets
        rules = frequency_rules(inventory, self.action)
        if not rules:
            return
        day, seconds_left = limits.local_day(inventory.tenant.time_zone, now)
        counters, missing = [], []
        for scope, dimension, limit in rules:
            value = dimension_value(dimension, member_id=self.member_id, ctx=self.ctx)
            if not value:  # leaving the field out must not dodge the limit: refuse, take nothing
                if dimension not in missing:
                    missing.append(dimension)
                continue
            counters.append(limits.Counter(
                key=limits.counter_key(tenant_id=inventory.tenant_id, scope=scope, action=self.action,
                                       dimension=dimension, value=value, day=day),
                limit=limit, dimension=dimension))
        if missing:
            names = ", ".join(sorted(missing))
            if self.action == "claim":
                message = ngettext("This claim needs %(fields)s: a daily limit of this coupon counts it.",
                                   "This claim needs %(fields)s: a daily limit of this coupon counts them.", len(missing))
            else:
                message = ngettext("This use needs %(fields)s: a daily limit of this coupon counts it.",
                                   "This use needs %(fields)s: a daily limit of this coupon counts them.", len(missing))
            required = gettext("Required: a daily limit counts this field.")
            raise RiskContextRequired(message % {"fields": names},
                                      details={"fields": {name: [required] for name in sorted(missing)}})
        self.taken = limits.take(counters, day=day, seconds_left=seconds_left)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if exc is None:
            return False
        if self.taken is not None and settings.USE_REDIS:
            try:
                limits.release(self.taken)
            except Exception:  # Redis gone: the slot stays taken until the day ends — the safe side
                logger.exception("could not give back frequency counters")
            self.taken = None
        if isinstance(exc, BudgetExhausted):
            try:
                alarm_exhausted(exc)
            except Exception:
                logger.exception("could not record the budget-exhausted alarm")
        return False
