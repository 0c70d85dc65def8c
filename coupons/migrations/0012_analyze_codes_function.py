"""``coupons_analyze_codes(tenant, batch)``: ANALYZE of the table (on the partitioned layout, the partition) a batch's
codes went to, callable by the app role (#23, R-NFR-2).

The generation job analyzes the codes it wrote, so that the claims' cached plans know a new pool
(``coupons.services.generation.analyze_codes_of``). ANALYZE needs the table's owner, and the app role owns no table
(issue #17, ``core.dbroles``): as that role the statement would be skipped with a warning. This function runs as its
owner (the migrating role) — SECURITY DEFINER with a fixed search_path, EXECUTE revoked from PUBLIC and granted to
the app role by ``grant_app_role`` — and does nothing but analyze the one table that holds the batch's codes.
"""
from django.db import migrations

CREATE = """
CREATE FUNCTION coupons_analyze_codes(p_tenant bigint, p_batch bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    holder regclass;
BEGIN
    SELECT c.tableoid::regclass INTO holder FROM public.coupons_couponcode c
     WHERE c.tenant_id = p_tenant AND c.batch_id = p_batch LIMIT 1;
    IF holder IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('ANALYZE %s', holder);
    RETURN holder::text;
END
$$;
REVOKE ALL ON FUNCTION coupons_analyze_codes(bigint, bigint) FROM PUBLIC;
"""

DROP = "DROP FUNCTION IF EXISTS coupons_analyze_codes(bigint, bigint);"


class Migration(migrations.Migration):

    dependencies = [
        ('coupons', '0011_issue23_tenant_keys'),
        ('core', '0009_issue23_partition_largest_tables'),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
