"""An inventory's sharded counters (``InventoryCounter``: issued, used, used_discount), on ``core.counters``."""
from __future__ import annotations

from core import counters
from coupons.models import InventoryCounter

TABLE = "coupons_inventorycounter"
OWNER = "inventory_id"
COLUMNS = ("issued", "used", "used_discount")


def shard_of(member_id: str) -> int:
    return counters.shard_of(member_id, InventoryCounter.SHARDS)


def upsert_from(cte: str, *, shard: str, issued: str = "0", used: str = "0", used_discount: str = "0") -> str:
    """The counter write of a one-statement claim or redemption: one row per row of ``cte``."""
    return counters.upsert_sql(table=TABLE, owner=OWNER, columns=COLUMNS,
                               select=f"SELECT tenant_id, inventory_id, {shard}, {issued}, {used}, {used_discount} "
                                      f"FROM {cte}")


def counter_add(*, tenant_id: int, inventory_id: int, member_id: str, issued: int = 0, used: int = 0,
                used_discount: int = 0) -> None:
    """Add to the member's shard. Must run inside the transaction of the change it counts."""
    counter_add_to_shard(tenant_id=tenant_id, inventory_id=inventory_id, shard=shard_of(member_id), issued=issued,
                         used=used,
                         used_discount=used_discount)


def inventory_counts(inventory_id: int) -> dict[str, int]:
    return counters.counter_totals(table=TABLE, owner=OWNER, owner_id=inventory_id, columns=COLUMNS)


def lock_inventory_shards(*, tenant_id: int, inventory_id: int) -> None:
    counters.lock_shards(table=TABLE, owner=OWNER, tenant_id=tenant_id, owner_id=inventory_id,
                         shards=InventoryCounter.SHARDS,
                         columns=COLUMNS)


def counter_add_to_shard(*, tenant_id: int, inventory_id: int, shard: int, issued: int = 0, used: int = 0,
                         used_discount: int = 0) -> None:
    """Add to one given shard (a repair puts the difference in shard 0: only the sum is ever read)."""
    counters.counter_add(table=TABLE, owner=OWNER, tenant_id=tenant_id, owner_id=inventory_id, shard=shard,
                         deltas={"issued": issued, "used": used, "used_discount": used_discount})
