"""Issue #23: a code is unique within its tenant — UNIQUE (tenant_id, code), one Bloom filter per tenant.

- the database guard: a duplicate (tenant, code) is refused; the same code in another tenant is not;
- the migration (0010) keeps every row, swaps the constraints, and finishes after an interrupted index build;
- one filter per tenant under a ``{t<id>}`` hash-tagged key: another tenant's codes neither block generation nor
  pass a lookup; the rebuild builds every tenant's filter and drops the pre-#23 global one; a filter that a
  generation would overfill grows first;
- the same code string generated in two tenants: each member claims and redeems their own tenant's code; a code
  held only by another tenant is refused exactly like an unknown one — same answer, and the same SQL (one probe of
  the (tenant_id, code) index, no visit to the other tenant's row);
- the console's code search names the tenant.
"""
from __future__ import annotations

import json
import re
from io import StringIO
from itertools import product

import numpy as np
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core import partitioning
from coupons import bloom_check
from coupons.bloom import (BitArray, BloomParams, RedisBloomStore, as_code_array, bloom_drop, bloom_rebuild,
                           bloom_verify, bloom_writer, get_store, iter_tenant_codes, store_location)
from coupons.models import CouponCode
from coupons.services.generation import batch_generate
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
ACTOR = factories.TEST_ACTOR
TINY_SPACE = sorted("".join(p) for p in product("AB", repeat=4))  # 16 codes: a batch of 16 takes all of them


@pytest.fixture(autouse=True)
def own_small_filters(settings, transactional_db):
    settings.GENERATION_CHUNK_SIZE = 5000
    settings.BLOOM_CAPACITY = 10_000
    settings.BLOOM_ERROR_RATE = 1e-6
    settings.COUPON_FAILED_GUESS_LIMIT = 0
    settings.COUPON_RATE_CODE_LOOKUP_CLIENT = ""
    settings.COUPON_RATE_CODE_LOOKUP_IP = ""
    bloom_drop()
    yield
    bloom_drop()


def generate_tiny_space(tenant) -> list[str]:
    """All 16 codes of the AB×4 space, generated in ``tenant`` through the product's path."""
    inventory = factories.make_inventory(tenant, total_quantity=16)
    batch = factories.make_batch(inventory, quantity=16, alphabet="AB", code_length=4)
    batch_generate(batch_id=batch.pk, actor=ACTOR)
    return sorted(CouponCode.objects.filter(tenant=tenant, batch=batch).values_list("code", flat=True))


def code_row(tenant, code: str, batch) -> CouponCode:
    return CouponCode(tenant_id=tenant.pk, inventory_id=batch.inventory_id, batch_id=batch.pk, code=code)


# --- the database guard -------------------------------------------------------------------------------------------


def test_a_duplicate_code_in_one_tenant_is_refused_and_the_same_code_in_another_tenant_is_not(tenant, other_tenant):
    batch_a = factories.make_batch(factories.make_inventory(tenant), quantity=10)
    batch_b = factories.make_batch(factories.make_inventory(other_tenant), quantity=10)
    CouponCode.objects.create(tenant_id=tenant.pk, inventory_id=batch_a.inventory_id, batch=batch_a, code="SAMECODE1")

    with pytest.raises(IntegrityError, match="code_unique_per_tenant"), transaction.atomic():
        CouponCode.objects.create(tenant_id=tenant.pk, inventory_id=batch_a.inventory_id, batch=batch_a,
                                  code="SAMECODE1")
    CouponCode.objects.create(tenant_id=other_tenant.pk, inventory_id=batch_b.inventory_id, batch=batch_b,
                              code="SAMECODE1")

    assert sorted(CouponCode.objects.filter(code="SAMECODE1").values_list("tenant_id", flat=True)) == sorted(
        [tenant.pk, other_tenant.pk])


def _constraints() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = 'coupons_couponcode'::regclass AND contype = 'u'")
        return dict(cursor.fetchall())


def _migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


def _migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


BEFORE, AFTER = ("coupons", "0009_issue20_grant_approval"), ("coupons", "0010_issue23_code_unique_per_tenant")


def test_the_migration_keeps_every_code_swaps_the_constraints_and_survives_an_interrupted_build():
    """0010 on a table holding codes of two tenants: rows untouched, UNIQUE (code) → UNIQUE (tenant_id, code); the
    same code can then be written in the other tenant. A CONCURRENTLY build that failed before (leaving an INVALID
    index of the new name) is dropped and done again. And back: 0010 reverses while codes are still globally unique."""
    insert = ("INSERT INTO coupons_couponcode (tenant_id, inventory_id, batch_id, code, status) "
              "VALUES (%s, 1, 1, %s, 'AVAILABLE')")
    try:
        _migrate(BEFORE)
        assert _constraints() == {"code_unique": "UNIQUE (code)"}
        with connection.cursor() as cursor:
            for tenant_id, code in [(1, "MIGRATE01"), (1, "MIGRATE02"), (2, "MIGRATE03"), (2, "MIGRATE04")]:
                cursor.execute(insert, [tenant_id, code])
            cursor.execute("SELECT id, tenant_id, code FROM coupons_couponcode ORDER BY id")
            rows = cursor.fetchall()
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute(insert, [2, "MIGRATE01"])  # the old schema: global
            # An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index behind (here: one that had to fail).
            with pytest.raises(IntegrityError):
                cursor.execute("CREATE UNIQUE INDEX CONCURRENTLY code_unique_per_tenant ON coupons_couponcode "
                               "(status)")
            cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'code_unique_per_tenant'::regclass")
            assert cursor.fetchone() == (False,)

        _migrate(AFTER)

        assert _constraints() == {"code_unique_per_tenant": "UNIQUE (tenant_id, code)"}
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, tenant_id, code FROM coupons_couponcode ORDER BY id")
            assert cursor.fetchall() == rows
            cursor.execute(insert, [2, "MIGRATE01"])  # now allowed: another tenant
            with pytest.raises(IntegrityError), transaction.atomic():
                cursor.execute(insert, [1, "MIGRATE01"])
            cursor.execute("DELETE FROM coupons_couponcode WHERE tenant_id = 2 AND code = 'MIGRATE01'")

        _migrate(BEFORE)  # reversible while no code string is in two tenants
        assert _constraints() == {"code_unique": "UNIQUE (code)"}
    finally:
        _migrate_to_latest()  # the migrations after 0010 too (#23's keys and partitions), for the tests after this one
    assert _constraints() == {"code_unique_per_tenant": "UNIQUE (tenant_id, code)"}


# --- one Bloom filter per tenant ----------------------------------------------------------------------------------


def test_each_tenant_has_its_own_filter_under_a_hash_tagged_key(settings, tenant, other_tenant):
    generate_tiny_space(tenant)
    generate_tiny_space(other_tenant)

    for t in (tenant, other_tenant):
        location = store_location(t.pk)
        assert f"{{t{t.pk}}}" in location
        assert get_store(t.pk).params() is not None
        if settings.BLOOM_BACKEND == "redis":
            store = get_store(t.pk)
            assert isinstance(store, RedisBloomStore)
            # Every key of the filter carries the tenant's hash tag: one Redis Cluster slot per tenant.
            assert store.bits_key == f"{location}:bits" and store.meta_key == f"{location}:meta"
            assert store.redis.exists(store.bits_key, store.meta_key) == 2
    assert store_location(tenant.pk) != store_location(other_tenant.pk)


def test_another_tenants_codes_are_not_in_a_tenants_filter_and_do_not_block_its_generation(tenant, other_tenant):
    """Generation in A is no longer affected by B's codes: A's pre-check admits every code B holds; the lookup path
    answers "certainly not A's" for them."""
    inventory_b = factories.make_inventory(other_tenant, total_quantity=5000)
    batch_b = factories.make_batch(inventory_b, quantity=5000)
    batch_generate(batch_id=batch_b.pk, actor=ACTOR)
    codes_b = list(CouponCode.objects.filter(batch=batch_b).values_list("code", flat=True))
    bloom_rebuild()  # every tenant's filter, A's included (empty)

    assert all(bloom_check.might_exist(code, other_tenant.pk) for code in codes_b)
    assert not any(bloom_check.might_exist(code, tenant.pk) for code in codes_b)
    with bloom_writer(tenant.pk) as writer:
        admitted = writer.admit(as_code_array(codes_b))
    assert len(admitted) == len(codes_b)


def test_the_same_codes_are_generated_in_two_tenants():
    """A code space used up in tenant B is still free in tenant A: both get all 16 codes (before #23 the second
    batch was refused, code_space_exhausted)."""
    first, second = factories.make_tenant(), factories.make_tenant()

    assert generate_tiny_space(first) == TINY_SPACE
    assert generate_tiny_space(second) == TINY_SPACE
    assert CouponCode.objects.filter(code__in=TINY_SPACE).count() == 32


def test_rebuild_builds_one_filter_per_tenant_and_drops_the_global_filter_of_before(settings, tenant, other_tenant):
    """What an operator runs on deploy: ``rebuild_bloom`` — every tenant's filter from its own codes, and the
    pre-#23 global filter removed."""
    if settings.BLOOM_BACKEND != "redis":
        pytest.skip("Redis backend")
    _, codes_a = factories.make_pool(tenant, size=30)
    _, codes_b = factories.make_pool(other_tenant, size=20)
    legacy = f"coupons:bloom:{connection.settings_dict['NAME']}"  # the keys of the global filter before #23
    client = get_store(tenant.pk).redis  # the filters' Redis
    old = BloomParams.sized(10_000, 1e-6)
    client.set(f"{legacy}:bits", BitArray(old).bits.tobytes())
    client.hset(f"{legacy}:meta", mapping={**old.as_strings(), "count": "0", "version": "1"})

    out = StringIO()
    call_command("rebuild_bloom", "--no-progress", stdout=out)
    result = json.loads(out.getvalue())

    assert result["legacy_global_filter_dropped"] is True
    assert client.exists(f"{legacy}:bits", f"{legacy}:meta") == 0
    by_tenant = {f["tenant"]: f["codes"] for f in result["filters"]}
    assert by_tenant[tenant.pk] == 30 and by_tenant[other_tenant.pk] == 20
    assert all(bloom_check.might_exist(c.code, tenant.pk) for c in codes_a)
    assert not any(bloom_check.might_exist(c.code, tenant.pk) for c in codes_b)
    assert bloom_verify()["missing"] == 0
    check = StringIO()
    call_command("rebuild_bloom", "--check", "--tenant", other_tenant.slug, stdout=check)
    assert json.loads(check.getvalue())["checked"] == 20


def test_a_generation_that_would_overfill_its_tenants_filter_grows_it_first(tenant):
    bloom_rebuild(tenant_id=tenant.pk, capacity=1000)
    inventory = factories.make_inventory(tenant, total_quantity=4000)
    batch = factories.make_batch(inventory, quantity=4000)

    batch_generate(batch_id=batch.pk, actor=ACTOR)

    params = get_store(tenant.pk).params()
    assert params.capacity >= 8000  # twice what it must hold
    codes = list(CouponCode.objects.filter(batch=batch).values_list("code", flat=True))
    assert len(set(codes)) == 4000
    assert all(bloom_check.might_exist(code, tenant.pk) for code in codes)


# --- the API: same code string in two tenants; a foreign code is an unknown code ------------------------------


def _answers(api, code: str, member: str) -> list[tuple[int, dict]]:
    order = factories.order(order_id=f"o-{member}")
    responses = [
        api.post("/api/v1/claims", {"member_id": member, "code": code}, format="json"),
        api.get(f"/api/v1/coupons/{code}", {"member_id": member}),
        api.post(f"/api/v1/coupons/{code}/lock", {"member_id": member, "order_id": order["order_id"],
                                                  "order": order}, format="json"),
        api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": member, "order_id": order["order_id"],
                                                    "order": order}, format="json"),
        api.post("/api/v1/checkout/validate", {"member_id": member, "codes": [code], "order": order},
                 format="json"),
    ]
    # The code itself is echoed back by checkout/validate ("rejected": [{"code": …}]): blank it out to compare.
    return [(r.status_code, json.loads(json.dumps(r.json()).replace(code, "<code>"))) for r in responses]


def test_two_tenants_each_claim_and_redeem_their_own_copy_of_one_code_string_and_a_foreign_code_is_unknown():
    first, second = factories.make_tenant(), factories.make_tenant()
    for t in (first, second):
        assert generate_tiny_space(t) == TINY_SPACE
    _, only_second = factories.make_pool(second, size=2)  # codes that exist in the second tenant only
    api_first = factories.api_for(factories.make_client(first)[1])
    api_second = factories.api_for(factories.make_client(second)[1])
    code = "ABBA"

    for api, member in ((api_first, "m-first"), (api_second, "m-second")):
        claimed = api.post("/api/v1/claims", {"member_id": member, "code": code.lower()}, format="json")
        assert claimed.status_code == 201, claimed.content
        order = factories.order(order_id=f"o-{member}")
        redeemed = api.post(f"/api/v1/coupons/{code}/redeem", {"member_id": member, "order_id": order["order_id"],
                                                               "order": order}, format="json")
        assert redeemed.status_code == 200, redeemed.content

    rows = {c.tenant_id: c for c in CouponCode.objects.filter(code=code)}
    assert rows[first.pk].status == rows[second.pk].status == CouponCode.Status.USED
    assert (rows[first.pk].member_id, rows[second.pk].member_id) == ("m-first", "m-second")
    # The first tenant's member cannot reach the second tenant's copy, nor a code only the second tenant has.
    foreign, unknown = only_second[0].code, "ZZZZ9999ZZ"
    assert not CouponCode.objects.filter(code=unknown).exists()
    foreign_answers = _answers(api_first, foreign, "m-x")
    assert foreign_answers == _answers(api_first, unknown, "m-x")
    assert [status for status, _ in foreign_answers] == [404, 404, 404, 404, 200]
    assert {body["code"] for _, body in foreign_answers[:4]} == {"not_found"}
    assert [(r["code"], r["reason"]) for r in foreign_answers[4][1]["rejected"]] == [("<code>", "not_found")]
    assert CouponCode.objects.get(pk=only_second[0].pk).status == CouponCode.Status.AVAILABLE


def _code_sql(api, code: str, member: str) -> list[str]:
    """The statements on coupons_couponcode while ``_answers`` runs, with the code literal blanked out."""
    with CaptureQueriesContext(connection) as ctx:
        _answers(api, code, member)
    return [q["sql"].replace(code, "<code>") for q in ctx.captured_queries if "coupons_couponcode" in q["sql"]]


def test_a_foreign_code_costs_the_same_sql_as_an_unknown_one_and_never_reads_the_other_tenants_row(
        tenant, other_tenant):
    """Without a Bloom filter every lookup reaches the database (fail open): the statements for another tenant's
    code are exactly those for an unknown code, each names tenant_id, and the index probe finds nothing — no row of
    the other tenant is read and thrown away (before #23 the global code index led to B's row first)."""
    _, foreign = factories.make_pool(other_tenant, size=1)
    # Enough codes of its own that the planner, with statistics, prefers the (tenant_id, code) probe to a walk over
    # the tenant's rows in its partition by the primary key (tenant_id, id).
    factories.make_pool(tenant, size=300)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE coupons_couponcode")
    api = factories.api_for(factories.make_client(tenant)[1])
    bloom_drop()  # no filter: every path asks the database

    foreign_sql = _code_sql(api, foreign[0].code, "m-1")
    unknown_sql = _code_sql(api, "QQQQ7777QQ", "m-1")

    assert foreign_sql == unknown_sql
    # the ORM's statements, and the redeem/lock path's own (coupons.services.lifecycle, alias c)
    assert foreign_sql and all(re.search(r'("coupons_couponcode"|\bc)\."?tenant_id"? = ', sql) for sql in foreign_sql)

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM coupons_couponcode "
                       "WHERE tenant_id = %s AND code = %s", [tenant.pk, foreign[0].code])
        plan = cursor.fetchone()[0][0]["Plan"]
    assert partitioning.parent_name(plan["Index Name"]) == "code_unique_per_tenant", json.dumps(plan)  # the tenant's partition's
    assert "tenant_id" in plan["Index Cond"] and "code" in plan["Index Cond"]
    assert plan.get("Rows Removed by Filter", 0) == 0 and plan["Actual Rows"] == 0


# --- the console --------------------------------------------------------------------------------------------------


def test_the_console_code_search_finds_the_code_of_the_users_tenant_and_a_superuser_sees_each_tenants(
        client, tenant, other_tenant):
    batch_a = factories.make_batch(factories.make_inventory(tenant), quantity=2)
    batch_b = factories.make_batch(factories.make_inventory(other_tenant), quantity=2)
    CouponCode.objects.bulk_create([code_row(tenant, "SHARED123", batch_a), code_row(other_tenant, "SHARED123",
                                                                                     batch_b)])
    url = reverse("admin:coupons_couponcode_changelist")

    client.force_login(factories.make_operator(tenant))
    page = client.get(url, {"q": "shared-123"})
    assert page.status_code == 200
    assert [c.tenant_id for c in page.context["cl"].result_list] == [tenant.pk]

    client.force_login(factories.make_user(tenant=None, role=None, superuser=True))
    page = client.get(url, {"q": "shared 123"})
    assert sorted(c.tenant_id for c in page.context["cl"].result_list) == sorted([tenant.pk, other_tenant.pk])


def test_rebuild_reads_a_tenants_codes_through_its_own_index_range(tenant, other_tenant):
    """The per-tenant rebuild's scan is keyed on (tenant_id, code): it returns exactly the tenant's codes."""
    batch_a = factories.make_batch(factories.make_inventory(tenant), quantity=3)
    batch_b = factories.make_batch(factories.make_inventory(other_tenant), quantity=3)
    CouponCode.objects.bulk_create([code_row(tenant, c, batch_a) for c in ("KA1", "KA2", "KA3")]
                                   + [code_row(other_tenant, c, batch_b) for c in ("KA1", "KB2", "KB3")])

    blocks = list(iter_tenant_codes(tenant.pk, block=2))
    assert [len(b) for b in blocks] == [2, 1]
    assert np.concatenate(blocks).astype("S3").tolist() == [b"KA1", b"KA2", b"KA3"]
