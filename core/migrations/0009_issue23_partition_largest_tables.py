"""The codes, issues, usages and audit log partitioned by hash of tenant_id, 16 partitions (#23; core/partitioning.py
says how and why). Every row, key, index, trigger and foreign key is kept; the reverse puts plain tables back.

It rewrites the four tables under ACCESS EXCLUSIVE: run it in a maintenance window (docs/SCALING.md).
"""
from django.db import migrations

from core import partitioning

TABLES = ("coupons_couponcode", "coupons_couponissue", "coupons_couponusage", "core_auditlog")


def forwards(apps, schema_editor):
    partitioning.partition(schema_editor.connection, TABLES, partitions=16)


def backwards(apps, schema_editor):
    partitioning.unpartition(schema_editor.connection, TABLES)


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0008_issue23_distribution_keys'),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
