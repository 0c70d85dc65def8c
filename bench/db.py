"""The scratch database every ``manage.py bench`` run works in, so benchmarks never touch dev data."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from core import partitioning


def dsn(name: str) -> dict[str, Any]:
    """psycopg's connection arguments for database ``name`` on the current server."""
    s = connection.settings_dict
    return {"host": s["HOST"] or None, "port": s["PORT"] or None, "user": s["USER"] or None,
            "password": s["PASSWORD"] or None, "dbname": name}


def admin_connection() -> psycopg.Connection:
    """An autocommit connection to the server's maintenance database (to create and drop databases)."""
    return psycopg.connect(**dsn("postgres"), autocommit=True)


def database_url(name: str) -> str:
    """DATABASE_URL of database ``name`` on the current server, for child processes (gunicorn, commands)."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{name}"


# The tables a claim or a redemption writes.
WRITTEN_TABLES = ("coupons_couponcode", "coupons_couponissue", "coupons_couponusage", "core_auditlog",
                  "coupons_inventorycounter")


def autovacuum(database: str) -> None:
    """What the server's autovacuum does between waves of claims (CI's server runs without it), from a connection of
    its own: ``VACUUM ANALYZE`` of the written tables. Otherwise the claimed codes' dead index entries pile up at the
    head of the pool for the whole run, and tables analyzed while empty (issues, usages, the audit log) keep the plans
    made for empty tables — a cached plan that scans the growing issue table whole on every claim."""
    with psycopg.connect(**dsn(database), autocommit=True) as conn:
        for table in WRITTEN_TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")


def layout_arguments(parser: Any, *, layout: bool = True) -> None:
    """``--layout`` (unless the benchmark measures both), ``--partitions`` and ``--tables``, as every layout-aware
    bench takes them."""
    if layout:
        parser.add_argument("--layout", choices=["partitioned", "flat"], default="partitioned",
                            help="The largest tables partitioned by tenant, as migrated (default), or plain (#23).")
    parser.add_argument("--partitions", type=int, default=partitioning.PARTITIONS,
                        help=f"Hash partitions per table in the partitioned layout (default {partitioning.PARTITIONS}, "
                             f"as migrated).")
    parser.add_argument("--tables", default=",".join(partitioning.PARTITIONED_TABLES),
                        help="Comma-separated: the tables partitioned in the partitioned layout, the others turned "
                             "plain (default: all the migrations partition) — to find which table costs what.")


def layout_tables(options: dict[str, Any]) -> tuple[str, ...]:
    """``--tables`` read and checked: a name that is not one of the partitioned tables is a CommandError."""
    tables = tuple(t.strip() for t in options.get("tables", ",".join(partitioning.PARTITIONED_TABLES)).split(",")
                   if t.strip())
    unknown = set(tables) - set(partitioning.PARTITIONED_TABLES)
    if unknown:
        raise CommandError(f"--tables: not a partitioned table: {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(partitioning.PARTITIONED_TABLES)}")
    return tables


def apply_layout(layout: str, *, partitions: int = partitioning.PARTITIONS,
                 tables: tuple[str, ...] = partitioning.PARTITIONED_TABLES) -> dict[str, int]:
    """Turn the migrated database into ``layout``: flat, or ``tables`` in ``partitions`` hash partitions and the rest
    of the partitioned tables plain. Returns each table's partitions (0: a plain table)."""
    if layout == "flat" or partitions != partitioning.PARTITIONS:
        partitioning.unpartition(connection)
    else:
        partitioning.unpartition(connection, tuple(t for t in partitioning.PARTITIONED_TABLES if t not in tables))
    if layout != "flat":
        partitioning.partition(connection, tables, partitions=partitions)  # a no-op where migrate made them already
    counts = {}
    with connection.cursor() as cursor:
        for table in partitioning.PARTITIONED_TABLES:
            cursor.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [table])
            counts[table] = int(cursor.fetchone()[0])
    return counts


def forget_redis_keys(database: str) -> int:
    """Delete the Redis keys named after ``database`` (lookup limits, daily counters, Bloom filters: each namespaced
    by the database's name). A scratch database made again restarts its ids, so the last run's keys would be the new
    run's: a client id whose failed-guess budget the last run spent would be refused from its first request."""
    if not settings.USE_REDIS:
        return 0
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = [key for key in client.scan_iter(match=f"*{database}*", count=1000)
            if f":{database}:".encode() in key or key.endswith(f":{database}".encode())]
    return int(client.delete(*keys)) if keys else 0


@contextmanager
def scratch_database(name: str, *, keep: bool = False, layout: str = "partitioned",
                     partitions: int = partitioning.PARTITIONS,
                     tables: tuple[str, ...] = partitioning.PARTITIONED_TABLES) -> Iterator[str]:
    """Create ``name`` afresh, point this process's connection at it and migrate it; afterwards point back and drop
    it (unless ``keep``). ``layout="flat"`` turns the tables the migrations partition back into plain ones
    (``core.partitioning``), to measure both layouts in one run (#23); ``partitions`` other than the migrations'
    count re-partitions them with that many, to measure the count (``apply_layout``)."""
    original = connection.settings_dict["NAME"]
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    forget_redis_keys(name)
    connections.close_all()
    connection.settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0, interactive=False)
        apply_layout(layout, partitions=partitions, tables=tables)
        yield name
    finally:
        connections.close_all()
        connection.settings_dict["NAME"] = original
        if not keep:
            with admin_connection() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Memory of the running process, for benchmarks that report a phase's peak (Linux /proc) ----------------------

def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def vm_hwm_mb() -> float:
    """Peak resident memory (VmHWM) since the process started or since the last ``reset_hwm()``."""
    return _status_mb("VmHWM")


def vm_rss_mb() -> float:
    return _status_mb("VmRSS")


def reset_hwm() -> None:
    """Start a new peak from the current RSS, so a phase's peak is its own (Linux ≥ 4.0; a no-op elsewhere)."""
    try:  # writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
