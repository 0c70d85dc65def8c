"""Reconciliation (R-OPS-2): the figures the platform keeps for speed against the rows they summarise.

Design: docs/design/jobs-and-operations.md#ops-reconcile.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection, transaction

from core.audit import Actor, audit_record
from core.models import Tenant
from coupons.models import CouponInventory
from coupons.services.counters import counter_add_to_shard, lock_inventory_shards
from coupons.bloom import BitArray, get_store, iter_tenant_codes, offsets_one
from coupons.bloom import bloom_verify

_TOTALS = """
WITH issued AS (SELECT inventory_id, count(*) AS n FROM coupons_couponissue {where} GROUP BY inventory_id),
     used AS (SELECT inventory_id, count(*) AS n, coalesce(sum(discount), 0) AS d FROM coupons_couponusage
               WHERE refunded_at IS NULL {and_where} GROUP BY inventory_id),
     counted AS (SELECT inventory_id, sum(issued) AS i, sum(used) AS u, sum(used_discount) AS d
                   FROM coupons_inventorycounter {where} GROUP BY inventory_id)
SELECT inv.id, inv.tenant_id,
       coalesce(issued.n, 0), coalesce(counted.i, 0),
       coalesce(used.n, 0), coalesce(counted.u, 0),
       coalesce(used.d, 0), coalesce(counted.d, 0)
  FROM coupons_couponinventory inv
  LEFT JOIN issued ON issued.inventory_id = inv.id
  LEFT JOIN used ON used.inventory_id = inv.id
  LEFT JOIN counted ON counted.inventory_id = inv.id
 WHERE inv.id > %(after)s {inv_where}
 ORDER BY inv.id
 LIMIT %(limit)s
"""


@dataclass(frozen=True)
class CounterMismatch:
    inventory_id: int
    tenant_id: int
    issued_rows: int
    issued_counted: int
    used_rows: int
    used_counted: int
    discount_rows: int
    discount_counted: int

    def describe(self) -> str:
        parts = []
        for label, rows, counted in (("issued", self.issued_rows, self.issued_counted),
                                     ("used", self.used_rows, self.used_counted),
                                     ("used_discount", self.discount_rows, self.discount_counted)):
            if rows != counted:
                parts.append(f"{label}: rows={rows} counter={counted}")
        return f"inventory {self.inventory_id}: " + ", ".join(parts)


def _totals(*, inventory_id: int | None = None, after: int = 0, limit: int = 1000) -> list[tuple]:
    where = "WHERE inventory_id = %(inventory)s" if inventory_id is not None else ""
    and_where = "AND inventory_id = %(inventory)s" if inventory_id is not None else ""
    inv_where = "AND inv.id = %(inventory)s" if inventory_id is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(_TOTALS.format(where=where, and_where=and_where, inv_where=inv_where),
                       {"inventory": inventory_id, "after": after, "limit": limit})
        return cursor.fetchall()


def _mismatch(row: tuple) -> CounterMismatch | None:
    m = CounterMismatch(*[int(v) for v in row])
    if (m.issued_rows, m.used_rows, m.discount_rows) == (m.issued_counted, m.used_counted, m.discount_counted):
        return None
    return m


def counters_check(*, inventory_id: int | None = None, page: int = 1000,
                   progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, CounterMismatch | None]]:
    """Yield (inventory id, mismatch or None) for every inventory, ``page`` inventories per query (keyset)."""
    after = 0
    while True:
        rows = _totals(inventory_id=inventory_id, after=after, limit=page)
        for row in rows:
            yield row[0], _mismatch(row)
        if progress is not None and rows:
            progress(len(rows))
        if len(rows) < page:
            return
        after = rows[-1][0]


def counters_fix(*, inventory_id: int, actor: Actor) -> CounterMismatch | None:
    """Make the inventory's counter sums equal its rows, in one transaction. Returns the mismatch it repaired, or
    None if there was none (so a second run — or a concurrent one — changes nothing).

    Every shard row is created if missing and locked first: a claim or redemption counting into this inventory
    waits for our commit, one already holding its shard finishes first and its rows are in our count (READ COMMITTED
    takes a new snapshot per statement). The difference goes into shard 0 — only the sum is ever read.
    """
    with transaction.atomic():
        inventory = CouponInventory.objects.select_related("tenant").filter(pk=inventory_id).first()
        if inventory is None:
            return None
        lock_inventory_shards(tenant_id=inventory.tenant_id, inventory_id=inventory_id)
        rows = _totals(inventory_id=inventory_id)
        if not rows:
            return None
        mismatch = _mismatch(rows[0])
        if mismatch is None:
            return None
        counter_add_to_shard(tenant_id=inventory.tenant_id, inventory_id=inventory_id, shard=0,
                             issued=mismatch.issued_rows - mismatch.issued_counted,
                             used=mismatch.used_rows - mismatch.used_counted,
                             used_discount=mismatch.discount_rows - mismatch.discount_counted)
        audit_record(tenant=inventory.tenant, actor=actor, action="inventory.counters_reconcile", obj=inventory,
                     before={"issued": mismatch.issued_counted, "used": mismatch.used_counted,
                             "used_discount": mismatch.discount_counted},
                     after={"issued": mismatch.issued_rows, "used": mismatch.used_rows,
                            "used_discount": mismatch.discount_rows})
    return mismatch


@dataclass
class BloomReport:
    exists: bool
    mode: str  # "full" | "sample"
    checked: int = 0
    missing: int = 0
    examples: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def bloom_check(*, full: bool = False, sample: int = 2000,
                progress: Callable[[int], None] | None = None) -> BloomReport:
    """Codes of the table their tenant's filter calls absent (one filter per tenant, issue #23). ``full`` tests every
    code of each tenant against a copy of that tenant's filter bits (memory: one filter at a time, e.g. 69 MiB for 20M
    codes at 1e-6); a code missing from that copy is tested again against the live filter, so a code written by a
    generation that ran meanwhile is not a false alarm."""
    if not full:
        result = bloom_verify(sample=sample)
        if progress is not None:
            progress(result["checked"])
        return BloomReport(exists=result["exists"], mode="sample", checked=result["checked"],
                           missing=result["missing"], details=result)
    report = BloomReport(exists=False, mode="full")
    for tenant_id in Tenant.objects.order_by("pk").values_list("pk", flat=True):
        store = get_store(tenant_id)
        params = store.params()
        if params is None:
            continue
        report.exists = True
        bits = BitArray(params)
        for start, piece in store.pieces(params):
            bits.bits[start:start + len(piece)] = np.frombuffer(piece, np.uint8)
        for codes in iter_tenant_codes(tenant_id, block=200_000):
            absent = bits.absent(codes)
            for raw in codes[absent]:
                again = store.params()
                if again is None or store.test(again, offsets_one(bytes(raw), again)) is False:
                    report.missing += 1
                    if len(report.examples) < 5:
                        report.examples.append(bytes(raw).decode("utf-8"))
            report.checked += len(codes)
            if progress is not None:
                progress(len(codes))
    return report
