"""Stand-in for ``core.partitioning`` (#23, being written on main) with its interface, so ``bench scale`` runs
before it lands: nothing is converted, both layouts are the schema migrate makes. Removed when main is merged."""
from __future__ import annotations

from typing import Any

PARTITIONED_TABLES = ["coupons_couponcode", "coupons_couponissue", "coupons_couponusage", "core_auditlog"]


def partition(connection: Any) -> None:
    return None


def unpartition(connection: Any) -> None:
    return None


def is_partitioned(connection: Any, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = %s::regclass", [table])
        return bool(cursor.fetchone()[0])
