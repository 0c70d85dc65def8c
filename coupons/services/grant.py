"""Grants: coupons issued by the operator to a list of members (R-ISS-2), at once or by a job in chunks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from core import jobs
from core.approvals import decide, needs_approval, reason_of
from core.audit import Actor, audit_record
from core.exceptions import DomainError, InvalidInput
from core.models import ApiClient, Tenant, User
from core.tenancy import joined_in_tenant
from coupons.models import CouponCode, CouponGrant, CouponGrantMember, CouponIssue
from coupons.services.issue import RequestContext, _inventory_by, issue_from_pool

SYNC_GRANT_LIMIT = 1000
GRANT_CHUNK = 500


def grant_work_key(grant_id: int) -> str:
    """The session advisory lock a worker holds while it runs the grant (``coupons.jobs.run_grant``)."""
    return f"grant:{grant_id}"


@dataclass
class GrantResult:
    grant: CouponGrant
    issued: list[CouponCode]
    failed: list[dict[str, str]]


def _unique_members(member_ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for raw in member_ids:
        member = raw.strip()
        if not member or len(member) > 64:
            raise InvalidInput(_("Member ids must be 1 to 64 characters; got %(value)r.") % {"value": raw})
        seen.setdefault(member, None)
    return list(seen)


def grant_create(*, tenant: Tenant, inventory_public_id: str, member_ids: list[str], ctx: RequestContext,
                 force_async: bool = False) -> GrantResult:
    """Grant an inventory to members, each at most once. Up to 1,000 at once; above that (or forced) as a job.

    To at least the tenant's ``grant_approval_threshold`` members (issue #20) nothing is issued: the grant and its
    member list are recorded ``AWAITING_APPROVAL`` and an approver other than the requester queues it
    (``grant_approve``) or rejects it (``grant_reject``)."""
    members = _unique_members(member_ids)
    if not members:
        raise InvalidInput(_("Give at least one member id."))
    inventory = _inventory_by(tenant, public_id=inventory_public_id)
    awaiting = needs_approval(tenant.grant_approval_threshold, len(members))
    run_as_job = len(members) > SYNC_GRANT_LIMIT or force_async
    with transaction.atomic():  # the grant, its member list and the job's start commit together
        grant = CouponGrant.objects.create(
            tenant=tenant, inventory=inventory, client=ctx.client, operator=ctx.operator, total=len(members),
            status=CouponGrant.Status.AWAITING_APPROVAL if awaiting else CouponGrant.Status.PENDING)
        if awaiting:
            audit_record(tenant=tenant, actor=ctx.actor, action="grant.request", obj=grant,
                         after={"inventory": inventory.public_id, "members": len(members), "status": grant.status,
                                "threshold": tenant.grant_approval_threshold})
        else:
            audit_record(tenant=tenant, actor=ctx.actor, action="grant.create", obj=grant,
                         after={"inventory": inventory.public_id, "members": len(members), "job": run_as_job})
        if run_as_job or awaiting:
            for start in range(0, len(members), 5000):
                CouponGrantMember.objects.bulk_create(
                    [CouponGrantMember(tenant_id=grant.tenant_id, grant=grant, member_id=m)
                     for m in members[start:start + 5000]])
        if awaiting:
            return GrantResult(grant=grant, issued=[], failed=[])
        if run_as_job:
            _queue_grant(grant)
    if run_as_job:
        return GrantResult(grant=grant, issued=[], failed=[])
    issued, failed = [], []
    this_grant = CouponGrant.objects.filter(tenant_id=grant.tenant_id, pk=grant.pk)
    this_grant.update(status=CouponGrant.Status.RUNNING)
    for member in members:
        try:
            issued.append(issue_from_pool(inventory=inventory, member_id=member, via=CouponIssue.Via.GRANT, ctx=ctx,
                                          grant=grant))
        except DomainError as exc:
            failed.append({"member_id": member, "code": exc.code})
    this_grant.update(status=CouponGrant.Status.COMPLETED, processed=len(members), issued=len(issued),
                      failed=len(failed), finished_at=timezone.now())
    grant.refresh_from_db(from_queryset=this_grant)
    return GrantResult(grant=grant, issued=issued, failed=failed)


def _queue_grant(grant: CouponGrant) -> None:
    transaction.on_commit(lambda: jobs.enqueue("grants", "coupons.jobs.run_grant", grant.pk, grant.tenant_id,
                                               tenant_id=grant.tenant_id))


GRANT_APPROVE_PERMISSION = "coupons.approve_coupongrant"


def _grant_decide(*, grant: CouponGrant, user: Any, to: str, **changes: Any) -> None:
    """AWAITING_APPROVAL → ``to``, once (``core.approvals.decide``)."""
    decide(waiting=CouponGrant.objects.filter(pk=grant.pk, tenant_id=grant.tenant_id),
           status=CouponGrant.Status.AWAITING_APPROVAL, to=to, user=user, permission=GRANT_APPROVE_PERMISSION,
           requested_by_id=grant.operator_id, **changes)


def grant_approve(*, grant: CouponGrant, user: Any) -> CouponGrant:
    """An approver (not the requester) lets a waiting grant run: PENDING, audited, and its job queued once the
    decision commits; the job issues the coupons as for any large grant (resumable, each member once)."""
    with transaction.atomic():
        _grant_decide(grant=grant, user=user, to=CouponGrant.Status.PENDING)
        audit_record(tenant=grant.tenant, actor=Actor.user(user), action="grant.approve", obj=grant,
                     before={"status": CouponGrant.Status.AWAITING_APPROVAL},
                     after={"status": CouponGrant.Status.PENDING, "public_id": grant.public_id,
                            "members": grant.total})
        _queue_grant(grant)
    grant.refresh_from_db()
    return grant


def grant_reject(*, grant: CouponGrant, user: Any, reason: Any) -> CouponGrant:
    """An approver (not the requester) refuses a waiting grant with a reason: nothing is issued."""
    text = reason_of(reason)
    with transaction.atomic():
        _grant_decide(grant=grant, user=user, to=CouponGrant.Status.REJECTED, rejection_reason=text,
                      finished_at=timezone.now())
        audit_record(tenant=grant.tenant, actor=Actor.user(user), action="grant.reject", obj=grant,
                     before={"status": CouponGrant.Status.AWAITING_APPROVAL},
                     after={"status": CouponGrant.Status.REJECTED, "public_id": grant.public_id, "reason": text})
    grant.refresh_from_db()
    return grant


def grants_waiting(tenant_id: int | None) -> Any:
    qs = CouponGrant.objects.filter(status=CouponGrant.Status.AWAITING_APPROVAL)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.order_by("created_at", "id")


def grant_tenant(grant_id: int) -> int:
    """The tenant of a grant, by its id alone: only for a job queued before issue #23 passed the tenant along."""
    return CouponGrant.objects.values_list("tenant_id", flat=True).get(pk=grant_id)


def grant_process(*, grant_id: int, tenant_id: int) -> CouponGrant:
    """Work through a grant's PENDING members in chunks. Each member's issue and its grant row commit together, so a
    killed job resumes where it stopped and never issues a member twice. Every statement names the grant's tenant
    (issue #23)."""
    this_grant = CouponGrant.objects.filter(tenant_id=tenant_id, pk=grant_id)
    claimed = this_grant.filter(status__in=[CouponGrant.Status.PENDING, CouponGrant.Status.RUNNING])
    if not claimed.update(status=CouponGrant.Status.RUNNING):
        return this_grant.get()
    # The client and the operator are optional (LEFT JOINs that cannot carry the tenant): loaded by their own
    # statements below, in the tenant.
    grant = this_grant.select_related("inventory__policy", "inventory__event", "inventory__tenant").filter(
        **joined_in_tenant(tenant_id, "inventory", "inventory__policy", "inventory__event")).get()
    if grant.client_id is not None:
        grant.client = ApiClient.objects.get(tenant_id=tenant_id, pk=grant.client_id)
    if grant.operator_id is not None:
        # A superuser has no tenant of their own.
        grant.operator = User.objects.get(Q(tenant_id=tenant_id) | Q(tenant__isnull=True), pk=grant.operator_id)
    ctx = RequestContext(client=grant.client, operator=grant.operator)
    while True:
        batch = list(CouponGrantMember.objects.filter(tenant_id=tenant_id, grant=grant,
                                                            status=CouponGrantMember.Status.PENDING)
                     .order_by("id")[:GRANT_CHUNK])
        if not batch:
            break
        issued = failed = 0
        for row in batch:
            def mark(coupon: CouponCode, row: CouponGrantMember = row) -> None:
                CouponGrantMember.objects.filter(tenant_id=tenant_id, pk=row.pk,
                                                 status=CouponGrantMember.Status.PENDING).update(
                    status=CouponGrantMember.Status.ISSUED, coupon=coupon)
            try:
                issue_from_pool(inventory=grant.inventory, member_id=row.member_id, via=CouponIssue.Via.GRANT,
                                ctx=ctx, grant=grant, on_issued=mark)
                issued += 1
            except DomainError as exc:
                if exc.transient:  # Redis not answering: the job fails as transient and resumes with this member
                    raise
                CouponGrantMember.objects.filter(tenant_id=tenant_id, pk=row.pk,
                                                 status=CouponGrantMember.Status.PENDING).update(
                    status=CouponGrantMember.Status.FAILED, error_code=exc.code)
                failed += 1
        this_grant.update(processed=F("processed") + issued + failed, issued=F("issued") + issued,
                          failed=F("failed") + failed)
    this_grant.update(status=CouponGrant.Status.COMPLETED, finished_at=timezone.now())
    grant.refresh_from_db(from_queryset=this_grant)
    return grant
