"""Issue #17: the app can serve as a database role that owns no table; that role cannot rewrite or empty the audit
log, nor switch triggers off with session_replication_role; TRUNCATE of the audit log is refused by a trigger even
for a role that was granted TRUNCATE by mistake. Roles are created inside the test's transaction (PostgreSQL DDL is
transactional), so they vanish with its rollback."""
from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from core.audit import Actor, audit_record
from core.models import AuditLog
from tests import factories


@pytest.fixture
def app_role(db):
    role = f"coupons_app_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" NOLOGIN')
    call_command("grant_app_role", role, "--apply", stdout=open("/dev/null", "w"))
    return role


def as_role(role: str, sql: str) -> None:
    """Run ``sql`` as ``role`` in a savepoint (rolled back whatever happens)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fire the deferred FK checks of the fixtures' rows first
        cursor.execute(f'SET LOCAL ROLE "{role}"')
        cursor.execute(sql)
        transaction.set_rollback(True)


@pytest.fixture
def audit_row(tenant):
    return audit_record(tenant=tenant, actor=Actor.system("test"), action="test.row", obj=tenant)


def test_the_app_role_cannot_set_session_replication_role(app_role):
    with pytest.raises(DatabaseError, match="session_replication_role"):
        as_role(app_role, "SET session_replication_role = replica")


@pytest.mark.parametrize("sql", ["TRUNCATE core_auditlog", "DELETE FROM core_auditlog",
                                 "UPDATE core_auditlog SET action = 'x'",
                                 "ALTER TABLE core_auditlog DISABLE TRIGGER ALL", "DROP TABLE core_auditlog CASCADE"])
def test_the_app_role_cannot_rewrite_or_empty_the_audit_log(app_role, audit_row, sql):
    with pytest.raises(DatabaseError):
        as_role(app_role, sql)
    assert AuditLog.objects.filter(pk=audit_row.pk).exists()


def test_truncate_of_the_audit_log_is_refused_by_a_trigger_even_when_granted(app_role, audit_row):
    """The trigger (migration 0005_issue17) — not only the missing privilege — refuses TRUNCATE."""
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT TRUNCATE ON core_auditlog TO "{app_role}"')
    with pytest.raises(DatabaseError, match="append-only"):
        as_role(app_role, "TRUNCATE core_auditlog")
    assert AuditLog.objects.filter(pk=audit_row.pk).exists()


def test_the_api_serves_as_the_app_role(app_role, tenant):
    """A claim, with its audit row, counters and idempotency record, works without owning a table."""
    inventory, _ = factories.make_pool(tenant, size=2)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {factories.make_client(tenant)[1]}")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        response = api.post("/api/v1/claims", {"member_id": "m-1", "inventory": inventory.public_id},
                            format="json", HTTP_IDEMPOTENCY_KEY="k-1")
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == app_role
        transaction.set_rollback(True)
    assert response.status_code == 201, response.content


def test_the_command_refuses_a_superuser_role(db):
    from django.core.management.base import CommandError

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        me = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="superuser"):
        call_command("grant_app_role", me)


def test_truncate_of_one_partition_of_the_audit_log_is_refused_too(app_role, audit_row):
    """The audit log is hash-partitioned by tenant (#23): each partition carries the TRUNCATE refusal of its own,
    since PostgreSQL does not clone statement triggers to partitions."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM core_auditlog WHERE id = %s", [audit_row.pk])
        (partition,) = cursor.fetchone()
        cursor.execute(f'GRANT TRUNCATE ON {partition} TO "{app_role}"')
    assert partition.startswith("core_auditlog_p")
    with pytest.raises(DatabaseError, match="append-only"):
        as_role(app_role, f"TRUNCATE {partition}")
    assert AuditLog.objects.filter(pk=audit_row.pk).exists()


def _reltuples(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return float(cursor.fetchone()[0])


def test_the_app_role_analyzes_a_new_batchs_codes_through_the_owners_function(app_role, tenant):
    """The generation job runs as the app role: a plain ANALYZE of the codes' partition is skipped for a role that
    does not own it, so the job calls ``coupons_analyze_codes`` (migration coupons 0012), which analyzes as the
    owner — the claims' plans must know a new pool (tests/coupons/test_pool_pick_plan.py)."""
    inventory, codes = factories.make_pool(tenant, size=12)
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM coupons_couponcode WHERE id = %s", [codes[0].pk])
        holder = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {holder}")
        rows = cursor.fetchone()[0]
    before = _reltuples(holder)
    assert before != rows  # the statistics do not know the new codes yet

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role}"')
        cursor.execute(f"ANALYZE {holder}")  # skipped, with a warning: not the owner
        skipped = _reltuples(holder)
        cursor.execute("SELECT coupons_analyze_codes(%s, %s)", [tenant.pk, codes[0].batch_id])
        analyzed = cursor.fetchone()[0]
        cursor.execute("RESET ROLE")

    assert skipped == before
    assert analyzed == holder and _reltuples(holder) == rows


def test_only_the_app_role_may_call_the_analyze_function(db, tenant):
    role = f"coupons_other_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" NOLOGIN')
    with pytest.raises(DatabaseError, match="permission denied for function coupons_analyze_codes"):
        as_role(role, f"SELECT coupons_analyze_codes({tenant.pk}, 0)")
