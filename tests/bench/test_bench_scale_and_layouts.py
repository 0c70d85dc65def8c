"""``manage.py bench scale`` at toy size (issue #23): both layouts are built, filled through the product's generation
and measured, the figures add up, and the scratch databases are gone afterwards; and ``bench layouts``' pairing of
slices. The real runs are recorded in bench/RESULTS.md."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bench.db import admin_connection, layout_tables
from bench.layouts import cpu_per_request, median_interval, pair_ratios, slice_order
from bench.scale import tenant_shares
from core import partitioning

PREFIX = "coupons_h2_test_benchscale"


def test_tenant_shares_give_the_big_tenant_its_share_and_split_the_rest_evenly():
    assert tenant_shares(100, 4, 0.4) == [40, 20, 20, 20]
    assert tenant_shares(1000, 4, 0.4) == [400, 200, 200, 200]
    assert tenant_shares(11, 4, 0.4) == [4, 3, 2, 2]
    assert sum(tenant_shares(100_000_000, 100, 0.4)) == 100_000_000


def test_tables_option_names_partitioned_tables_only():
    assert layout_tables({"tables": "coupons_couponcode, core_auditlog"}) == ("coupons_couponcode", "core_auditlog")
    assert layout_tables({}) == partitioning.PARTITIONED_TABLES
    with pytest.raises(CommandError, match="not a partitioned table: coupons_couponcodes"):
        layout_tables({"tables": "coupons_couponcodes"})


def test_bench_layouts_alternates_abba_and_compares_each_pair_on_its_own():
    assert slice_order(3) == [(0, "flat"), (0, "partitioned"), (1, "partitioned"), (1, "flat"),
                              (2, "flat"), (2, "partitioned")]
    # The machine got faster between pairs: each pair's ratio stays what the layouts made it.
    assert pair_ratios([(0, "flat", 400), (0, "partitioned", 380), (1, "partitioned", 570), (1, "flat", 600)]) == [
        0.95, 0.95]
    assert pair_ratios([(0, "flat", 400)]) == []  # an unfinished pair is no comparison


def test_bench_layouts_cpu_per_request_splits_workers_from_backends_and_skips_processes_not_read_twice():
    before = {10: 1.0, 11: 2.0, 20: 5.0, 21: 7.0}  # 10, 11: gunicorn workers; 20, 21, 22: PostgreSQL backends
    after = {10: 1.5, 11: 2.5, 20: 5.2, 22: 0.4}  # 21 ended during the slice, 22 began in it

    app, database = cpu_per_request(before, after, workers={10, 11}, answered=500)

    assert app == pytest.approx(2.0)  # (0.5 + 0.5) s over 500 requests, in ms
    assert database == pytest.approx(0.4)  # backend 20 only
    assert cpu_per_request({}, {}, workers=set(), answered=0) == (0.0, 0.0)


def test_bench_layouts_interval_holds_the_median_and_narrows_with_more_pairs():
    few = [0.9, 1.1, 0.95, 1.05, 1.0]
    low, high = median_interval(few)
    assert low <= 1.0 <= high and low >= 0.9 and high <= 1.1
    many_low, many_high = median_interval(few * 8)
    assert low <= many_low <= 1.0 <= many_high <= high and many_high - many_low < high - low
    assert median_interval([0.9] * 10) == (0.9, 0.9)


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
    assert set(result["layouts"]["partitioned"]["partitioned_tables"].values()) == {partitioning.PARTITIONS}
    assert set(result["layouts"]["flat"]["partitioned_tables"].values()) == {0}
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
