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
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.audit import Actor, audit_record
from core.exceptions import InvalidInput, NotFound
from core.models import ApiClient, Tenant
from coupons.bloom import iter_code_blocks
from coupons.exceptions import InventoryNotFound
from coupons.models import CouponBatch, CouponInventory
from partners.exceptions import DistributionNotFound, NotEnoughCodes, PartnerNotFound
from partners.models import Distribution, Partner

MAX_QUANTITY = 10_000_000
CSV_HEADER = b"code\n"
FILE_BLOCK = 500_000

_RESERVE = """
WITH picked AS (
    SELECT id FROM coupons_couponcode
     WHERE inventory_id = %(inventory)s AND status = 'AVAILABLE' {batch}
     ORDER BY id {limit}
       FOR UPDATE SKIP LOCKED)
UPDATE coupons_couponcode c SET status = 'DISTRIBUTED', distribution_id = %(distribution)s
  FROM picked WHERE c.id = picked.id AND c.status = 'AVAILABLE'
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
    batch = CouponBatch.objects.filter(inventory=inventory, batch_code=(batch_code or "").strip()).first()
    if batch is None:
        raise NotFound(_("The inventory has no batch %(batch)s.") % {"batch": batch_code}, details={"field": "batch"})
    return batch


def distribution_create(*, tenant: Tenant, inventory: CouponInventory, partner: Partner, quantity: Any,
                        actor: Actor, batch: CouponBatch | None = None, user: Any = None,
                        client: ApiClient | None = None) -> Distribution:
    """Reserve ``quantity`` AVAILABLE codes of ``inventory`` (of ``batch`` if given; all of the batch's when the
    quantity is empty) for ``partner``. One transaction; too few codes → ``not_enough_codes``, nothing reserved."""
    if inventory.tenant_id != tenant.pk:
        raise InventoryNotFound(details={"field": "inventory"})
    if partner.tenant_id != tenant.pk:
        raise PartnerNotFound(details={"field": "partner"})
    if batch is not None and batch.inventory_id != inventory.pk:
        raise InvalidInput(_("The batch belongs to another inventory."), details={"field": "batch"})
    wanted = _quantity(quantity, whole_batch=batch is not None)
    with transaction.atomic():
        distribution = Distribution.objects.create(
            tenant=tenant, partner=partner, inventory=inventory, batch=batch, quantity=wanted or 1,
            created_by=user if getattr(user, "pk", None) else None, client=client, actor_label=actor.label[:200])
        with connection.cursor() as cursor:
            cursor.execute(_RESERVE.format(batch="AND batch_id = %(batch)s" if batch is not None else "",
                                           limit="LIMIT %(quantity)s" if wanted is not None else ""),
                           {"inventory": inventory.pk, "batch": batch.pk if batch is not None else None,
                            "quantity": wanted, "distribution": distribution.pk})
            reserved = cursor.rowcount
        if reserved == 0 or (wanted is not None and reserved < wanted):
            available = reserved
            raise NotEnoughCodes(
                _("Only %(available)s codes are available; %(wanted)s were asked for. Nothing was reserved.")
                % {"available": f"{available:,}", "wanted": f"{wanted or available:,}"},
                details={"available": available, "quantity": wanted})
        if wanted is None:
            Distribution.objects.filter(pk=distribution.pk).update(quantity=reserved)
            distribution.quantity = reserved
        audit_record(tenant=tenant, actor=actor, action="distribution.create", obj=distribution,
                     after={"public_id": distribution.public_id, "partner": partner.code,
                            "inventory": inventory.public_id, "batch": batch.batch_code if batch else None,
                            "quantity": distribution.quantity})
    return distribution


def distribution_get(*, tenant: Tenant, public_id: str) -> Distribution:
    distribution = (Distribution.objects.select_related("partner", "inventory", "batch")
                    .filter(tenant=tenant, public_id=(public_id or "").strip().upper()).first())
    if distribution is None:
        raise DistributionNotFound()
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
              FROM coupons_couponcode c LEFT JOIN coupons_couponissue i ON i.coupon_id = c.id
             WHERE c.distribution_id = %s""", [distribution.pk])
        reserved, waiting, registered, used = cursor.fetchone()
    return DistributionStats(reserved=reserved, waiting=waiting, registered=registered, used=used)


def distribution_code_blocks(distribution: Distribution) -> Iterator[Any]:
    """The distribution's codes in id order, in blocks (``S48`` numpy arrays): bounded memory for any size."""
    yield from iter_code_blocks(where="distribution_id = %s", params=[distribution.pk], block=FILE_BLOCK)


def distribution_csv(distribution: Distribution) -> Iterator[bytes]:
    """CSV bytes: a ``code`` header, then one code per line (codes need no quoting: A-Z, 0-9)."""
    yield CSV_HEADER
    for codes in distribution_code_blocks(distribution):
        yield b"\n".join(codes.tolist()) + b"\n"


def distribution_filename(distribution: Distribution, extension: str = "csv") -> str:
    partner = "".join(ch if ch.isalnum() else "-" for ch in distribution.partner.code)[:32].strip("-") or "partner"
    return f"distribution-{distribution.public_id}-{partner}.{extension}"


def distribution_downloaded(*, distribution: Distribution, actor: Actor, fmt: str = "csv") -> None:
    """Every hand-over of the file is recorded; the codes were reserved once, at creation."""
    with transaction.atomic():
        audit_record(tenant=distribution.tenant, actor=actor, action="distribution.download", obj=distribution,
                     after={"public_id": distribution.public_id, "format": fmt})
