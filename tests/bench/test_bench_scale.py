"""``manage.py bench scale`` at toy size (issue #23): both layouts are built, filled through the product's generation
and measured, the figures add up, and the scratch databases are gone afterwards. The real run is recorded in
bench/RESULTS.md."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from bench.db import admin_connection
from bench.scale import tenant_shares

PREFIX = "coupons_h2_test_benchscale"


def test_tenant_shares_give_the_big_tenant_its_share_and_split_the_rest_evenly():
    assert tenant_shares(100, 4, 0.4) == [40, 20, 20, 20]
    assert tenant_shares(1000, 4, 0.4) == [400, 200, 200, 200]
    assert tenant_shares(11, 4, 0.4) == [4, 3, 2, 2]
    assert sum(tenant_shares(100_000_000, 100, 0.4)) == 100_000_000


@pytest.mark.slow
def test_bench_scale_measures_both_layouts_and_drops_its_databases(django_db_blocker):
    out = io.StringIO()
    with django_db_blocker.unblock():
        call_command("bench", "scale", "--tenants", "3", "--codes", "3000", "--batch-max", "1000",
                     "--claim-seconds", "0.3", "--claim-clients", "2", "--new-batch", "500", "--expire-codes", "200",
                     "--database", PREFIX, stdout=out)
        with admin_connection() as admin:
            left = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{PREFIX}%"]).fetchall()
    result = json.loads(out.getvalue())

    assert left == []
    assert result["codes"] == 3000 and result["big_tenant_codes"] == 1200 and result["small_tenant_codes"] == 900
    assert list(result["layouts"]) == ["partitioned", "flat"]
    for layout in result["layouts"].values():
        assert layout["generation"]["codes"] == 3000
        codes = layout["sizes"]["coupons_couponcode"]
        assert codes["total_bytes"] == codes["heap_bytes"] + codes["indexes_bytes"] > 0
        assert sum(codes["indexes"].values()) == codes["indexes_bytes"]
        for claims in layout["claims"].values():
            assert claims["claims"] > 0
            assert claims["distinct_codes"] == claims["claims"]  # no code handed out twice
        assert {b["status"] for b in layout["new_batch"].values()} == {"COMPLETED"}
        assert layout["expiry"]["expired"] == layout["expiry"]["due"] == 200
        assert layout["vacuum_seconds"] >= 0
