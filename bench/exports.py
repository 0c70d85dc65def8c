"""``manage.py bench export --rows 1000000``: a usage-log export of N rows against a bare openpyxl loop (R-REP-2).

Design: docs/design/benchmarks.md#bench-exports.
"""
from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.db import connection
from openpyxl import Workbook, load_workbook

from bench.db import reset_hwm, scratch_database, vm_hwm_mb, vm_rss_mb
from bench.registry import register
from core.audit import Actor
from core.models import Tenant, User
from core.roles import ROLE_APPROVER, ensure_roles
from core.services import api_client_create
from coupons import services as coupon_services
from coupons.models import CouponPolicy
from events.models import Event
from events.services import event_create
from exports.columns import USAGES
from exports.models import Export
from exports.services import export_write

BASE_LOCAL = dt.datetime(2026, 3, 1, 9, 0, 0)  # Asia/Seoul wall time of usage 0
NAMES = {"event": "Bench event", "policy": "Bench policy", "inventory": "Bench pool", "batch": "BENCH-1",
         "client": "bench-pos"}


def _arguments(parser: Any) -> None:
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default="", help="Scratch database name (default: <current>_benchexport).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")


def _member(i: int) -> str:
    return f"=m{i}" if i % 1000 == 0 else f"m-{i % 100_000}"


def _setup(rows: int) -> Any:
    actor = Actor.system("bench")
    tenant = Tenant.objects.create(name="Bench export", slug="bench-export", time_zone="Asia/Seoul")
    now = dt.datetime.now(dt.UTC)
    event = event_create(tenant=tenant, name=NAMES["event"], starts_at=now - dt.timedelta(days=30),
                         ends_at=now + dt.timedelta(days=30), status=Event.Status.OPEN, actor=actor)
    author = User.objects.create_user(username="bench-author", tenant=tenant, is_staff=True)
    approver = User.objects.create_user(username="bench-approver", tenant=tenant, is_staff=True)
    ensure_roles()
    approver.groups.add(Group.objects.get(name=ROLE_APPROVER))
    policy = coupon_services.policy_save_draft(policy=CouponPolicy(
        tenant=tenant, name=NAMES["policy"], kind="amount", amount=5000, validity_type="fixed",
        valid_from=now - dt.timedelta(days=30), valid_until=now + dt.timedelta(days=30)), actor_user=author)
    coupon_services.policy_submit(policy=policy, actor_user=author)
    policy = coupon_services.policy_approve(policy=policy, actor_user=approver)
    inventory = coupon_services.inventory_create(tenant=tenant, event=event, policy=policy, name=NAMES["inventory"],
                                                 total_quantity=rows, actor=actor)
    batch = coupon_services.batch_create(inventory=inventory, batch_code=NAMES["batch"], quantity=rows, actor=actor)
    client, _token = api_client_create(tenant=tenant, name=NAMES["client"], scope="operator", actor=actor)
    base = dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)  # = BASE_LOCAL in Seoul
    with connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO coupons_couponcode (tenant_id, inventory_id, batch_id, code, status, member_id, issued_at,
                                            used_at)
            SELECT %s, %s, %s, 'C' || lpad(i::text, 9, '0'), 'USED',
                   CASE WHEN i %% 1000 = 0 THEN '=m' || i ELSE 'm-' || (i %% 100000) END,
                   %s::timestamptz + make_interval(secs => i), %s::timestamptz + make_interval(secs => i)
            FROM generate_series(0, %s - 1) AS i""", [tenant.pk, inventory.pk, batch.pk, base, base, rows])
        cursor.execute("""
            INSERT INTO coupons_couponusage (tenant_id, inventory_id, coupon_id, member_id, order_id, order_amount,
                                             discount, channel, payment_method, client_id, ip, device_id, used_at)
            SELECT c.tenant_id, c.inventory_id, c.id, c.member_id, 'o-' || (c.id - m.first_id),
                   10000 + (c.id - m.first_id) %% 50000, 1000 + (c.id - m.first_id) %% 5000, 'ios', 'online', %s,
                   NULL, '', c.used_at
            FROM coupons_couponcode c, (SELECT min(id) AS first_id FROM coupons_couponcode WHERE batch_id = %s) m
            WHERE c.batch_id = %s ORDER BY c.id""", [client.pk, batch.pk, batch.pk])
        cursor.execute("ANALYZE coupons_couponcode; ANALYZE coupons_couponusage")
    return Export.objects.create(tenant=tenant, kind=Export.Kind.USAGES, filters={}, description="bench")


def _reference_rows(rows: int) -> Iterator[tuple]:
    """The export's rows, computed from the seeding formulas (values, types and escaping identical)."""
    names = NAMES
    for i in range(rows):
        at = BASE_LOCAL + dt.timedelta(seconds=i)
        member = _member(i)
        yield (at, None, f"o-{i}", "'" + member if member.startswith("=") else member, f"C{i:09d}", 10000 + i % 50000,
               1000 + i % 5000, names["event"], names["policy"], names["inventory"], names["batch"], "ios", "online",
               names["client"])


def _reference(rows: int, header: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title="Usages")
    sheet.append(header)
    for row in _reference_rows(rows):
        sheet.append(row)
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as handle:
        workbook.save(handle.name)
        size = os.path.getsize(handle.name)
    return time.perf_counter() - started, size


def _check_same_values(export: Any, rows: int) -> bool:
    """The first and last rows of the file equal the reference's (read back with openpyxl's streaming reader)."""

    workbook = load_workbook(default_storage.path(export.file), read_only=True)
    sheet = workbook.worksheets[0]
    got = [row for _, row in zip(range(4), sheet.iter_rows(min_row=2, values_only=True), strict=False)]
    expected = [row for _, row in zip(range(4), _reference_rows(rows), strict=False)]
    workbook.close()
    return got == expected


@register("export", help="Usage-log XLSX export of N rows vs a bare write-only openpyxl loop (R-REP-2).",
          arguments=_arguments)
def bench_export(options: dict[str, Any]) -> dict[str, Any]:
    rows = options["rows"]
    name = options["database"] or f"{connection.settings_dict['NAME']}_benchexport"
    with scratch_database(name, keep=options["keep"]):
        setup_started = time.perf_counter()
        export = _setup(rows)
        setup_seconds = time.perf_counter() - setup_started

        reset_hwm()
        rss_before = vm_rss_mb()
        started, cpu_started = time.perf_counter(), time.process_time()
        export_write(export_id=export.pk, tenant_id=export.tenant_id)
        export_seconds = time.perf_counter() - started
        export_cpu = time.process_time() - cpu_started
        export_peak = vm_hwm_mb()
        export.refresh_from_db()

        reset_hwm()
        cpu_started = time.process_time()
        reference_seconds, reference_size = _reference(rows, [str(c.label) for c in USAGES])
        reference_cpu = time.process_time() - cpu_started
        reference_peak = vm_hwm_mb()
        same = _check_same_values(export, rows)
        assert export.status == Export.Status.DONE and export.rows_done == rows
    ratio = export_seconds / reference_seconds if reference_seconds else None
    return {
        "benchmark": "export", "rows": rows, "columns": len(USAGES),
        "setup_seconds": round(setup_seconds, 1),
        "export": {"seconds": round(export_seconds, 2), "cpu_seconds": round(export_cpu, 2),
                   "rows_per_second": round(rows / export_seconds),
                   "peak_rss_mb": export_peak, "rss_before_mb": rss_before, "file_bytes": export.file_size},
        "reference": {"seconds": round(reference_seconds, 2), "cpu_seconds": round(reference_cpu, 2),
                      "peak_rss_mb": reference_peak,
                      "file_bytes": reference_size},
        "ratio": round(ratio, 3) if ratio else None,
        # this process's CPU only (PostgreSQL's share of the export runs in the server): less sensitive to load
        "cpu_ratio": round(export_cpu / reference_cpu, 3) if reference_cpu else None,
        "same_values_checked": same,
        "targets": {"ratio_max": 1.2, "rss_max_mb": 250,
                    "met": bool(ratio and ratio <= 1.2 and export_peak <= 250)},
        "load_average": os.getloadavg(),
    }
