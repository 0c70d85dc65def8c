"""Revoke by member list (issue #16, R-ISS-5, seed 002): an operator names an inventory or a policy, a reason and the
members whose coupons of it are taken back. Each coupon is its own transaction (``lifecycle.coupon_revoke``, with its
audit row, checked against its owner); every member is reported: what was revoked, what could not be and why."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import audit_record
from core.exceptions import DomainError, InvalidInput, NotFound
from core.models import Tenant
from coupons.services import lifecycle
from coupons.services.issue import RequestContext
from coupons.models import CouponCode, CouponInventory, CouponPolicy

MAX_MEMBERS = 1000  # per API request (a synchronous answer); the console takes a file of up to CONSOLE_MAX_MEMBERS
CONSOLE_MAX_MEMBERS = 10_000
_CHUNK = 1000


@dataclass
class MemberRevocation:
    member_id: str
    revoked: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"coupon": code or None, "code", "message"}

    @property
    def ok(self) -> bool:
        return bool(self.revoked) and not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {"member_id": self.member_id, "ok": self.ok, "revoked": self.revoked, "errors": self.errors}


def _target_inventories(tenant: Tenant, inventory: str | None, policy: str | None) -> tuple[list[int], str]:
    if bool(inventory) == bool(policy):
        raise InvalidInput(_("Give either an inventory or a policy, not both."),
                           details={"fields": {"inventory": "one of", "policy": "one of"}})
    if inventory:
        found = list(CouponInventory.objects.filter(tenant=tenant, public_id=inventory).values_list("pk", flat=True))
        if not found:
            raise NotFound(_("No such coupon inventory."))
        return found, f"inventory:{inventory}"
    policy_row = CouponPolicy.objects.filter(tenant=tenant, public_id=policy).first()
    if policy_row is None:
        raise NotFound(_("No such coupon policy."))
    return list(CouponInventory.objects.filter(tenant=tenant, policy=policy_row).values_list("pk", flat=True)), \
        f"policy:{policy}"


def _members(member_ids: list[str], limit: int) -> list[str]:
    if not isinstance(member_ids, list) or not member_ids:
        raise InvalidInput(_("List at least one member."), details={"fields": {"member_ids": "required"}})
    unique = list(dict.fromkeys(member_ids))  # a member listed twice is revoked and reported once
    if len(unique) > limit:
        raise InvalidInput(_("At most %(max)d members at a time; split the list.") % {"max": limit},
                           details={"fields": {"member_ids": "too_many"}, "max": limit})
    for index, member in enumerate(unique):
        if not isinstance(member, str) or not member.strip() or len(member) > 64:
            raise InvalidInput(_("Member id number %(number)d must be 1 to 64 characters.") % {"number": index + 1},
                               details={"fields": {"member_ids": "invalid"}, "index": index})
    return unique


def coupons_revoke_for_members(*, tenant: Tenant, member_ids: list[str], reason: str, ctx: RequestContext,
                               inventory: str | None = None, policy: str | None = None,
                               max_members: int = MAX_MEMBERS) -> list[MemberRevocation]:
    """Revoke every revocable coupon (ISSUED; a LOCKED one is reported, not revoked) of the inventory — or of every
    inventory of the policy — held by each listed member. Bad input is refused before anything changes."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidInput(_("Say why the coupons are revoked."), code="reason_required")
    members = _members(member_ids, max_members)
    inventory_ids, target = _target_inventories(tenant, inventory, policy)
    held: dict[str, list[str]] = {}
    for start in range(0, len(members), _CHUNK):
        rows = CouponCode.objects.filter(
            tenant=tenant, inventory_id__in=inventory_ids, member_id__in=members[start:start + _CHUNK],
            status__in=[CouponCode.Status.ISSUED, CouponCode.Status.LOCKED]).order_by("id").values_list(
            "member_id", "code")
        for member, code in rows:
            held.setdefault(str(member), []).append(code)
    report = []
    for member in members:
        result = MemberRevocation(member_id=member)
        codes = held.get(member, [])
        if not codes:
            result.errors.append({"coupon": None, "code": "not_found",
                                  "message": _("The member holds no coupon here that can be revoked.")})
        for code in codes:
            try:
                lifecycle.coupon_revoke(tenant=tenant, code=code, reason=reason, ctx=ctx, member_id=member)
            except DomainError as exc:
                result.errors.append({"coupon": code, "code": exc.code, "message": exc.message})
            else:
                result.revoked.append(code)
        report.append(result)
    with transaction.atomic():
        audit_record(tenant=tenant, actor=ctx.actor, action="coupon.revoke_members", obj=tenant, after={
            "target": target, "reason": reason[:500], "members": len(members),
            "revoked": sum(len(r.revoked) for r in report), "failed_members": sum(1 for r in report if not r.ok)})
    return report
