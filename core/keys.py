"""The tenant as the distribution key of the schema (issue #23): the keys a table distributed by ``tenant_id`` needs.

Citus distributes a table by one column and co-locates tables distributed the same way; it then requires of every
distributed table (https://docs.citusdata.com/en/stable/develop/reference_ddl.html#constraints):

- every primary key and unique constraint includes the distribution column;
- every foreign key between two distributed tables includes it on both sides (``(tenant_id, x_id) → (tenant_id,
  id)``), so the two rows always live on the same node;
- foreign keys from a distributed table to a *reference* table (copied to every node) are free.

PostgreSQL's own declarative partitioning by ``tenant_id`` (``core.partitioning``) asks the first of these too, so the
same keys serve both.

How the schema meets it — the reasoning the issue asks for:

- **Primary key ``(tenant_id, id)``, not Django 5.2's ``CompositePrimaryKey``.** The admin and every foreign key in
  Django 5.2 still need a single-column primary key, so the models keep ``id`` as Django's ``pk`` and the *database*
  key is ``(tenant_id, id)``. ``id`` still comes from one identity sequence per table, so it stays unique in practice;
  a plain (non-unique) index on ``id`` keeps Django's id-only statements (``save()``, the admin's change page) cheap.
- **Foreign keys between tenant tables are ``(tenant_id, x_id)``.** The model field says ``db_constraint=False`` (Django
  cannot write a two-column constraint) and ``FOREIGN_KEYS`` in the migration adds the real one, ``DEFERRABLE INITIALLY
  DEFERRED`` like Django's own. It is stronger than before, not weaker: a row can no longer point at another tenant's
  row. The code table's keys to its inventory and batch stay unconstrained, as they were (generation's ``COPY`` speed;
  migration coupons 0004).
- **One-to-one fields and public ids are unique per tenant** (``UNIQUE (tenant_id, col)``, same constraint name): in
  the model state they stay ``unique=True``; per tenant is equivalent for a one-to-one (the target row has the same
  tenant, by the foreign key above) and enough for a public id (every API and console lookup names its tenant).
- **Reference tables**: ``core_tenant``, ``core_user`` and ``core_apiclient`` (the token lookup happens before the
  tenant is known) and Django's own tables. ``REFERENCE_TABLES`` and ``LOCAL_TABLES`` below.
- **The audit log** keeps a nullable tenant (platform actions such as creating a tenant have none): its key is
  ``UNIQUE (tenant_id, id)`` rather than a primary key, which partitioning accepts (NULLs go to one partition).
  Citus refuses a NULL distribution value, so under Citus those rows need a table of their own — written down in
  docs/SCALING.md as work left.

``tests/core/test_distribution_keys.py`` checks the live catalog against these rules, so a new table or foreign key
that breaks them fails the suite; ``manage.py citus_plan`` prints the statements that distribute the schema.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import apps

# Tables with no tenant: copied to every Citus node.
REFERENCE_TABLES = ("core_tenant", "core_user", "core_apiclient")
# Tables of the coordinator only, never distributed: the database fallback of the frequency counters (``risk.limits``
# without Redis — a cluster runs with Redis).
LOCAL_TABLES = ("risk_frequencycounter",)
# A nullable tenant: a unique (tenant_id, id) key instead of a primary key (see above).
NULLABLE_TENANT_TABLES = ("core_auditlog",)
# The table the others are co-located with in Citus.
ANCHOR = "coupons_couponinventory"


def quote_identifier(name: str) -> str:
    """A table, index or constraint name as an SQL identifier (the names come from the catalog and the migrations,
    never from a request). ``core.partitioning`` uses it too."""
    return '"' + name.replace('"', '""') + '"'


_q = quote_identifier


def forward_sql(*, tables: Sequence[str], uniques: Sequence[tuple[str, str, str]],
                foreign_keys: Sequence[tuple[str, str, str, str]]) -> list[str]:
    """The statements that give ``tables`` their tenant keys (primary keys, uniques, then foreign keys)."""
    sql = []
    for table in tables:
        sql.append(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(table + '_pkey')}")
        if table in NULLABLE_TENANT_TABLES:
            sql.append(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(table + '_pkey')} UNIQUE (tenant_id, id)")
        else:
            sql.append(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(table + '_pkey')} PRIMARY KEY (tenant_id, id)")
        sql.append(f"CREATE INDEX {_q(table + '_id_idx')} ON {_q(table)} (id)")
    for table, name, column in uniques:
        sql.append(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}")
        sql.append(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} UNIQUE (tenant_id, {_q(column)})")
    for table, column, target, name in foreign_keys:
        # NOT VALID, then VALIDATE: the check of the existing rows takes a lock that lets reads and writes go on.
        sql.append(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} FOREIGN KEY (tenant_id, {_q(column)}) "
                   f"REFERENCES {_q(target)} (tenant_id, id) DEFERRABLE INITIALLY DEFERRED NOT VALID")
        sql.append(f"ALTER TABLE {_q(table)} VALIDATE CONSTRAINT {_q(name)}")
    return sql


def reverse_sql(*, tables: Sequence[str], uniques: Sequence[tuple[str, str, str]],
                foreign_keys: Sequence[tuple[str, str, str, str]]) -> list[str]:
    """The statements that put the single-column keys back (Django's reverse migrations then re-add its own FKs)."""
    sql = [f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}" for table, _column, _target, name in foreign_keys]
    for table, name, column in uniques:
        sql.append(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(name)}")
        sql.append(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} UNIQUE ({_q(column)})")
    for table in tables:
        sql.append(f"DROP INDEX {_q(table + '_id_idx')}")
        sql.append(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(table + '_pkey')}")
        sql.append(f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(table + '_pkey')} PRIMARY KEY (id)")
    return sql


def run(schema_editor: Any, statements: Sequence[str]) -> None:
    for statement in statements:
        schema_editor.execute(statement)


def distributed_tables() -> list[str]:
    """Every table distributed by ``tenant_id``: the models' tables with a ``tenant`` field, less the reference ones."""
    return sorted(m._meta.db_table for m in apps.get_models()
                  if m._meta.managed and any(f.name == "tenant" for f in m._meta.concrete_fields)
                  and m._meta.db_table not in REFERENCE_TABLES)


def reference_tables() -> list[str]:
    """Every other table of the models (with the many-to-many tables Django makes): copied to every node."""
    distributed = set(distributed_tables())
    tables = set()
    for model in apps.get_models(include_auto_created=True):
        if model._meta.managed and model._meta.db_table not in distributed and model._meta.db_table not in LOCAL_TABLES:
            tables.add(model._meta.db_table)
    return sorted(tables)


def citus_plan(connection: Any) -> list[str]:
    """The statements that distribute this database on a Citus coordinator, in order.

    Why this order (issue #23's trial on Citus 13.2): making ``core_tenant`` a reference table first turns every table
    with a foreign key to it into a Citus-local table, which then cannot be distributed. So every foreign key of the
    schema is dropped first (the definitions are read from the catalog), the tenant tables are distributed co-located
    with the first, the rest become reference tables, and the foreign keys are added back — between co-located tables
    they include ``tenant_id`` (``core.keys``), from a tenant table to a reference table they are free.
    """
    distributed = distributed_tables()
    reference = reference_tables()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
            "WHERE c.contype = 'f' AND c.conparentid = 0 AND n.nspname = current_schema() "
            "ORDER BY 1, 2")
        foreign_keys = cursor.fetchall()
    plan = ["-- 1. every foreign key dropped for the conversion (added back in step 4)"]
    plan += [f"ALTER TABLE {table} DROP CONSTRAINT {_q(name)}" for table, name, _definition in foreign_keys]
    plan.append(f"-- 2. the {len(distributed)} tenant tables distributed by tenant_id, co-located with {ANCHOR}")
    plan.append("--    (core_auditlog's rows without a tenant need a table of their own first: docs/SCALING.md)")
    distributed.sort(key=lambda table: table != ANCHOR)
    first = distributed[0]
    for table in distributed:
        colocate = "none" if table == first else first
        plan.append(f"SELECT create_distributed_table('{table}', 'tenant_id', colocate_with => '{colocate}')")
    plan.append(f"-- 3. the {len(reference)} other tables copied to every node")
    plan += [f"SELECT create_reference_table('{table}')" for table in reference]
    plan.append("-- 4. the foreign keys back")
    plan += [f"ALTER TABLE {table} ADD CONSTRAINT {_q(name)} {definition}"
             for table, name, definition in foreign_keys]
    return plan
