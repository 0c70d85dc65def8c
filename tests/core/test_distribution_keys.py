"""The tenant as distribution key (issue #23, R-NFR scale): the live catalog obeys the rules a Citus cluster distributed
by ``tenant_id`` — and PostgreSQL's partitioning by it — impose (core/keys.py), the largest tables are partitioned
(core/partitioning.py), and ``manage.py citus_plan`` is SQL that runs.

The rules are read from the catalog after the migrations, so a new table, unique constraint or foreign key that
breaks them fails here, not on the day the cluster is built.
"""
from __future__ import annotations

import io
import re

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core import keys, partitioning
from coupons.models import CouponBatch, CouponCode, CouponIssue
from tests import factories

pytestmark = pytest.mark.django_db


def _rows(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _attnum(table, column):
    return _rows("SELECT attnum FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
                 [table, column])[0][0]


DISTRIBUTED = keys.distributed_tables()


def test_every_table_of_the_models_is_distributed_reference_or_local():
    tables = {m._meta.db_table for m in apps.get_models(include_auto_created=True) if m._meta.managed}
    assert tables == set(DISTRIBUTED) | set(keys.reference_tables()) | set(keys.LOCAL_TABLES)
    assert {"coupons_couponcode", "coupons_couponissue", "coupons_inventorycounter", "draws_prizetier",
            "risk_webhookattempt", "coupons_coupongrantmember", "coupons_couponbatchchunk"} <= set(DISTRIBUTED)
    assert not set(DISTRIBUTED) & set(keys.REFERENCE_TABLES)


@pytest.mark.parametrize("table", DISTRIBUTED)
def test_a_tenant_table_is_keyed_by_tenant(table):
    """The primary key (or, for the audit log's nullable tenant, the unique key) is (tenant_id, id); tenant_id is
    NOT NULL; id keeps an index of its own for Django's id-only statements."""
    tenant, ident = _attnum(table, "tenant_id"), _attnum(table, "id")
    kind = "u" if table in keys.NULLABLE_TENANT_TABLES else "p"
    assert _rows("SELECT conkey FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s AND contype = %s",
                 [table, f"{table}_pkey", kind]) == [([tenant, ident],)]
    not_null = _rows("SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'tenant_id'",
                     [table])[0][0]
    assert not_null is (table not in keys.NULLABLE_TENANT_TABLES)
    assert _rows("SELECT 1 FROM pg_index WHERE indrelid = %s::regclass AND indkey::text = %s", [table, str(ident)])


@pytest.mark.parametrize("table", DISTRIBUTED)
def test_every_unique_key_of_a_tenant_table_includes_the_tenant(table):
    tenant = _attnum(table, "tenant_id")
    offenders = _rows("SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                      "WHERE i.indrelid = %s::regclass AND i.indisunique AND NOT (%s = ANY(i.indkey::smallint[]))",
                      [table, tenant])
    assert offenders == []


@pytest.mark.parametrize("table", DISTRIBUTED)
def test_every_foreign_key_between_tenant_tables_pairs_the_tenants(table):
    """(tenant_id, x_id) → (tenant_id, id) — the tenant column paired with the tenant column, as Citus requires: both
    rows on one node; and no foreign key from a reference table to a tenant table."""
    for name, target, conkey, confkey in _rows(
            "SELECT conname, confrelid::regclass::text, conkey, confkey FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f' AND conparentid = 0", [table]):
        if target in DISTRIBUTED:
            here, there = _attnum(table, "tenant_id"), _attnum(target, "tenant_id")
            assert here in conkey and confkey[conkey.index(here)] == there, name
        else:
            assert target in keys.REFERENCE_TABLES, (name, target)
    assert _rows("SELECT conname FROM pg_constraint WHERE confrelid = %s::regclass AND contype = 'f' "
                 "AND conrelid::regclass::text = ANY(%s)", [table, list(keys.reference_tables())]) == []


def test_every_relation_between_tenant_models_has_its_database_key():
    """Each model field pointing from one tenant table to another is a composite foreign key in the database — except
    the code table's and the mapping table's own, unconstrained since coupons 0004 / partners 0002 for bulk COPY."""
    unconstrained = {("coupons_couponcode", "inventory_id"), ("coupons_couponcode", "batch_id"),
                     ("partners_couponmapping", "partner_id"), ("partners_couponmapping", "upload_id")}
    missing = []
    for model in apps.get_models():
        table = model._meta.db_table
        if table not in DISTRIBUTED:
            continue
        for field in model._meta.concrete_fields:
            if not field.is_relation or field.name == "tenant" or field.related_model._meta.db_table not in DISTRIBUTED:
                continue
            if (table, field.column) in unconstrained:
                continue
            found = _rows("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
                          "AND conparentid = 0 AND conkey = ARRAY[%s, %s]::smallint[]",
                          [table, _attnum(table, "tenant_id"), _attnum(table, field.column)])
            if not found:
                missing.append(f"{table}.{field.column}")
    assert missing == []


def test_a_row_cannot_point_at_another_tenants_row(tenant, other_tenant):
    """Stronger than Django's id-only key: a batch of tenant B on tenant A's inventory is refused by the database."""
    inventory = factories.make_inventory(tenant)
    with pytest.raises(IntegrityError, match="coupons_couponbatch_inventory_id_tenant_fk"), transaction.atomic():
        CouponBatch.objects.create(tenant=other_tenant, inventory=inventory, batch_code="X", quantity=1)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    CouponBatch.objects.create(tenant=tenant, inventory=inventory, batch_code="Y", quantity=1)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the same row in its own tenant is accepted


@pytest.mark.parametrize("table", partitioning.PARTITIONED_TABLES)
def test_the_largest_tables_are_partitioned_by_hash_of_tenant(table):
    assert partitioning.is_partitioned(connection, table)
    assert _rows("SELECT pg_get_partkeydef(%s::regclass)", [table]) == [("HASH (tenant_id)",)]
    assert _rows("SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", [table]) == [(16,)]


def test_a_tenants_codes_live_in_one_partition_and_its_lookups_touch_only_that_one(tenant, other_tenant):
    factories.make_pool(tenant, size=5)
    factories.make_pool(other_tenant, size=5)
    partitions = _rows("SELECT DISTINCT tableoid::regclass::text FROM coupons_couponcode WHERE tenant_id = %s",
                       [tenant.pk])
    assert len(partitions) == 1
    code = CouponCode.objects.filter(tenant=tenant).first()
    plan = "\n".join(row[0] for row in _rows(
        "EXPLAIN SELECT id FROM coupons_couponcode WHERE tenant_id = %s AND code = %s", [tenant.pk, code.code]))
    assert set(re.findall(r" on (coupons_couponcode_p\d+)\b", plan)) == {partitions[0][0]}, plan


def test_partitioning_round_trip_keeps_rows_keys_and_the_identity(tenant):
    """unpartition() then partition() — the reverse and forward of migration core 0009 — keep every row, the
    constraints (a second issue of one code is still refused) and the identity sequence."""
    factories.make_pool(tenant, size=3)
    before = sorted(CouponCode.objects.values_list("id", "code"))
    partitioning.unpartition(connection)
    assert not any(partitioning.is_partitioned(connection, t) for t in partitioning.PARTITIONED_TABLES)
    assert sorted(CouponCode.objects.values_list("id", "code")) == before
    partitioning.partition(connection)
    assert all(partitioning.is_partitioned(connection, t) for t in partitioning.PARTITIONED_TABLES)
    assert sorted(CouponCode.objects.values_list("id", "code")) == before
    code = CouponCode.objects.get(pk=before[0][0])
    newest = factories.make_codes(code.batch, 1)[-1]
    assert newest.pk > max(i for i, _ in before)
    CouponIssue.objects.create(tenant=tenant, inventory_id=code.inventory_id, coupon=code, member_id="m", slot=1,
                               via="claim", issued_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponIssue.objects.create(tenant=tenant, inventory_id=code.inventory_id, coupon=code, member_id="n",
                                   slot=1, via="claim", issued_at=timezone.now())


_CITUS_STUBS = """
CREATE TABLE public.citus_calls (kind text, tbl text, col text, colocate text);
CREATE FUNCTION public.create_distributed_table(t regclass, col text, colocate_with text DEFAULT 'default')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  -- Citus's refusals, emulated: a foreign key to a table not yet distributed or reference, a unique key without
  -- the distribution column.
  IF EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = t AND contype = 'f') THEN
    RAISE EXCEPTION 'foreign key on % at distribution', t;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t AND i.indisunique AND NOT ((SELECT attnum FROM pg_attribute
             WHERE attrelid = t AND attname = col) = ANY(i.indkey::smallint[]))) THEN
    RAISE EXCEPTION 'unique key of % without %', t, col;
  END IF;
  INSERT INTO public.citus_calls VALUES ('distributed', t::text, col, colocate_with);
END $$;
CREATE FUNCTION public.create_reference_table(t regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.citus_calls VALUES ('reference', t::text, NULL, NULL);
END $$;
"""


def test_citus_plan_runs_and_puts_every_foreign_key_back():
    """The printed plan executed against stand-ins of Citus's two functions, which refuse what Citus refuses."""
    foreign_keys = sorted(_rows("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                                "FROM pg_constraint WHERE contype = 'f' AND conparentid = 0"))
    out = io.StringIO()
    call_command("citus_plan", stdout=out)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CITUS_STUBS)
            cursor.execute(out.getvalue())
            cursor.execute("SELECT kind, tbl, col, colocate FROM public.citus_calls")
            calls = cursor.fetchall()
            after = sorted(_rows("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                                 "FROM pg_constraint WHERE contype = 'f' AND conparentid = 0"))
        transaction.set_rollback(True)
    distributed = [(t, col, colocate) for kind, t, col, colocate in calls if kind == "distributed"]
    assert sorted(t for t, _c, _o in distributed) == DISTRIBUTED
    assert distributed[0] == (keys.ANCHOR, "tenant_id", "none")
    assert {(c, o) for _t, c, o in distributed[1:]} == {("tenant_id", keys.ANCHOR)}
    assert sorted(t for kind, t, _c, _o in calls if kind == "reference") == keys.reference_tables()
    assert after == foreign_keys


def test_a_violation_in_a_partition_is_named_by_its_parent_constraint(tenant):
    """PostgreSQL reports the partition's index; a constraint added after the partitioning (here: dropped and added
    again, as a later migration would) has partition indexes named by PostgreSQL. ``violated_constraint`` resolves
    either to the name the code knows — the issue slot guard (coupons.services.issue) depends on it."""
    _inventory, codes = factories.make_pool(tenant, size=2)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE coupons_couponissue DROP CONSTRAINT issue_unique_member_slot")
        cursor.execute("ALTER TABLE coupons_couponissue ADD CONSTRAINT issue_unique_member_slot "
                       "UNIQUE (tenant_id, inventory_id, member_id, slot)")
    first = {"tenant": tenant, "inventory_id": codes[0].inventory_id, "member_id": "m", "slot": 1, "via": "claim",
             "issued_at": timezone.now()}
    CouponIssue.objects.create(coupon=codes[0], **first)
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        CouponIssue.objects.create(coupon=codes[1], **first)
    reported = refused.value.__cause__.diag.constraint_name
    assert reported != "issue_unique_member_slot" and reported.startswith("coupons_couponissue_p")
    assert partitioning.violated_constraint(refused.value) == "issue_unique_member_slot"
