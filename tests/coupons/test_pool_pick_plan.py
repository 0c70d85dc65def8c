"""The next AVAILABLE code of a pool is always found through the pool index (``coupons.pool``; R-ISS-3, R-NFR-2).

The state every event opens in: a generated pool, analyzed while all of it was AVAILABLE, then claimed from. Asked
the plain way (``inventory_id = X … ORDER BY id``), PostgreSQL may walk the ``id`` index or the primary key instead
and pass every code claimed since the last ANALYZE on each claim — and a generic plan keeps doing it. These tests
read the plans PostgreSQL makes for the product's pick, generic and custom, and fail on any plan that is not a scan
of ``code_pool_available``.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from coupons.pool import POOL_CONDITION, POOL_ORDER
from coupons.bloom import bloom_drop
from coupons.services import generation, issue
from partners import distribution, services as partner_services
from tests.factories import TEST_ACTOR, make_batch, make_inventory, make_pool, make_tenant

pytestmark = pytest.mark.django_db

POOL_INDEXES = {"code_pool_available"} | {f"code_pool_available_p{n}" for n in range(64)}
PICK = f"SELECT id FROM coupons_couponcode WHERE {POOL_CONDITION} {POOL_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED"


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan] + [node for child in plan.get("Plans", []) for node in _nodes(child)]


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    if "Scan" in plan["Node Type"]:
        found.append((plan["Node Type"], plan.get("Index Name", "")))
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _prepared_plan(sql: str, params: dict[str, Any], mode: str) -> dict[str, Any]:
    """The plan of ``sql`` prepared as the product's driver prepares it, under ``plan_cache_mode = mode`` (its
    parameters all bigint, numbered in the order of ``params``)."""
    names = list(params)
    text = sql
    for number, name in enumerate(names, start=1):
        text = text.replace(f"%({name})s", f"${number}")
    with connection.cursor() as cursor:
        cursor.execute(f"SET plan_cache_mode = {mode}")
        try:
            cursor.execute(f"PREPARE plan_probe ({', '.join('bigint' for _ in names)}) AS {text}")
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE plan_probe ({', '.join(str(int(params[n])) for n in names)})")
            (plan,) = cursor.fetchone()
            cursor.execute("DEALLOCATE plan_probe")
        finally:
            cursor.execute("RESET plan_cache_mode")
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return plan[0]["Plan"]


def _plan(sql: str, params: dict[str, Any], mode: str) -> list[tuple[str, str]]:
    """The scans of ``sql``'s plan under ``plan_cache_mode = mode``."""
    return _scans(_prepared_plan(sql, params, mode))


@pytest.fixture
def claimed_since_analyze():
    """A 20,000-code pool, analyzed while all AVAILABLE, then a quarter of it (the lowest ids) claimed."""
    tenant = make_tenant()
    inventory, codes = make_pool(tenant, size=20_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE coupons_couponcode")
        cursor.execute("UPDATE coupons_couponcode SET status = 'ISSUED', member_id = 'm-' || id, issued_at = now() "
                       "WHERE tenant_id = %s AND id <= %s", [tenant.pk, codes[4_999].pk])
    return {"tenant": tenant.pk, "inventory": inventory.pk}


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_the_pick_scans_the_pool_index_only(claimed_since_analyze, mode):
    scans = _plan(PICK, claimed_since_analyze, mode)

    assert scans and {index for _node, index in scans} <= POOL_INDEXES, scans


def test_the_claims_own_statement_takes_its_code_through_the_pool_index(claimed_since_analyze):
    """The product's whole claim statement (the pick inside the CTE's UPDATE), planned with its parameters bound."""
    names = set(re.findall(r"%\((\w+)\)s", issue._TAKE_NEXT))
    params: dict[str, Any] = dict.fromkeys(names)
    params.update(claimed_since_analyze, member="m-new", slot=1, via="inventory", channel="", device="", shard=0,
                  now=timezone.now(), actor_type="system", actor_id="", actor_label="test", inventory_public="x")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + issue._TAKE_NEXT, params)
        (plan,) = cursor.fetchone()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    # The pick is the InitPlan of the UPDATE that reads the code table (the others count the CTEs' rows, or read the
    # webhook endpoints).
    code_scans = {node.get("Index Name", node["Node Type"])
                  for init in _nodes(plan[0]["Plan"]) if init.get("Subplan Name", "").startswith("InitPlan")
                  for node in _nodes(init) if node.get("Relation Name", "").startswith("coupons_couponcode")}

    assert code_scans and code_scans <= POOL_INDEXES, code_scans


def test_every_pool_pick_of_the_product_uses_the_pool_condition_and_order():
    for statement in (issue._TAKE_NEXT, partner_services._MAP_FRESH, distribution._POOL):
        flat = " ".join(statement.split())
        assert POOL_CONDITION in flat and POOL_ORDER in flat and "ORDER BY id LIMIT" not in flat


@pytest.mark.django_db(transaction=True)
def test_a_freshly_generated_pool_is_picked_through_its_index_not_sorted(settings):
    """An event opens on a pool generated minutes ago, in a table whose statistics were taken before it existed
    (here: a tenant whose only codes, all used up, were analyzed). Planned from those statistics, the pool looks
    empty, and the generic plan every claiming connection keeps sorts the whole pool on each claim to find its
    first code. The generation job analyzes the codes it wrote (``coupons.services.generation``), so the plan
    reads the pool index and stops at the first free code."""
    settings.GENERATION_CHUNK_SIZE = 5000
    settings.BLOOM_CAPACITY = 100_000
    bloom_drop()
    try:
        tenant = make_tenant()
        make_pool(tenant, size=3000)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE coupons_couponcode SET status = 'EXPIRED' WHERE tenant_id = %s", [tenant.pk])
            cursor.execute("ANALYZE coupons_couponcode")
        inventory = make_inventory(tenant, total_quantity=20_000)
        batch = make_batch(inventory, quantity=20_000, code_length=10)
        generation.batch_generate(batch_id=batch.pk, actor=TEST_ACTOR)

        nodes = [node["Node Type"] for node in _nodes(_prepared_plan(
            PICK, {"tenant": tenant.pk, "inventory": inventory.pk}, "force_generic_plan"))]
    finally:
        bloom_drop()

    assert "Sort" not in nodes and "Bitmap Heap Scan" not in nodes, nodes
