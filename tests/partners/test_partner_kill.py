"""R-PART-5: a worker process killed with SIGKILL in the middle of an upload — between chunks, or inside a chunk's
open transaction — leaves only whole chunks behind, and the job run again resumes to the same final counts as an
uninterrupted run, with no mapping twice."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Count

from bench.db import database_url
from core.models import AuditLog
from coupons.models import CouponCode
from partners import services
from partners.models import CouponMapping, Partner, PartnerUploadFailure
from tests import factories

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# The worker: 100-row chunks; on the 4th chunk it stops, either after its commit (between chunks) or after its
# mappings and failures are written but before the commit (inside the transaction), prints a marker and waits to
# be killed.
WORKER = """
import os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coupon_project.settings")
django.setup()
from partners import services
services.CHUNK_ROWS = 100
where = sys.argv[2]
real_insert_failures = services._insert_failures
calls = {"n": 0}

def wait_for_the_kill():
    print("READY", flush=True)
    time.sleep(600)

def insert_failures(upload, failures):
    real_insert_failures(upload, failures)
    calls["n"] += 1
    if where == "inside" and calls["n"] == 4:
        wait_for_the_kill()

services._insert_failures = insert_failures
if where == "between":
    services._after_chunk = lambda n: wait_for_the_kill() if n == 3 else None
services.partner_upload_process(upload_id=int(sys.argv[1]), tenant_id=int(sys.argv[3]))
print("FINISHED", flush=True)
"""


def run_worker_and_kill(upload_id: int, where: str, tenant_id: int) -> None:
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict["NAME"]), "COUPON_JOBS_SYNC": "true",
           "DJANGO_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(upload_id), where, str(tenant_id)], cwd=BASE_DIR, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = worker.stdout.readline()
        assert line.strip() == "READY", (line, worker.stderr.read() if worker.poll() is not None else "")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    # The server rolls back the dead worker's open transaction once it sees the connection closed.
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()")
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)
    raise AssertionError("the killed worker's transaction is still open")


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("races")
@pytest.mark.parametrize("where", ["between", "inside"])
def test_a_worker_killed_mid_upload_resumes_to_the_same_final_counts(tenant, monkeypatch, where):
    monkeypatch.setattr(services, "_after_commit", lambda fn: None)  # the worker below processes it
    monkeypatch.setattr(services, "CHUNK_ROWS", 100)
    Partner.objects.create(tenant=tenant, name="GS", code="GS25")
    inventory, _codes = factories.make_pool(tenant, size=950)
    # 1,000 rows: every 10th is bad, and from row 200 every 25th repeats the code of a row of the chunk before
    lines = ["partner_code"]
    for i in range(1_000):
        if i % 10 == 9:
            lines.append("BAD$")
        elif i % 25 == 0 and i >= 200:
            lines.append(f"P{i - 103:06d}")
        else:
            lines.append(f"P{i:06d}")
    upload, _created = services.partner_upload_create(
        tenant=tenant, partner_code="GS25", inventory_public_id=inventory.public_id,
        uploaded=SimpleUploadedFile("k.csv", ("\n".join(lines) + "\n").encode()), actor=factories.TEST_ACTOR)

    run_worker_and_kill(upload.pk, where, upload.tenant_id)

    upload.refresh_from_db()
    # Only whole chunks: 3 committed (the 4th, inside its transaction, was rolled back with the connection)
    assert (upload.status, upload.rows, upload.processed_rows) == ("RUNNING", 1_000, 300)
    assert upload.mapped + upload.failed == 300
    assert CouponMapping.objects.filter(upload=upload).count() == upload.mapped
    assert not CouponMapping.objects.filter(upload=upload, line__gt=301).exists()
    assert PartnerUploadFailure.objects.filter(upload=upload).count() == upload.failed
    assert CouponCode.objects.filter(inventory=inventory, status="MAPPED").count() == upload.mapped

    services.partner_upload_process(upload_id=upload.pk, tenant_id=upload.tenant_id)  # the job, run again

    upload.refresh_from_db()
    duplicates, bad = 32, 100
    assert (upload.status, upload.rows, upload.processed_rows) == ("DONE", 1_000, 1_000)
    assert (upload.mapped, upload.failed) == (1_000 - bad - duplicates, bad + duplicates)
    assert CouponMapping.objects.filter(upload=upload).count() == upload.mapped
    assert CouponMapping.objects.values("partner_code").distinct().count() == upload.mapped
    assert CouponCode.objects.filter(inventory=inventory, status="MAPPED").count() == upload.mapped
    assert dict(PartnerUploadFailure.objects.filter(upload=upload).values_list("reason").annotate(n=Count("id"))) == {
        "bad_format": bad, "duplicate_in_file": duplicates}
    assert AuditLog.objects.filter(action="partner_upload.done", object_id=str(upload.pk)).count() == 1
