"""Policies: draft, submit, approve (by another user), reject, clone (R-POL).

Each function is one transaction that locks (or compare-and-sets) the row it changes and writes its audit row.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import Actor, audit_record
from core.validation import full_clean
from core.exceptions import InvalidInput, InvalidState, PermissionDenied
from coupons.exceptions import PolicyNotEditable, SelfApproval
from coupons.models import CouponPolicy

APPROVE_PERMISSION = "coupons.approve_couponpolicy"


def _snapshot(policy: CouponPolicy) -> dict[str, Any]:
    fields = ["name", "kind", "amount", "rate", "threshold", "cap", "sku_deduction_sku", "sku_deduction_units",
              "validity_type", "validity_hours", "validity_days", "stacking_group", "exclusive", "audience",
              "audience_tiers", "channels",
              "payment_methods", "status"]
    data: dict[str, Any] = {name: getattr(policy, name) for name in fields}
    data["valid_from"] = policy.valid_from.isoformat() if policy.valid_from else None
    data["valid_until"] = policy.valid_until.isoformat() if policy.valid_until else None
    return data


def policy_rule_errors(policy: CouponPolicy) -> dict[str, str]:
    """The kind-specific rules of SPEC R-POL-1/2, as field → message (the CheckConstraints say the same)."""
    errors: dict[str, str] = {}
    kind = policy.kind
    if kind in ("amount", "threshold") and not (policy.amount and policy.amount > 0):
        errors["amount"] = "An amount or threshold coupon needs a discount amount greater than 0."
    if kind == "amount" and policy.threshold:
        errors["threshold"] = "A cash voucher has no threshold; use the 'threshold' kind for spend-X-get-Y."
    if kind == "threshold" and policy.amount and (policy.threshold is None or policy.threshold <= policy.amount):
        errors["threshold"] = "The threshold must be greater than the discount amount (spend ≥ X to get Y off, X > Y)."
    if kind == "percentage":
        if policy.rate is None or not 1 <= policy.rate <= 100:
            errors["rate"] = "A percentage coupon needs a rate from 1 to 100."
        if not policy.cap:
            errors["cap"] = "A percentage coupon needs a cap (the maximum discount)."
        if policy.amount is not None:
            errors["amount"] = "A percentage coupon has a rate, not an amount."
    if kind != "percentage" and policy.rate is not None:
        errors["rate"] = "Only percentage coupons have a rate."
    if kind in ("amount",) and policy.cap is not None:
        errors["cap"] = "A cash voucher has no cap."
    if kind == "sku_deduction":
        if not policy.sku_deduction_sku:
            errors["sku_deduction_sku"] = "Name the SKU whose units are free."
        if not policy.sku_deduction_units:
            errors["sku_deduction_units"] = "Give the number of free units (1 or more)."
    if policy.validity_type == CouponPolicy.ValidityType.FIXED:
        if not policy.valid_from or not policy.valid_until:
            errors["valid_until"] = "A fixed validity needs both 'valid from' and 'valid until'."
        elif policy.valid_until <= policy.valid_from:
            errors["valid_until"] = "'Valid until' must be after 'valid from'."
        if policy.validity_hours:
            errors["validity_hours"] = "Hours from issue apply only to a dynamic validity."
    else:
        kind_of_validity = policy.validity_type
        if kind_of_validity == CouponPolicy.ValidityType.DYNAMIC and not policy.validity_hours:
            errors["validity_hours"] = "A dynamic validity needs the number of hours from issue."
        if kind_of_validity != CouponPolicy.ValidityType.DYNAMIC and policy.validity_hours:
            errors["validity_hours"] = _("Hours from issue apply only to a dynamic validity.")
        if kind_of_validity == CouponPolicy.ValidityType.END_OF_DAY:
            if policy.validity_days is None:
                errors["validity_days"] = _("An end-of-day validity needs the number of days after the day of "
                                            "issue (0 = the day of issue).")
            elif policy.validity_days > 3650:
                errors["validity_days"] = _("At most 3650 days after the day of issue.")
        if policy.valid_from and policy.valid_until and policy.valid_until <= policy.valid_from:
            errors["valid_until"] = "'Valid until' must be after 'valid from'."
    if policy.validity_type != CouponPolicy.ValidityType.END_OF_DAY and policy.validity_days is not None:
        errors["validity_days"] = _("Days after the day of issue apply only to an end-of-day validity.")
    tiers = list(policy.audience_tiers or [])
    if any(not str(tier).strip() or len(str(tier)) > 64 for tier in tiers):
        errors["audience_tiers"] = _("A member tier is 1 to 64 characters and not blank.")
    for field in ("amount", "threshold", "cap"):
        value = getattr(policy, field)
        if value is not None and value < 0:
            errors[field] = "Amounts cannot be negative."
    return errors


def _check_policy(policy: CouponPolicy) -> None:
    # The specific rules first: they explain themselves better than "constraint … is violated".
    errors = policy_rule_errors(policy)
    if errors:
        raise InvalidInput("; ".join(errors.values()), details={"fields": errors})
    full_clean(policy, exclude=["tenant", "created_by", "decided_by"])


def policy_save_draft(*, policy: CouponPolicy, actor_user: Any) -> CouponPolicy:
    """Create a draft policy, or save changes to a draft/rejected one. A rejected policy goes back to draft."""
    _check_policy(policy)
    actor = Actor.user(actor_user)
    with transaction.atomic():
        if policy.pk is None:
            policy.created_by = actor_user
            policy.status = CouponPolicy.Status.DRAFT
            policy.save()
            audit_record(tenant=policy.tenant, actor=actor, action="policy.create", obj=policy,
                         after=_snapshot(policy))
            return policy
        current = CouponPolicy.objects.select_for_update().get(pk=policy.pk)
        if not current.is_editable:
            raise PolicyNotEditable()
        before = _snapshot(current)
        policy.status = CouponPolicy.Status.DRAFT
        policy.decided_by, policy.decided_at, policy.rejection_reason, policy.submitted_at = None, None, "", None
        policy.save()
        audit_record(tenant=policy.tenant, actor=actor, action="policy.update", obj=policy, before=before,
                     after=_snapshot(policy))
    return policy


def _transition(*, policy: CouponPolicy, from_states: list[str], to_state: str, actor_user: Any, action: str,
                **changes: Any) -> CouponPolicy:
    with transaction.atomic():
        current = CouponPolicy.objects.select_for_update().get(pk=policy.pk)
        if current.status not in from_states:
            raise InvalidState(
                _("Policy '%(name)s' is %(status)s; this needs it to be %(needed)s.") % {
                    "name": current.name, "status": current.get_status_display(),
                    "needed": _(" or ").join(str(CouponPolicy.Status(s).label) for s in from_states)},
                details={"status": current.status},
            )
        before = {"status": current.status}
        CouponPolicy.objects.filter(pk=current.pk).update(status=to_state, **changes)
        current.refresh_from_db()
        audit_record(tenant=current.tenant, actor=Actor.user(actor_user), action=action, obj=current, before=before,
                     after={"status": to_state, **{k: str(v) for k, v in changes.items() if k != "decided_by"}})
    return current


def policy_submit(*, policy: CouponPolicy, actor_user: Any) -> CouponPolicy:
    """DRAFT (or REJECTED) → PENDING: ask an approver to look at it."""
    _check_policy(policy)
    return _transition(policy=policy, from_states=["DRAFT", "REJECTED"], to_state="PENDING", actor_user=actor_user,
                       action="policy.submit", submitted_at=timezone.now())


def _check_decider(policy: CouponPolicy, actor_user: Any) -> None:
    if not actor_user.has_perm(APPROVE_PERMISSION):
        raise PermissionDenied(_("You need the approver role to approve or reject policies."))
    if policy.created_by_id == actor_user.pk:
        raise SelfApproval()


def policy_approve(*, policy: CouponPolicy, actor_user: Any) -> CouponPolicy:
    """PENDING → APPROVED by someone other than the author. From then on the policy is frozen (R-POL-5)."""
    _check_decider(policy, actor_user)
    return _transition(policy=policy, from_states=["PENDING"], to_state="APPROVED", actor_user=actor_user,
                       action="policy.approve", decided_by=actor_user, decided_at=timezone.now())


# The rule of a policy: what a clone copies. Identity, approval and authorship are the clone's own.
CLONED_POLICY_FIELDS = ("description", "kind", "amount", "rate", "threshold", "cap", "sku_deduction_sku",
                        "sku_deduction_units", "validity_type", "valid_from", "valid_until", "validity_hours",
                        "validity_days", "include_skus", "exclude_skus", "include_spus", "exclude_spus",
                        "include_categories", "exclude_categories", "include_shops", "exclude_shops", "channels",
                        "payment_methods", "audience", "audience_tiers", "stacking_group", "exclusive")


def policy_clone(*, policy: CouponPolicy, actor_user: Any) -> CouponPolicy:
    """A policy as a template (seed 001 §8): a new DRAFT with the same rule, authored by ``actor_user``, to be
    changed and sent for approval like any other (an approved policy itself never changes, R-POL-5)."""
    copy = CouponPolicy(tenant_id=policy.tenant_id, name=(_("%(name)s (copy)") % {"name": policy.name})[:200],
                        **{name: getattr(policy, name) for name in CLONED_POLICY_FIELDS})
    copy.tenant = policy.tenant
    with transaction.atomic():
        policy_save_draft(policy=copy, actor_user=actor_user)
        audit_record(tenant=copy.tenant, actor=Actor.user(actor_user), action="policy.clone", obj=copy,
                     after={"source": policy.public_id})
    return copy


def policy_reject(*, policy: CouponPolicy, actor_user: Any, reason: str) -> CouponPolicy:
    reason = reason.strip()
    if not reason:
        raise InvalidInput(_("Say why the policy is rejected, so its author can fix it."), code="reason_required")
    _check_decider(policy, actor_user)
    return _transition(policy=policy, from_states=["PENDING"], to_state="REJECTED", actor_user=actor_user,
                       action="policy.reject", decided_by=actor_user, decided_at=timezone.now(),
                       rejection_reason=reason)
