"""The stuck-work sweep (issue #18, R-OPS-1/2; ops/sweep.py, `requeue_stuck_work`): work a dead worker left RUNNING is
queued again and resumes; work a live worker holds, and work finished, are left alone. (The kill itself, with real
workers, is in tests/faults/test_lost_worker.py.)"""
from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from core.locks import session_lock
from core.models import AuditLog
from coupons.services.generation import batch_lock_key
from coupons.models import CouponBatch, CouponCode
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def _stuck_batch(quantity: int = 50) -> CouponBatch:
    """What a worker killed at the start of a generation leaves: RUNNING, and nobody holds its generation lock."""
    inventory = factories.make_inventory(factories.make_tenant(), total_quantity=quantity)
    batch = factories.make_batch(inventory, quantity=quantity)
    CouponBatch.objects.filter(pk=batch.pk).update(status=CouponBatch.Status.RUNNING)
    return batch


def sweep(*args: str) -> str:
    out = StringIO()
    call_command("requeue_stuck_work", "--no-progress", *args, stdout=out)
    return out.getvalue()


def test_a_running_batch_nobody_holds_is_queued_again_and_finished_and_a_second_sweep_finds_nothing():
    batch = _stuck_batch()
    dry = sweep("--dry-run")
    assert f"stuck: batch {batch.batch_code}: 0 of 50" in dry and "batches=1" in dry and "dry_run=yes" in dry
    assert CouponBatch.objects.get(pk=batch.pk).status == CouponBatch.Status.RUNNING
    assert not AuditLog.objects.filter(action="batch.generation_requeued").exists()

    first = sweep()  # jobs run inline in tests: the generation resumes and completes here
    assert "batches=1" in first
    batch.refresh_from_db()
    assert batch.status == CouponBatch.Status.COMPLETED and CouponCode.objects.filter(batch=batch).count() == 50
    assert AuditLog.objects.filter(action="batch.generation_requeued", object_id=str(batch.pk)).count() == 1
    assert "batches=0" in sweep()


def test_a_running_batch_a_live_worker_holds_is_left_alone():
    batch = _stuck_batch()
    held, release = threading.Event(), threading.Event()

    def worker() -> None:  # another session holds the batch's generation lock, like a live work horse
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [batch_lock_key(batch.pk)])
            held.set()
            release.wait(timeout=30)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [batch_lock_key(batch.pk)])
        connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert held.wait(timeout=30)
        assert "batches=0" in sweep()
        assert CouponBatch.objects.get(pk=batch.pk).status == CouponBatch.Status.RUNNING
    finally:
        release.set()
        thread.join(timeout=30)


def test_a_sweep_while_another_runs_says_already_running():
    _stuck_batch()
    with session_lock("cron:requeue_stuck_work") as got:
        assert got
        held = threading.Event()
        outcome: list[str] = []

        def other() -> None:
            outcome.append(sweep())
            connection.close()
            held.set()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=30)
    assert "already running" in outcome[0]


def test_a_stuck_upload_is_started_again_by_the_same_file_uploaded_again(tenant, settings):
    """The same file again returns the earlier upload — and starts it again when a dead worker left it RUNNING."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from partners.models import PartnerUpload
    from partners.services import partner_create, partner_upload_create

    inventory, _ = factories.make_pool(tenant, size=5)
    partner_create(tenant=tenant, name="Mall", code="MALL", actor=factories.TEST_ACTOR)
    content = b"partner_code\nPC1\nPC2\nPC3\n"

    def upload():
        return partner_upload_create(tenant=tenant, partner_code="MALL", inventory_public_id=inventory.public_id,
                                     uploaded=SimpleUploadedFile("codes.csv", content), actor=factories.TEST_ACTOR)

    first, created = upload()  # processed inline (jobs run inline in tests)
    assert created and PartnerUpload.objects.get(pk=first.pk).status == PartnerUpload.Status.DONE
    # what a worker killed after the file check leaves behind
    PartnerUpload.objects.filter(pk=first.pk).update(status=PartnerUpload.Status.RUNNING, processed_rows=0,
                                                     mapped=0, failed=0)
    from partners.models import CouponMapping

    CouponMapping.objects.filter(upload=first).delete()
    CouponCode.objects.filter(inventory=inventory).update(status=CouponCode.Status.AVAILABLE)
    again, created = upload()
    assert (again.pk, created) == (first.pk, False)
    done = PartnerUpload.objects.get(pk=first.pk)
    assert (done.status, done.processed_rows, done.mapped) == (PartnerUpload.Status.DONE, 3, 3)
