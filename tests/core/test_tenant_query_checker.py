"""#23: the checker of tests/tenant_queries.py itself — which statements name their tenant and which do not."""
from __future__ import annotations

import pytest
from django.db import connection

from coupons.services import issue, lifecycle
from tests import factories
from tests.tenant_queries import every_query_names_its_tenant, tenant_tables, violations

PASS = [
    "SELECT id FROM coupons_couponcode WHERE tenant_id = %s AND code = %s",
    'SELECT "coupons_couponcode"."id" FROM "coupons_couponcode" WHERE ("coupons_couponcode"."code" = %s AND '
    '"coupons_couponcode"."tenant_id" = %s)',
    "SELECT code FROM coupons_couponcode WHERE tenant_id = %s AND code = ANY(%s)",
    'SELECT 1 FROM "coupons_couponcode" WHERE "coupons_couponcode"."tenant_id" IN (%s, %s)',
    # a join: the inventory's tenant is the code's, which is named
    'SELECT c.id FROM coupons_couponcode c JOIN coupons_couponinventory i ON i.tenant_id = c.tenant_id '
    'AND i.id = c.inventory_id WHERE c.tenant_id = %s',
    # core_tenant is a reference table, a CTE is not a table
    "SELECT c.id FROM coupons_couponcode c JOIN core_tenant t ON t.id = c.tenant_id WHERE c.tenant_id = %s",
    'INSERT INTO "coupons_couponissue" ("tenant_id", "coupon_id") VALUES (%s, %s) RETURNING "id"',
    'UPDATE "coupons_couponcode" SET "status" = %s WHERE ("coupons_couponcode"."tenant_id" = %s AND '
    '"coupons_couponcode"."id" = %s)',
    'DELETE FROM "risk_alarm" WHERE "risk_alarm"."tenant_id" = %s',
    # a sub-select correlated on the tenant of a named outer row
    'SELECT i.id FROM coupons_couponinventory i WHERE i.tenant_id = %s AND EXISTS(SELECT 1 FROM coupons_couponcode U0 '
    'WHERE U0.tenant_id = (i.tenant_id) AND U0.inventory_id = (i.id))',
    "SELECT 1 FROM pg_class WHERE relname = 'coupons_couponcode'",  # literals are not tables
    "SELECT pg_advisory_xact_lock(%s)",
]

FAIL = [
    ("SELECT id FROM coupons_couponcode WHERE code = %s", "coupons_couponcode"),
    ('SELECT "coupons_couponbatch"."id" FROM "coupons_couponbatch" WHERE "coupons_couponbatch"."id" = %s LIMIT 21',
     "coupons_couponbatch"),  # by primary key only
    ('UPDATE "coupons_couponcode" SET "tenant_id" = %s, "status" = %s WHERE "coupons_couponcode"."id" = %s',
     "coupons_couponcode"),  # SET tenant_id is an assignment, not a predicate
    ("DELETE FROM risk_alarm WHERE id = %s", "risk_alarm"),
    ('INSERT INTO "coupons_couponissue" ("coupon_id") VALUES (%s)', "coupons_couponissue"),
    # the joined table is constrained by id only
    ('SELECT c.id FROM coupons_couponcode c JOIN coupons_couponinventory i ON i.id = c.inventory_id '
     'WHERE c.tenant_id = %s', "coupons_couponinventory"),
    # two tenant tables joined on tenant_id, neither given a value
    ("SELECT 1 FROM coupons_couponcode c JOIN coupons_couponinventory i ON i.tenant_id = c.tenant_id "
     "WHERE c.code = %s", "coupons_couponcode"),
    # a tenant_id from a sub-select is not a value a planner can route on
    ("SELECT 1 FROM coupons_couponcode WHERE tenant_id IN (SELECT id FROM core_tenant)", "coupons_couponcode"),
    # the tenant named in the sub-select only: the outer reference is still open
    ("SELECT 1 FROM coupons_couponcode c WHERE c.id = (SELECT id FROM coupons_couponcode WHERE tenant_id = %s "
     "LIMIT 1)", "coupons_couponcode"),
    ("SELECT 1 FROM coupons_couponcode c, coupons_couponbatch b WHERE c.tenant_id = %s AND b.id = c.batch_id",
     "coupons_couponbatch"),
    ("SELECT id FROM coupons_couponcode -- WHERE tenant_id = %s\n WHERE code = 'tenant_id = 1'",
     "coupons_couponcode"),  # not fooled by a comment or a literal
]


def test_the_tenant_tables_come_from_the_models():
    tables = tenant_tables()
    assert {"coupons_couponcode", "coupons_couponissue", "core_apiclient", "risk_alarm", "events_event"} <= tables
    assert not {"core_tenant", "risk_frequencycounter", "auth_group"} & tables


@pytest.mark.parametrize("sql", PASS)
def test_statements_that_name_their_tenant_pass(sql):
    assert violations(sql) == []


@pytest.mark.parametrize(("sql", "table"), FAIL)
def test_statements_that_do_not_fail_naming_the_table(sql, table):
    assert table in {v.table for v in violations(sql)}


@pytest.mark.parametrize("sql", [issue._TAKE_NEXT, issue._TAKE_THIS, issue._MEMBER_STATE, lifecycle._REDEEM_WRITES,
                                 lifecycle._locked_sql()], ids=["take-next", "take-this", "member-state", "redeem",
                                                                "locked-row"])
def test_the_claim_and_redeem_statements_pass(sql):
    assert violations(sql) == []


def test_the_claim_statement_without_its_tenant_fails():
    without = issue._TAKE_NEXT.replace("WHERE tenant_id = %(tenant)s AND inventory_id", "WHERE inventory_id")
    assert without != issue._TAKE_NEXT
    assert [v.table for v in violations(without)] == ["coupons_couponcode"]


def test_token_authentication_is_allowed_and_nothing_like_it(db):
    allowed = ('SELECT "core_apiclient"."id", "core_tenant"."id" FROM "core_apiclient" INNER JOIN "core_tenant" ON '
               '("core_apiclient"."tenant_id" = "core_tenant"."id") WHERE ("core_apiclient"."key_prefix" = %s OR '
               '"core_apiclient"."previous_key_prefix" = %s) ORDER BY "core_tenant"."name" ASC')
    assert violations(allowed) == []
    assert violations('SELECT "core_apiclient"."id" FROM "core_apiclient" WHERE "core_apiclient"."name" = %s')
    assert violations('UPDATE "core_apiclient" SET "last_used_at" = %s WHERE "core_apiclient"."id" = %s')


def test_the_mode_fails_a_query_without_its_tenant_on_a_real_database(db):
    tenant = factories.make_tenant()
    inventory, codes = factories.make_pool(tenant, size=1)
    from coupons.models import CouponCode

    with every_query_names_its_tenant() as mode:
        assert CouponCode.objects.filter(tenant=tenant, code=codes[0].code).exists()
        with pytest.raises(AssertionError, match="coupons_couponcode names no tenant_id"):
            CouponCode.objects.filter(code=codes[0].code).exists()
        mode.violations.clear()  # seen; the block may end
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM coupons_couponcode WHERE tenant_id = %s AND inventory_id = %s",
                           [tenant.pk, inventory.pk])
            assert cursor.fetchone() == (1,)


def test_a_violation_swallowed_by_the_code_still_fails_when_the_mode_ends(db):
    from coupons.models import CouponCode

    with pytest.raises(AssertionError, match="names no tenant_id"):
        with every_query_names_its_tenant():
            try:
                CouponCode.objects.filter(code="X").exists()
            except AssertionError:
                pass  # as a broad ``except`` in the code might
