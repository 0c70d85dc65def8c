"""Flow 1 — our codes handed to a partner (seed 001 §2.1 자체발번 → 제휴사 제공; R-PART-4).

``distribution_create`` reserves codes for one partner in one transaction: one ``UPDATE … FOR UPDATE SKIP LOCKED``
takes ``quantity`` AVAILABLE codes of the inventory (optionally of one batch) and makes them DISTRIBUTED with the
distribution's id. Pool claims, grants, draw prizes, partner mappings and other distributions all take AVAILABLE codes
only, with the same row locks, so a code is distributed at most once and never issued from the pool afterwards; the
CHECK ``code_distributed_has_distribution`` and the status guard are the database's part. Too few codes → 422
``not_enough_codes`` and the transaction rolls back: nothing is reserved.

A member registers a distributed code by ``POST /claims {"code"}`` (coupons.services.issue, in the event's registration
window). The file of a distribution is its codes in id order — ``distribution_id`` stays on a code after it is
registered, so every download gives the same file and the counts below stay exact.

Four eyes (issue #20): a distribution of at least the tenant's ``distribution_approval_threshold`` codes is recorded
as ``awaiting_approval`` and reserves nothing (pool claims still take those codes); an approver other than the
requester approves it — the compare-and-set on the status, the reservation and the audit row in one transaction — or
rejects it with a reason, which changes nothing else.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.approvals import decide, needs_approval, reason_of
from core.audit import Actor, audit_record
from core.exceptions import InvalidInput, InvalidState, NotFound
from core.models import ApiClient, Tenant
from core.tenancy import joined_in_tenant
from coupons.bloom import iter_code_blocks
from coupons.exceptions import InventoryNotFound
from coupons.models import CouponBatch, CouponCode, CouponInventory
from coupons.pool import POOL_CONDITION, POOL_ORDER
from partners.exceptions import DistributionNotFound, NotEnoughCodes, PartnerNotFound
from partners.models import Distribution, Partner

MAX_QUANTITY = 10_000_000
CSV_HEADER = b"code\n"
FILE_BLOCK = 500_000

# The inventory's pool through its pool index (coupons.pool); one batch's codes in the batch's order, which its index
# code_batch (batch_id, id) gives.
_POOL = f"{POOL_CONDITION} {POOL_ORDER}"
_BATCH_POOL = ("tenant_id = %(tenant)s AND inventory_id = %(inventory)s AND status = 'AVAILABLE' "
               "AND batch_id = %(batch)s ORDER BY id")
_RESERVE = """
WITH picked AS (
    SELECT id FROM coupons_couponcode
     WHERE {pool} {limit}
       FOR UPDATE SKIP LOCKED)
UPDATE coupons_couponcode c SET status = 'DISTRIBUTED', distribution_id = %(distribution)s
  FROM picked WHERE c.tenant_id = %(tenant)s AND c.id = picked.id AND c.status = 'AVAILABLE'
"""


def _quantity(raw: Any, *, whole_batch: bool) -> int | None:
    if raw is None or raw == "":
        if whole_batch:
            return None
        raise InvalidInput(_("Say how many codes to distribute."),
                           details={"field": "quantity"})
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidInput(_("The quantity must be a whole number."),
                           details={"field": "quantity"})
    if not 1 <= raw <= MAX_QUANTITY:
        raise InvalidInput(_("The quantity must be between 1 and %(max)s.") % {"max": f"{MAX_QUANTITY:,}"},
                           details={"field": "quantity", "min": 1, "max": MAX_QUANTITY})
    return raw


def partner_by_code(tenant: Tenant, code: str) -> Partner:
    partner = Partner.objects.filter(tenant=tenant, code=(code or "").strip().upper()).first()
    if partner is None:
        raise PartnerNotFound(details={"field": "partner"})
    return partner


def inventory_by_public_id(tenant: Tenant, public_id: str) -> CouponInventory:
    inventory = CouponInventory.objects.filter(tenant=tenant, public_id=(public_id or "").strip().upper()).first()
    if inventory is None:
        raise InventoryNotFound(details={"field": "inventory"})
    return inventory


def batch_by_code(inventory: CouponInventory, batch_code: str) -> CouponBatch:
    batch = CouponBatch.objects.filter(tenant_id=inventory.tenant_id, inventory=inventory,
                                       batch_code=(batch_code or "").strip()).first()
    if batch is None:
        raise NotFound(_("The inventory has no batch %(batch)s.") % {"batch": batch_code}, details={"field": "batch"})
    return batch


APPROVE_PERMISSION = "partners.approve_distribution"


class DistributionNotDistributed(InvalidState):
    code = "distribution_not_distributed"
    default_message = gettext_lazy("This distribution is not carried out (it awaits approval or was rejected): it "
                                   "has no codes to hand over.")


def _reserve(distribution: Distribution, wanted: int | None) -> int:
    """Take ``wanted`` (None: every available code of the batch) AVAILABLE codes for ``distribution``; the caller's
    transaction rolls back when too few were free (``not_enough_codes``)."""
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE.format(pool=_BATCH_POOL if distribution.batch_id is not None else _POOL,
                                       limit="LIMIT %(quantity)s" if wanted is not None else ""),
                       {"tenant": distribution.tenant_id, "inventory": distribution.inventory_id,
                        "batch": distribution.batch_id,
                        "quantity": wanted, "distribution": distribution.pk})
        reserved = cursor.rowcount
    if reserved == 0 or (wanted is not None and reserved < wanted):
        raise NotEnoughCodes(
            _("Only %(available)s codes are available; %(wanted)s were asked for. Nothing was reserved.")
            % {"available": f"{reserved:,}", "wanted": f"{wanted or reserved:,}"},
            details={"available": reserved, "quantity": wanted})
    return reserved


def _available_in_batch(batch: CouponBatch) -> int:
    return CouponCode.objects.filter(tenant_id=batch.tenant_id, inventory_id=batch.inventory_id, batch=batch,
                                     status=CouponCode.Status.AVAILABLE).count()


def distribution_create(*, tenant: Tenant, inventory: CouponInventory, partner: Partner, quantity: Any,
                        actor: Actor, batch: CouponBatch | None = None, user: Any = None,
                        client: ApiClient | None = None) -> Distribution:
    """Reserve ``quantity`` AVAILABLE codes of ``inventory`` (of ``batch`` if given; all of the batch's when the
    quantity is empty) for ``partner``. One transaction; too few codes → ``not_enough_codes``, nothing reserved.

    At or above the tenant's ``distribution_approval_threshold`` (issue #20) nothing is reserved: the distribution is
    recorded as ``awaiting_approval`` (a whole batch as the number of its codes available now) and an approver other
    than the requester carries it out (``distribution_approve``)."""
    if inventory.tenant_id != tenant.pk:
        raise InventoryNotFound(details={"field": "inventory"})
    if partner.tenant_id != tenant.pk:
        raise PartnerNotFound(details={"field": "partner"})
    if batch is not None and batch.inventory_id != inventory.pk:
        raise InvalidInput(_("The batch belongs to another inventory."), details={"field": "batch"})
    wanted = _quantity(quantity, whole_batch=batch is not None)
    threshold = tenant.distribution_approval_threshold
    size = wanted
    if threshold is not None and size is None and batch is not None:
        size = _available_in_batch(batch)
        if size == 0:
            raise NotEnoughCodes(_("Only %(available)s codes are available; %(wanted)s were asked for. Nothing was "
                                   "reserved.") % {"available": 0, "wanted": 0},
                                 details={"available": 0, "quantity": None})
    awaiting = needs_approval(threshold, size or 0)
    with transaction.atomic():
        distribution = Distribution.objects.create(
            tenant=tenant, partner=partner, inventory=inventory, batch=batch, quantity=(size if awaiting else wanted)
            or 1, status=Distribution.Status.AWAITING_APPROVAL if awaiting else Distribution.Status.DISTRIBUTED,
            created_by=user if getattr(user, "pk", None) else None, client=client, actor_label=actor.label[:200])
        terms = {"public_id": distribution.public_id, "partner": partner.code, "inventory": inventory.public_id,
                 "batch": batch.batch_code if batch else None}
        if awaiting:
            audit_record(tenant=tenant, actor=actor, action="distribution.request", obj=distribution,
                         after={**terms, "quantity": distribution.quantity, "status": distribution.status,
                                "threshold": threshold})
            return distribution
        reserved = _reserve(distribution, wanted)
        if wanted is None:
            Distribution.objects.filter(tenant_id=distribution.tenant_id, pk=distribution.pk).update(quantity=reserved)
            distribution.quantity = reserved
        audit_record(tenant=tenant, actor=actor, action="distribution.create", obj=distribution,
                     after={**terms, "quantity": distribution.quantity})
    return distribution


def _decide(*, distribution: Distribution, user: Any, to: str, changes: dict[str, Any]) -> None:
    """awaiting_approval → ``to``, once (``core.approvals.decide``)."""
    decide(waiting=Distribution.objects.filter(pk=distribution.pk, tenant_id=distribution.tenant_id),
           status=Distribution.Status.AWAITING_APPROVAL, to=to, user=user, permission=APPROVE_PERMISSION,
           requested_by_id=distribution.created_by_id, **changes)


def distribution_approve(*, distribution: Distribution, user: Any) -> Distribution:
    """An approver (not the requester) carries out a waiting distribution: the approval, the reservation of its codes
    and the audit row commit together; too few codes left → ``not_enough_codes`` and it stays waiting."""
    with transaction.atomic():
        _decide(distribution=distribution, user=user, to=Distribution.Status.DISTRIBUTED, changes={})
        wanted = distribution.quantity
        reserved = _reserve(distribution, wanted)
        audit_record(tenant=distribution.tenant, actor=Actor.user(user), action="distribution.approve",
                     obj=distribution, before={"status": Distribution.Status.AWAITING_APPROVAL},
                     after={"status": Distribution.Status.DISTRIBUTED, "public_id": distribution.public_id,
                            "quantity": reserved, "requested_by": distribution.actor_label})
    distribution.refresh_from_db()
    return distribution


def distribution_reject(*, distribution: Distribution, user: Any, reason: Any) -> Distribution:
    """An approver (not the requester) refuses a waiting distribution with a reason: nothing is reserved."""
    text = reason_of(reason)
    with transaction.atomic():
        _decide(distribution=distribution, user=user, to=Distribution.Status.REJECTED,
                changes={"rejection_reason": text})
        audit_record(tenant=distribution.tenant, actor=Actor.user(user), action="distribution.reject",
                     obj=distribution, before={"status": Distribution.Status.AWAITING_APPROVAL},
                     after={"status": Distribution.Status.REJECTED, "public_id": distribution.public_id,
                            "reason": text})
    distribution.refresh_from_db()
    return distribution


def distributions_waiting(tenant_id: int | None) -> Any:
    qs = Distribution.objects.filter(status=Distribution.Status.AWAITING_APPROVAL)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.order_by("created_at", "id")


def distribution_get(*, tenant: Tenant, public_id: str) -> Distribution:
    distribution = (Distribution.objects.select_related("partner", "inventory")
                    .filter(tenant=tenant, public_id=(public_id or "").strip().upper(),
                            **joined_in_tenant(tenant, "partner", "inventory")).first())
    if distribution is None:
        raise DistributionNotFound()
    if distribution.batch_id is not None:
        # Its own statement in the tenant: a LEFT JOIN of the optional batch could not carry the tenant (#23).
        distribution.batch = CouponBatch.objects.get(tenant=tenant, pk=distribution.batch_id)
    return distribution


@dataclass(frozen=True)
class DistributionStats:
    reserved: int  # codes the distribution holds, registered or not
    waiting: int  # still DISTRIBUTED: with the partner, not registered by a member yet
    registered: int  # registered by a member (issued), whatever happened after
    used: int  # redeemed and not refunded


def distribution_stats(distribution: Distribution) -> DistributionStats:
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*), count(*) FILTER (WHERE c.status = 'DISTRIBUTED'), count(i.id),
                   count(*) FILTER (WHERE c.status = 'USED')
              FROM coupons_couponcode c
              LEFT JOIN coupons_couponissue i ON i.coupon_id = c.id AND i.tenant_id = c.tenant_id
             WHERE c.tenant_id = %s AND c.distribution_id = %s""", [distribution.tenant_id, distribution.pk])
        reserved, waiting, registered, used = cursor.fetchone()
    return DistributionStats(reserved=reserved, waiting=waiting, registered=registered, used=used)


def distribution_code_blocks(distribution: Distribution) -> Iterator[Any]:
    """The distribution's codes in id order, in blocks (``S48`` numpy arrays): bounded memory for any size."""
    yield from iter_code_blocks(where="tenant_id = %s AND distribution_id = %s",
                                params=[distribution.tenant_id, distribution.pk], block=FILE_BLOCK)


def distribution_csv(distribution: Distribution) -> Iterator[bytes]:
    """CSV bytes: a ``code`` header, then one code per line (codes need no quoting: A-Z, 0-9)."""
    yield CSV_HEADER
    for codes in distribution_code_blocks(distribution):
        yield b"\n".join(codes.tolist()) + b"\n"


def distribution_filename(distribution: Distribution, extension: str = "csv") -> str:
    partner = "".join(ch if ch.isalnum() else "-" for ch in distribution.partner.code)[:32].strip("-") or "partner"
    return f"distribution-{distribution.public_id}-{partner}.{extension}"


def distribution_downloaded(*, distribution: Distribution, actor: Actor, fmt: str = "csv") -> None:
    """Every hand-over of the file is recorded; the codes were reserved once, at creation (or approval). A waiting or
    rejected distribution has no file: ``distribution_not_distributed``."""
    if distribution.status != Distribution.Status.DISTRIBUTED:
        raise DistributionNotDistributed()
    with transaction.atomic():
        audit_record(tenant=distribution.tenant, actor=actor, action="distribution.download", obj=distribution,
                     after={"public_id": distribution.public_id, "format": fmt})
