"""Sharded counters: a row per (tenant, owner, shard) that a write adds to inside its own transaction, summed on read.

Concurrent writers of one owner (an inventory's claims and redemptions) spread over ``shards`` rows instead of
queuing on one. Every writer goes through ``upsert_sql`` — the ORM-level ``counter_add`` and the one-statement claim
and redeem paths (which embed it as a CTE) — so the SQL exists once.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

from django.db import connection


def shard_of(member_id: str, shards: int) -> int:
    """The member's shard: stable, so one member's writes land on one row."""
    return zlib.crc32(member_id.encode()) % shards


def upsert_sql(*, table: str, owner: str, columns: Sequence[str], select: str) -> str:
    """``INSERT … ON CONFLICT DO UPDATE`` adding the new row's values to the shard's. ``select`` gives
    ``tenant_id, owner, shard, *columns`` in order: ``VALUES (…)`` or a ``SELECT … FROM <cte>``. The tenant leads
    the unique key, as the distribution key must (#23)."""
    names = ", ".join(columns)
    adds = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in columns)
    return (f"INSERT INTO {table} (tenant_id, {owner}, shard, {names})\n{select}\n"
            f"ON CONFLICT (tenant_id, {owner}, shard) DO UPDATE SET {adds}")


def counter_add(*, table: str, owner: str, tenant_id: int, owner_id: int, shard: int,
                deltas: dict[str, int]) -> None:
    """Add ``deltas`` to the shard's row. Must run inside the transaction of the change it counts."""
    columns = list(deltas)
    placeholders = ", ".join(["%s"] * (len(columns) + 3))
    with connection.cursor() as cursor:
        cursor.execute(upsert_sql(table=table, owner=owner, columns=columns, select=f"VALUES ({placeholders})"),
                       [tenant_id, owner_id, shard, *deltas.values()])


def counter_totals(*, table: str, owner: str, owner_id: int, columns: Sequence[str]) -> dict[str, int]:
    """The owner's totals over its shards (0 for an owner with no row yet)."""
    sums = ", ".join(f"COALESCE(SUM({c}), 0)" for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sums} FROM {table} WHERE {owner} = %s", [owner_id])
        row = cursor.fetchone()
    return {c: int(v) for c, v in zip(columns, row, strict=True)}


def lock_shards(*, table: str, owner: str, tenant_id: int, owner_id: int, shards: int,
                columns: Sequence[str]) -> None:
    """Create every shard row of the owner that is missing and lock them all, in shard order (a repair's first step:
    writers counting into this owner wait for its commit)."""
    zeros = ", ".join("0" for _ in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (tenant_id, {owner}, shard, {', '.join(columns)}) "
                       f"SELECT %s, %s, s, {zeros} FROM generate_series(0, %s) s "
                       f"ON CONFLICT (tenant_id, {owner}, shard) DO NOTHING",
                       [tenant_id, owner_id, shards - 1])
        cursor.execute(f"SELECT id FROM {table} WHERE tenant_id = %s AND {owner} = %s ORDER BY shard FOR UPDATE",
                       [tenant_id, owner_id])
