"""A claim's and a redemption's statements are planned for the tenant's partitions only (issue #23, R-NFR-2, R-TEN-1).

A connection prepares the claim's statements and, after five runs, keeps one generic plan for each. With the tenant
as a parameter, that plan names every partition of the code and issue tables: each claim then locks all of them,
sets up the UPDATE's result relation on each and prunes them again at run time — the partitioned layout's extra
cost per claim (bench/RESULTS.md, "Plan-time pruning"). The product writes the tenant's id into these statements
(``core.partitioning.for_tenant``), so PostgreSQL prunes when it plans. These tests capture the statements a claim
and a redemption over the API really send and read the generic plans PostgreSQL makes of them.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.db import connection, connections

from core import partitioning
from coupons.services import issue
from tests.factories import api_for, make_client, make_pool, make_tenant, order

pytestmark = pytest.mark.django_db

_PARTITION = re.compile(r"^(coupons_couponcode|coupons_couponissue)_p\d+$")


def _relations(plan: Any) -> set[str]:
    if isinstance(plan, dict):
        found = {plan["Relation Name"]} if "Relation Name" in plan else set()
        return found.union(*(_relations(value) for value in plan.values()))
    if isinstance(plan, list):
        return set().union(*(_relations(item) for item in plan))
    return set()


def _pruned_at_run_time(plan: Any) -> int:
    """Partitions a plan leaves to run-time pruning (EXPLAIN shows what ExecutorStart removed as "Subplans Removed";
    a plan pruned when it was made has nothing to remove)."""
    if isinstance(plan, dict):
        return int(plan.get("Subplans Removed", 0)) + sum(_pruned_at_run_time(value) for value in plan.values())
    if isinstance(plan, list):
        return sum(_pruned_at_run_time(item) for item in plan)
    return 0


def _generic_plan(sql: str, params: dict[str, Any]) -> Any:
    """The plan a connection caches for ``sql`` once it prepares it: PREPARE with the parameters' types left to
    PostgreSQL, then EXPLAIN EXECUTE under ``plan_cache_mode = force_generic_plan``."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    text = sql
    for number, name in enumerate(names, start=1):
        text = text.replace(f"%({name})s", f"${number}")
    values = [connection.ops.compose_sql("%s", [params[name]]) for name in names]
    with connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        try:
            cursor.execute(f"PREPARE claim_probe AS {text}")
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE claim_probe ({', '.join(values)})" if values
                           else "EXPLAIN (FORMAT JSON) EXECUTE claim_probe")
            (plan,) = cursor.fetchone()
            cursor.execute("DEALLOCATE claim_probe")
        finally:
            cursor.execute("RESET plan_cache_mode")
    return plan if isinstance(plan, list) else json.loads(plan)


def _sent(call) -> list[tuple[str, dict[str, Any]]]:
    """The statements on the partitioned tables that ``call`` sends, with their parameters."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def capture(execute, sql, params, many, context):
        if isinstance(params, dict) and re.search(r"\b(coupons_couponcode|coupons_couponissue)\b", sql):
            sent.append((sql, dict(params)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        response = call()
    assert response.status_code in (200, 201), response.content
    return sent


def _unpruned(sent: list[tuple[str, dict[str, Any]]], kinds: dict[str, str]) -> dict[str, tuple[list[str], int]]:
    """For each kind of statement (named by how its text starts; exactly one of each was sent), the partitions its
    generic plan names beyond one per partitioned table, and how many it leaves to run-time pruning: both empty when
    PostgreSQL pruned as it planned (the INSERTs route their row when they run, and name no partition)."""
    found = {kind: [(sql, params) for sql, params in sent if sql.lstrip().startswith(start)]
             for kind, start in kinds.items()}
    assert all(len(statements) == 1 for statements in found.values()), found
    unpruned = {}
    for kind, [(sql, params)] in found.items():
        plan = _generic_plan(sql, params)
        partitions = sorted(name for name in _relations(plan) if _PARTITION.match(name))
        tables = {partitioning.parent_name(name) for name in partitions}
        assert tables, (kind, "reads or updates no partitioned table")
        unpruned[kind] = (partitions if len(partitions) > len(tables) else [], _pruned_at_run_time(plan))
    return unpruned


@pytest.fixture
def tenant_among_others():
    assert partitioning.is_partitioned(connection, "coupons_couponcode"), "the suite runs on the migrated layout"
    tenants = [make_tenant() for _ in range(3)]  # other tenants' partitions exist and hold codes
    for other in tenants[1:]:
        make_pool(other, size=20)
    inventory, _codes = make_pool(tenants[0], size=20)
    return inventory, make_client(tenants[0])[1]


def test_a_claims_generic_plans_name_one_partition_of_each_table(tenant_among_others):
    inventory, token = tenant_among_others
    sent = _sent(lambda: api_for(token).post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                                             format="json"))
    kinds = {"count": "SELECT (SELECT count(*) FROM coupons_couponissue", "take": "WITH taken AS ("}

    assert _unpruned(sent, kinds) == {"count": ([], 0), "take": ([], 0)}


def test_a_redemptions_generic_plans_name_one_partition_of_each_table(tenant_among_others):
    inventory, token = tenant_among_others
    code = issue.issue_from_pool(inventory=inventory, member_id="buyer-1", via="grant",
                                 ctx=issue.RequestContext()).code
    sent = _sent(lambda: api_for(token).post(f"/api/v1/coupons/{code}/redeem", {
        "member_id": "buyer-1", "order_id": "o-1", "order": order(order_id="o-1")}, format="json"))
    kinds = {"row": "SELECT ", "writes": "WITH used AS ("}

    assert _unpruned(sent, kinds) == {"row": ([], 0), "writes": ([], 0)}


def test_the_tenant_is_written_in_as_the_servers_integer_only():
    sql = "SELECT 1 FROM coupons_couponcode WHERE tenant_id = %(tenant)s AND code = %(code)s"

    assert partitioning.for_tenant(sql, 42) == ("SELECT 1 FROM coupons_couponcode WHERE tenant_id = 42 "
                                                "AND code = %(code)s")
    with pytest.raises(ValueError):
        partitioning.for_tenant(sql, "1 OR true")  # type: ignore[arg-type]


def test_a_connection_keeps_the_configured_number_of_prepared_statements(settings):
    """One set of claim statements per tenant served: psycopg's default of 100 would evict and re-plan them once a
    connection has served some thirty tenants."""
    settings.DB_PREPARED_MAX = 321
    fresh = connections.create_connection("default")
    try:
        fresh.ensure_connection()
        kept = fresh.connection.prepared_max
    finally:
        fresh.close()

    assert kept == 321
