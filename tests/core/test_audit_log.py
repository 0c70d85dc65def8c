"""R-OPS-3 / issue #2: the audit log is append-only at the database."""
from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from core.audit import Actor, audit_record
from core.models import AuditLog


@pytest.fixture
def entry(tenant):
    with transaction.atomic():
        return audit_record(tenant=tenant, actor=Actor.system("test"), action="test.create", obj=tenant,
                            after={"x": 1})


def test_audit_row_records_actor_action_object_and_payload(entry, tenant):
    row = AuditLog.objects.get(pk=entry.pk)
    assert (row.actor_type, row.actor_label, row.action) == ("system", "test", "test.create")
    assert (row.object_type, row.object_id, row.after) == ("core.Tenant", str(tenant.pk), {"x": 1})


def test_database_refuses_update_of_an_audit_row(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditLog.objects.filter(pk=entry.pk).update(action="tampered")
    assert AuditLog.objects.get(pk=entry.pk).action == "test.create"


def test_database_refuses_raw_sql_update_and_delete(entry):
    for sql in ("UPDATE core_auditlog SET after = '{}' WHERE id = %s", "DELETE FROM core_auditlog WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [entry.pk])
    assert AuditLog.objects.filter(pk=entry.pk, after={"x": 1}).exists()


def test_database_refuses_orm_delete_of_an_audit_row(entry):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditLog.objects.filter(pk=entry.pk).delete()
    assert AuditLog.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_audit_record_outside_a_transaction_is_refused():
    from tests.factories import make_tenant

    tenant = make_tenant()
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(tenant=tenant, actor=Actor.system(), action="x", obj=tenant)
