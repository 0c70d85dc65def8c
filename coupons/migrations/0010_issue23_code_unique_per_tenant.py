"""Code uniqueness per tenant (issue #23): UNIQUE (tenant_id, code) replaces UNIQUE (code).

Data: nothing to rewrite. Per-tenant uniqueness is weaker than global uniqueness, so every existing row already
satisfies the new constraint; only the index changes.

Locks, on a table of hundreds of millions of rows that keeps serving claims and redemptions while this runs:

1. ``CREATE UNIQUE INDEX CONCURRENTLY code_unique_per_tenant ON coupons_couponcode (tenant_id, code)``: SHARE UPDATE
   EXCLUSIVE only — reads, claims, redemptions and generation's COPY go on (writes maintain both indexes meanwhile);
   it scans the table twice and waits for transactions older than itself. Not possible inside a transaction, hence
   ``atomic = False``. A build interrupted earlier leaves an INVALID index behind: it is dropped and built again.
2. In one short transaction with ``lock_timeout``: ``ALTER TABLE … ADD CONSTRAINT code_unique_per_tenant UNIQUE USING
   INDEX code_unique_per_tenant`` (adopts the built index, no scan) and ``ALTER TABLE … DROP CONSTRAINT code_unique``
   (drops the old global index). Both need ACCESS EXCLUSIVE, held for a catalog update only; if a long transaction
   keeps the lock from being granted within the timeout the migration stops (nothing half-done: re-run it).

Every step is idempotent, so a re-run after any failure finishes the job. The state side is the plain
RemoveConstraint/AddConstraint that ``makemigrations`` writes, so later autodetected migrations see the constraint.

Reverse: builds the global index back the same way — possible only while no code string exists in two tenants.
"""
from django.db import migrations, models, transaction

TABLE = "coupons_couponcode"
NEW, OLD = "code_unique_per_tenant", "code_unique"
LOCK_TIMEOUT = "10s"


def _index_state(cursor, name):
    """None (no such index), True (valid) or False (left INVALID by an interrupted CONCURRENTLY build)."""
    cursor.execute("SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                   "WHERE c.relname = %s AND i.indrelid = %s::regclass", [name, TABLE])
    row = cursor.fetchone()
    return None if row is None else bool(row[0])


def _has_constraint(cursor, name):
    cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = %s::regclass", [name, TABLE])
    return cursor.fetchone() is not None


def _swap(schema_editor, build, columns, drop):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if not _has_constraint(cursor, build):
            state = _index_state(cursor, build)
            if state is False:
                cursor.execute(f'DROP INDEX CONCURRENTLY "{build}"')
            if state is not True:
                cursor.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{build}" ON {TABLE} ({columns})')
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if not _has_constraint(cursor, build):
            cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{build}" UNIQUE USING INDEX "{build}"')
        cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS "{drop}"')


def forwards(apps, schema_editor):
    _swap(schema_editor, NEW, "tenant_id, code", OLD)


def backwards(apps, schema_editor):
    _swap(schema_editor, OLD, "code", NEW)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('core', '0006_issue20_approval_thresholds'),
        ('coupons', '0009_issue20_grant_approval'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
            state_operations=[
                migrations.RemoveConstraint(model_name='couponcode', name='code_unique'),
                migrations.AddConstraint(
                    model_name='couponcode',
                    constraint=models.UniqueConstraint(fields=('tenant', 'code'), name='code_unique_per_tenant'),
                ),
            ],
        ),
    ]
