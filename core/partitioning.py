"""Declarative partitioning of the largest tables by hash of ``tenant_id`` on stock PostgreSQL (issue #23).

The codes, their issues and usages and the audit log grow with every tenant's events; partitioned by hash of the
tenant, each partition holds a sixteenth of the tenants, with indexes a sixteenth of the size, and every statement
that names its tenant (all of the member API's, ``tests/tenant_queries.py``) is planned against one partition. It is
also the shape a Citus cluster takes (shards by tenant) — the keys it needs are in ``core.keys``.

``partition(connection)`` converts the tables, ``unpartition(connection)`` converts them back; both are idempotent
and keep every row, identity value, constraint, index, trigger and foreign key (to and from the table) by reading
them from the catalog before the swap, all tables in one transaction (a savepoint inside the caller's). The swap
of one table:

1. ``CREATE TABLE <t>__swap (LIKE <t> INCLUDING …)`` — partitioned by ``HASH (tenant_id)`` with ``PARTITIONS``
   partitions ``<t>_p0`` … (or a plain table, to go back);
2. ``INSERT … OVERRIDING SYSTEM VALUE SELECT *`` and the identity sequence moved past the largest id;
3. the foreign keys into ``<t>`` dropped, ``<t>`` dropped, ``<t>__swap`` renamed ``<t>``;
4. the primary key, unique and foreign-key constraints, the indexes and the triggers created again from their
   definitions, then the foreign keys into it, then ``ANALYZE``.

It rewrites the whole table under ACCESS EXCLUSIVE: on a live system this is a maintenance window (or, for the code
table, pg_partman / logical replication into the new layout — docs/SCALING.md). ``bench scale`` measures both
layouts side by side.
"""
from __future__ import annotations

import functools
import re
from typing import Any

from django.db import connection as default_connection, transaction

from core.keys import quote_identifier as _q

PARTITIONED_TABLES = ("coupons_couponcode", "coupons_couponissue", "coupons_couponusage", "core_auditlog")
PARTITIONS = 16


@functools.lru_cache(maxsize=4096)
def for_tenant(sql: str, tenant_id: int) -> str:
    """``sql`` with its ``%(tenant)s`` parameter written in as the tenant's id, for the hot statements on partitioned
    tables (a claim's, a redemption's). PostgreSQL then prunes the partitions when it plans the statement, generic
    plan included: the plan a connection caches names the tenant's partition only. With the tenant as a parameter,
    the generic plan names all sixteen, and every execution locks them, sets up an UPDATE's result relation for each
    and prunes them again at run time (bench/RESULTS.md, "Plan-time pruning"). The id is the server's own integer,
    never a caller's text; one statement text per tenant, so a connection prepares one per tenant it serves
    (``DJANGO_DB_PREPARED_MAX``)."""
    return sql.replace("%(tenant)s", str(int(tenant_id)))


def parent_name(name: str) -> str:
    """The table, index or constraint a partition's own is part of: ``coupons_couponcode_p7`` → ``coupons_couponcode``,
    ``code_unique_per_tenant_p7`` → ``code_unique_per_tenant``. PostgreSQL reports a violation under the partition's
    names; the swap below names them ``<parent>_p<n>`` so that code matching a constraint's name keeps working."""
    return re.sub(r"_p\d+$", "", name)


def violated_constraint(exc: BaseException) -> str | None:
    """The constraint a database error names, as its table knows it: on a partitioned table PostgreSQL names the
    partition's index (``issue_unique_member_slot_p3``, or a name of its own choosing for a constraint added after
    the swap), so it is resolved to the partitioned index it belongs to. Call it once the failed transaction (or
    savepoint) has been rolled back."""
    cause = exc if hasattr(exc, "diag") else exc.__cause__
    name = getattr(getattr(cause, "diag", None), "constraint_name", None)
    if not name:
        return None
    with default_connection.cursor() as cursor:
        cursor.execute("SELECT parent.relname FROM pg_class child JOIN pg_inherits i ON i.inhrelid = child.oid "
                       "JOIN pg_class parent ON parent.oid = i.inhparent "
                       "WHERE child.relname = %s AND child.relkind = 'i' "
                       "AND child.relnamespace = current_schema()::regnamespace", [name])
        row = cursor.fetchone()
    return str(row[0]) if row else str(name)


def is_partitioned(connection: Any, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no table {table}")
    return bool(row[0] == "p")


def partition(connection: Any, tables: tuple[str, ...] = PARTITIONED_TABLES, partitions: int = PARTITIONS) -> None:
    # One transaction (a savepoint inside the caller's): LOCK TABLE needs one, and a failed swap leaves nothing half done.
    with transaction.atomic(using=connection.alias):
        for table in tables:
            if not is_partitioned(connection, table):
                _swap(connection, table, partitions=partitions)


def unpartition(connection: Any, tables: tuple[str, ...] = PARTITIONED_TABLES) -> None:
    with transaction.atomic(using=connection.alias):
        for table in tables:
            if is_partitioned(connection, table):
                _swap(connection, table, partitions=0)


def _swap(connection: Any, table: str, *, partitions: int) -> None:
    swap = f"{table}__swap"
    with connection.cursor() as cursor:
        # Deferred foreign-key checks still pending in this transaction would keep the old table from being dropped.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Nobody writes between the copy and the drop: a row committed in between would be lost with the old table.
        cursor.execute(f"LOCK TABLE {_q(table)} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
                       "AND contype IN ('p', 'u', 'f', 'x') AND conparentid = 0 ORDER BY contype DESC, conname",
                       [table])
        # 'u' and 'p' before 'f': a self-referencing foreign key needs the key it points at.
        constraints = sorted(cursor.fetchall(), key=lambda row: row[1].startswith("FOREIGN KEY"))
        cursor.execute("SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
                       "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid "
                       "AND c.conrelid = i.indrelid) ORDER BY i.indexrelid", [table])
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE confrelid = %s::regclass AND conrelid <> confrelid AND contype = 'f' "
                       "AND conparentid = 0", [table])
        incoming = cursor.fetchall()
        cursor.execute("SELECT tgname, pg_get_triggerdef(oid), (tgtype & 1) = 0 FROM pg_trigger "
                       "WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgparentid = 0", [table])
        triggers = cursor.fetchall()
        cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attidentity <> '' "
                       "AND NOT attisdropped", [table])
        identities = [row[0] for row in cursor.fetchall()]

        layout = " PARTITION BY HASH (tenant_id)" if partitions else ""
        cursor.execute(f"CREATE TABLE {_q(swap)} (LIKE {_q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                       f"INCLUDING IDENTITY INCLUDING STORAGE INCLUDING COMPRESSION){layout}")
        for remainder in range(partitions):
            cursor.execute(f"CREATE TABLE {_q(f'{table}_p{remainder}')} PARTITION OF {_q(swap)} "
                           f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder})")
        cursor.execute(f"INSERT INTO {_q(swap)} OVERRIDING SYSTEM VALUE SELECT * FROM {_q(table)}")
        for column in identities:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                           f"GREATEST((SELECT MAX({_q(column)}) FROM {_q(swap)}), "
                           f"(SELECT last_value FROM pg_sequences WHERE schemaname = current_schema() AND "
                           f"sequencename = %s), 1))",
                           [swap, column, f"{table}_{column}_seq"])
        for referencing, name, _definition in incoming:
            cursor.execute(f"ALTER TABLE {referencing} DROP CONSTRAINT {_q(name)}")
        cursor.execute(f"DROP TABLE {_q(table)}")
        cursor.execute(f"ALTER TABLE {_q(swap)} RENAME TO {_q(table)}")
        for column in identities:
            cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, column])
            (sequence,) = cursor.fetchone()
            cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {_q(f'{table}_{column}_seq')}")
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}")
        for definition in indexes:
            cursor.execute(definition)
        if partitions:
            _name_partition_indexes(cursor, table)
        for referencing, name, definition in incoming:
            cursor.execute(f"ALTER TABLE {referencing} ADD CONSTRAINT {_q(name)} {definition}")
        for name, definition, per_statement in triggers:
            cursor.execute(definition)
            # PostgreSQL clones row triggers to the partitions, not statement triggers: the audit log's refusal of
            # TRUNCATE must stand on each partition too, or TRUNCATE core_auditlog_p3 would empty a sixteenth of it.
            for remainder in range(partitions if per_statement else 0):
                partition = f"{table}_p{remainder}"
                cursor.execute(definition.replace(f"TRIGGER {name} ", f"TRIGGER {name}_p{remainder} ", 1)
                               .replace(f" ON public.{table} ", f" ON public.{partition} ", 1))
        cursor.execute(f"ANALYZE {_q(table)}")


def _name_partition_indexes(cursor: Any, table: str) -> None:
    """``<parent index>_p<n>`` for every partition's index (PostgreSQL names them after the partition's columns), so a
    unique violation names the parent's constraint (see ``parent_name``)."""
    cursor.execute("SELECT child.relname, parent.relname, part.relname FROM pg_inherits i "
                   "JOIN pg_class child ON child.oid = i.inhrelid JOIN pg_class parent ON parent.oid = i.inhparent "
                   "JOIN pg_index x ON x.indexrelid = child.oid JOIN pg_class part ON part.oid = x.indrelid "
                   "JOIN pg_index px ON px.indexrelid = parent.oid WHERE px.indrelid = %s::regclass", [table])
    for child, parent, partition_table in cursor.fetchall():
        suffix = partition_table[len(table):]  # "_p7"
        wanted = parent[:63 - len(suffix)] + suffix
        if child != wanted:
            cursor.execute(f"ALTER INDEX {_q(child)} RENAME TO {_q(wanted)}")
