"""Indexes for the console's usage search by order id or member id (R-OPS: searches on big tables are indexed).

Built CONCURRENTLY, outside a transaction: the usage table is written by every redemption, and a plain CREATE INDEX
would block those writes for as long as the build takes."""
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("coupons", "0005_i18n_verbose_names"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="couponusage",
            index=models.Index(fields=["tenant", "order_id"], name="usage_tenant_order"),
        ),
        AddIndexConcurrently(
            model_name="couponusage",
            index=models.Index(fields=["tenant", "member_id"], name="usage_tenant_member"),
        ),
    ]
