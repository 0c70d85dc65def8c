"""Reads used by the API, the console and exports."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from core.approvals import waiting_count
from core.models import Tenant
from coupons.codes import normalise_code
from coupons.models import CouponCode, CouponGrant, CouponGrantMember, CouponInventory, CouponIssue
from coupons.pricing import scope_filter
from core.tenancy import joined_in_tenant
from events.models import Event
from coupons import bloom_check
from django.db.models import Count, Exists, OuterRef
from coupons.models import CouponPolicy

MEMBER_STATES = ["usable", "used", "locked", "invalid", "all"]


def member_coupons(*, tenant: Tenant, member_id: str, state: str, now: datetime,
                   product: dict[str, str] | None = None) -> QuerySet[CouponCode]:
    """A member's coupons by state (API.md): usable = ISSUED inside validity; invalid = EXPIRED or REVOKED,
    including coupons past validity the expiry job has not reached yet (R-LIFE-3)."""
    qs = (CouponCode.objects.filter(tenant=tenant, member_id=member_id,
                                    **joined_in_tenant(tenant, "inventory", "inventory__policy", "batch"))
          .select_related("inventory__policy", "batch").order_by("-issued_at", "-id"))
    if product:  # only coupons whose scope covers the product (R-QRY-1)
        qs = qs.filter(scope_filter("inventory__policy__", **product))
    not_past = Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    past = Q(valid_until__lte=now)
    if state == "usable":
        return qs.filter(not_past, status=CouponCode.Status.ISSUED).filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=now))
    if state == "used":
        return qs.filter(status=CouponCode.Status.USED)
    if state == "locked":
        return qs.filter(not_past, status=CouponCode.Status.LOCKED)
    if state == "invalid":
        return qs.filter(Q(status__in=[CouponCode.Status.EXPIRED, CouponCode.Status.REVOKED])
                         | Q(past, status__in=[CouponCode.Status.ISSUED, CouponCode.Status.LOCKED]))
    return qs


def coupon_by_code(*, tenant: Tenant, raw_code: str) -> CouponCode | None:
    code = normalise_code(raw_code)
    if not code:
        return None

    if not bloom_check.might_exist(code, tenant.pk):
        return None
    return CouponCode.objects.select_related("inventory__policy", "batch").filter(
        tenant=tenant, code=code, **joined_in_tenant(tenant, "inventory", "inventory__policy", "batch")).first()


def claimable_inventories(*, tenant: Tenant, product: dict[str, str], member_id: str | None,
                          now: datetime) -> list[CouponInventory]:
    """Inventories a member could claim now on a product/shop page (R-QRY-2). ``claimed`` is set on each row."""
    available = CouponCode.objects.filter(tenant=OuterRef("tenant"), inventory=OuterRef("pk"),
                                          status=CouponCode.Status.AVAILABLE)
    qs = (CouponInventory.objects.select_related("policy")
          .filter(tenant=tenant, is_active=True, event__status=Event.Status.OPEN, event__starts_at__lte=now,
                  event__ends_at__gt=now, **joined_in_tenant(tenant, "policy", "event"))
          .filter(Q(policy__valid_until__isnull=True) | Q(policy__valid_until__gt=now))
          .exclude(policy__audience="whitelist")
          .filter(scope_filter("policy__", **product))
          .filter(Exists(available)).order_by("policy__valid_until", "id"))
    rows = list(qs[:100])
    held: dict[int, int] = {}
    if member_id:
        held = dict(CouponIssue.objects.filter(tenant=tenant, inventory__in=rows, member_id=member_id).values("inventory")
                    .annotate(n=Count("id")).values_list("inventory", "n"))
    result = []
    for row in rows:
        row.claimed = held.get(row.pk, 0) if member_id else None  # type: ignore[attr-defined]  # read by the API
        if member_id is None or row.claimed < row.per_member_limit:  # type: ignore[attr-defined]
            result.append(row)
    return result


# --- the approvals inbox (issue #20, R-POL-5) ---------------------------------------------------------------------

def policies_pending(*, tenant_id: int | None) -> QuerySet[CouponPolicy]:
    """Policies waiting for a decision, oldest submission first; ``tenant_id`` None = every tenant (superusers)."""
    qs = CouponPolicy.objects.filter(status=CouponPolicy.Status.PENDING)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.order_by("submitted_at", "id")


def approvals_waiting_count(*, user: object, tenant_id: int | None) -> int:
    """What the header shows an approver: pending policies they may decide — everyone's but their own (R-POL-5) —
    plus every other kind waiting for an approver that they may decide (``core.approvals``: large partner
    distributions and grants, issue #20). One indexed count per kind."""
    policies = policies_pending(tenant_id=tenant_id).exclude(created_by_id=getattr(user, "pk", None)).count()
    return policies + waiting_count(user=user, tenant_id=tenant_id)


def grant_by_job(*, tenant: Tenant, job: str) -> CouponGrant | None:
    return CouponGrant.objects.filter(tenant=tenant, public_id=job).first()


def grant_failures(*, grant: CouponGrant, limit: int) -> list[dict[str, str]]:
    """The members a grant could not issue to, in order: ``member_id`` and ``error_code``."""
    rows = (CouponGrantMember.objects.filter(tenant_id=grant.tenant_id, grant=grant,
                                            status=CouponGrantMember.Status.FAILED)
            .order_by("id").values_list("member_id", "error_code")[:limit])
    return [{"member_id": member, "error_code": code} for member, code in rows]


def code_ids(term: str, *, tenant_id: int | None, limit: int = 100) -> list[int]:
    """The ids of the code a search term names (R-CODE-4 normalising), in one tenant — or, for a superuser
    (``tenant_id`` None), in each tenant: a code is unique per tenant (issue #23), so the same string may name one
    code in every tenant. Either way each lookup names its tenant and is one probe of the (tenant, code) index."""
    code = normalise_code(term)
    if not code:
        return []
    tenants = [tenant_id] if tenant_id is not None else list(Tenant.objects.values_list("pk", flat=True))
    return list(CouponCode.objects.filter(tenant_id__in=tenants, code=code).order_by("tenant_id")
                .values_list("id", flat=True)[:limit])
