"""Sharded inventory counters (see InventoryCounter): increments inside the caller's transaction, summed reads."""
from __future__ import annotations

import zlib

from django.db import connection
from django.db.models import Sum

from coupons.models import InventoryCounter


def shard_of(member_id: str) -> int:
    return zlib.crc32(member_id.encode()) % InventoryCounter.SHARDS


def counter_add(*, inventory_id: int, member_id: str, issued: int = 0, used: int = 0, used_discount: int = 0) -> None:
    """Add to the member's shard. Must run inside the transaction of the change it counts."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO coupons_inventorycounter (inventory_id, shard, issued, used, used_discount)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (inventory_id, shard) DO UPDATE SET
                issued = coupons_inventorycounter.issued + EXCLUDED.issued,
                used = coupons_inventorycounter.used + EXCLUDED.used,
                used_discount = coupons_inventorycounter.used_discount + EXCLUDED.used_discount
            """,
            [inventory_id, shard_of(member_id), issued, used, used_discount],
        )


def inventory_counts(inventory_id: int) -> dict[str, int]:
    totals = InventoryCounter.objects.filter(inventory_id=inventory_id).aggregate(
        issued=Sum("issued"), used=Sum("used"), used_discount=Sum("used_discount"))
    return {key: value or 0 for key, value in totals.items()}
