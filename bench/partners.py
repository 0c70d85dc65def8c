"""``manage.py bench partner_upload --n 1000000``: one partner file of N rows (1 % bad) mapped end to end (R-PART-5).

Design: docs/design/benchmarks.md#bench-partners.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.files import File
from django.db import connection, connections
from django.utils import timezone

from bench.db import database_url, scratch_database
from bench.registry import register
from core.audit import Actor
from core.models import Tenant, User
from core.services import tenant_create
from coupons import services
from coupons.services.generation import batch_generate
from coupons.models import CouponPolicy
from events.services import event_create
from partners import services as partner_services
from partners.services import partner_create

BASE_DIR = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, resource, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coupon_project.settings")
django.setup()
from django.db import connection
from partners.services import partner_upload_process

def backend_cpu():
    # CPU seconds of this connection's PostgreSQL backend (same machine): the work, whatever the load
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = open(f"/proc/{{pid}}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

before_db = backend_cpu()
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.monotonic()
upload = partner_upload_process(upload_id={upload_id}, tenant_id={tenant_id})
seconds = time.monotonic() - started
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": round(seconds, 2), "status": upload.status, "rows": upload.rows,
                   "mapped": upload.mapped, "failed": upload.failed,
                   "cpu_seconds_worker": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
                   "cpu_seconds_postgres": round(backend_cpu() - before_db, 2),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""


def _arguments(parser: Any) -> None:
    parser.add_argument("--n", type=int, default=1_000_000, help="Rows in the partner file (default 1,000,000).")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")


def _write_file(path: Path, n: int) -> dict[str, int]:
    """N rows, 1 % bad in five kinds, spread through the file."""
    kinds = {"empty": 0, "too_long": 0, "formula": 0, "duplicate": 0, "bad_format": 0}
    previous = ""
    with path.open("w", encoding="utf-8") as out:
        out.write("partner_code\n")
        for i in range(n):
            if i % 100 == 50:
                kind = list(kinds)[(i // 100) % len(kinds)]
                kinds[kind] += 1
                value = {"empty": "", "too_long": "X" * 80, "formula": '"=HYPERLINK(""http://x"")"',
                         "duplicate": previous, "bad_format": f"ab_c{i}"}[kind]
            else:
                value = f"P{i:09d}{secrets.token_hex(2).upper()}"
                previous = value
            out.write(value + "\n")
    return kinds


def _seed(n: int) -> tuple[int, str]:
    actor = Actor.system("bench")
    now = timezone.now()
    tenant = tenant_create(name="bench", slug="bench", currency="KRW", rounding_unit=10, actor=actor)
    author = User.objects.create_user("bench-author", tenant=tenant, is_staff=True)
    approver = User.objects.create_user("bench-approver", tenant=tenant, is_staff=True, is_superuser=True)
    policy = services.policy_save_draft(policy=CouponPolicy(
        tenant=tenant, name="bench", kind="amount", amount=1000, validity_type="fixed",
        valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=30)), actor_user=author)
    services.policy_submit(policy=policy, actor_user=author)
    policy = services.policy_approve(policy=policy, actor_user=approver)
    event = event_create(tenant=tenant, name="bench", starts_at=now - timedelta(days=1),
                         ends_at=now + timedelta(days=30), status="OPEN", actor=actor)
    inventory = services.inventory_create(tenant=tenant, event=event, policy=policy, name="bench", total_quantity=n,
                                          actor=actor)
    batch = services.batch_create(inventory=inventory, batch_code="BENCH-PARTNER", quantity=n, actor=actor)
    batch_generate(batch_id=batch.pk, actor=actor)
    partner_create(tenant=tenant, name="Bench partner", code="BENCHP", actor=actor)
    return tenant.pk, inventory.public_id


@register("partner_upload", help="Map a partner file of N rows (1 percent bad) in a scratch database; seconds and RSS.",
          arguments=_arguments)
def bench_partner_upload(options: dict[str, Any]) -> dict[str, Any]:
    n = options["n"]
    database = f"{connection.settings_dict['NAME']}_benchpartners"
    workdir = Path(tempfile.mkdtemp(prefix="bench-partners-"))
    try:
        with scratch_database(database, keep=options.get("keep", False)):
            tenant_id, inventory = _seed(n)
            path = workdir / "partner_codes.csv"
            kinds = _write_file(path, n)
            real_after_commit = partner_services._after_commit
            partner_services._after_commit = lambda fn: None  # processed below, in its own process
            try:
                with path.open("rb") as handle:
                    upload, _ = partner_services.partner_upload_create(
                        tenant=Tenant.objects.get(pk=tenant_id), partner_code="BENCHP",
                        inventory_public_id=inventory, uploaded=File(handle, name="partner_codes.csv"),
                        actor=Actor.system("bench"))
            finally:
                partner_services._after_commit = real_after_commit
            connections.close_all()
            env = {**os.environ, "DATABASE_URL": database_url(database), "DJANGO_LOG_LEVEL": "WARNING"}
            started = time.monotonic()
            child = CHILD.format(upload_id=upload.pk, tenant_id=upload.tenant_id)
            out = subprocess.run([sys.executable, "-c", child], cwd=BASE_DIR, env=env,
                                 capture_output=True, text=True, check=True).stdout
            wall = time.monotonic() - started
            result = json.loads(out.strip().splitlines()[-1])
            file_mb = round(path.stat().st_size / 1e6, 1)
    finally:
        for file in workdir.glob("*"):
            file.unlink()
        workdir.rmdir()
    return {"benchmark": "partner_upload", "n": n, "bad_rows_by_kind": kinds, "file_mb": file_mb, **result,
            "rows_per_s": round(n / result["seconds"]), "child_wall_seconds": round(wall, 2),
            "date": timezone.now().isoformat(timespec="seconds"), "load": os.getloadavg(), "cpus": os.cpu_count()}
