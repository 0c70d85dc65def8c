"""Fault suite, issue #18 (R-OPS-1, R-CODE-5, R-PART-3/5, R-NFR-3): a worker killed in the middle of its work.

The whole worker — rqworker and its work horse — is SIGKILLed (the process group) at half of a code generation or a
partner upload, on the throwaway PostgreSQL and Redis. Another worker is started and nobody does anything else:
the work must finish, from its last committed chunk, with nothing missing and nothing twice.
"""
from __future__ import annotations

import io
import time

import pytest
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

from core.jobs import rq_enqueue
from core.locks import session_lock_held
from coupons.jobs import generate_batch_job
from coupons.models import CouponBatch, CouponCode
from partners.models import PartnerUpload
from partners.services import upload_work_key
from partners.services import partner_create
from tests import factories
from tests.faults import invariants
from tests.faults.harness import Server, Worker, wait_for

# One xdist worker runs the fault suite, one test at a time, on one throwaway stack (tests/faults/conftest.py).
pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]

QUANTITY = 400_000  # 20 chunks of 20,000 (COUPON_GENERATION_CHUNK_SIZE in the fault stack)


def _batch(quantity: int = QUANTITY) -> CouponBatch:
    tenant = factories.make_tenant()
    inventory = factories.make_inventory(tenant, total_quantity=quantity)
    return factories.make_batch(inventory, quantity=quantity)


def _generated(batch: CouponBatch) -> int:
    return CouponBatch.objects.values_list("generated_count", flat=True).get(pk=batch.pk)


def _kill_at_half(worker: Worker, batch: CouponBatch) -> int:
    wait_for(lambda: _generated(batch) >= batch.quantity // 2, "half of the batch generated", timeout=120, every=0.02)
    worker.kill()
    return _generated(batch)


def _assert_complete(batch: CouponBatch) -> None:
    batch.refresh_from_db()
    assert batch.status == CouponBatch.Status.COMPLETED
    codes = CouponCode.objects.filter(batch=batch)
    assert (codes.count(), codes.values("code").distinct().count(), batch.generated_count) == (QUANTITY,) * 3


def test_a_worker_killed_at_half_a_generation_is_finished_by_the_next_worker_within_two_minutes(on_stack):
    stack = on_stack
    batch = _batch()
    first = Worker(stack, "first", scheduler=False)
    rq_enqueue(Queue("generation", connection=Redis.from_url(stack.redis.url())), generate_batch_job, batch.pk,
               None, job_id=f"generate-{batch.pk}")
    at_kill = _kill_at_half(first, batch)
    assert QUANTITY // 2 <= at_kill < QUANTITY, at_kill  # really cut off in the middle
    batch.refresh_from_db()
    assert batch.status == CouponBatch.Status.RUNNING  # what a dead worker leaves behind

    second = Worker(stack, "second")  # … and nobody does anything else
    wait_for(lambda: CouponBatch.objects.filter(pk=batch.pk, status=CouponBatch.Status.COMPLETED).exists(),
             "the batch completed by the next worker", timeout=120, every=0.2)
    took = time.monotonic() - second.started
    assert took < 120, took
    _assert_complete(batch)
    invariants.check(stack.db_url)


def test_rq_retries_a_job_abandoned_by_a_dead_worker_instead_of_filing_it_as_failed(on_stack, settings):
    """RQ's own path: once the dead worker's heartbeat has lapsed, registry maintenance finds the job and calls the
    failure callback with AbandonedJobError — transient (core.jobs), so the job is retried, not failed for good."""
    stack = on_stack
    connection = Redis.from_url(stack.redis.url())
    batch = _batch()
    queue = Queue("generation", connection=connection)
    first = Worker(stack, "first", scheduler=False)
    job = rq_enqueue(queue, generate_batch_job, batch.pk, None, job_id=f"generate-{batch.pk}")
    _kill_at_half(first, batch)
    started = StartedJobRegistry(queue=queue)
    assert job.id in started.get_job_ids()
    # The heartbeat lapses 60 s after the kill; the cleanup RQ's maintenance runs then is run here as of that time.
    started.cleanup(timestamp=time.time() + 3600)
    job.refresh()
    assert job.id not in FailedJobRegistry(queue=queue).get_job_ids()
    assert job.id in ScheduledJobRegistry(queue=queue).get_job_ids()  # retried after JOB_RETRY_INTERVALS[0]
    assert job.meta["failure"] == "transient" and "AbandonedJobError" in job.meta["failure_error"]
    Worker(stack, "second", COUPON_WORKER_SWEEPS="false")  # RQ's retry alone, no sweep
    wait_for(lambda: CouponBatch.objects.filter(pk=batch.pk, status=CouponBatch.Status.COMPLETED).exists(),
             "the batch completed by the retried job", timeout=120, every=0.2)
    _assert_complete(batch)
    invariants.check(stack.db_url)


ROWS = 60_000  # 6 chunks of 10,000 rows (partners.services.CHUNK_ROWS)


def _partner_file(bad_every: int = 1000) -> bytes:
    lines = ["partner_code"]
    for i in range(ROWS):
        lines.append(f"BAD-{i}!" if i % bad_every == 0 else f"PC{i:08d}")
    return ("\n".join(lines) + "\n").encode()


def test_an_upload_cut_off_by_a_killed_worker_is_resumed_by_a_re_upload_and_can_then_be_reprocessed(on_stack):
    stack = on_stack
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=ROWS)
    partner = partner_create(tenant=tenant, name="Mall", code="MALL", actor=factories.TEST_ACTOR)
    token = factories.make_client(tenant, scope="operator")[1]
    server = Server(stack)
    content = _partner_file()

    def upload():
        return server.post("/api/v1/partner-uploads", token, files={"file": ("codes.csv", io.BytesIO(content))},
                           data={"partner": partner.code, "inventory": inventory.public_id})

    first = Worker(stack, "first", scheduler=False)
    answer = upload()
    assert answer.status_code == 202, answer.text
    public_id = answer.json()["id"]
    row = PartnerUpload.objects.get(public_id=public_id)

    def processed() -> int:
        return PartnerUpload.objects.values_list("processed_rows", flat=True).get(pk=row.pk)

    wait_for(lambda: processed() >= ROWS // 2, "half of the upload processed", timeout=120, every=0.02)
    first.kill()
    killed_at = processed()
    # The dead worker's PostgreSQL session ends (and with it the upload's work lock) once the server notices.
    wait_for(lambda: not session_lock_held(upload_work_key(row.pk)), "the dead worker's session gone", timeout=30)
    cut = PartnerUpload.objects.get(pk=row.pk)
    assert (cut.status, cut.processed_rows) == (PartnerUpload.Status.RUNNING, killed_at)
    assert ROWS // 2 <= killed_at < ROWS, killed_at

    # Reprocess while it is stuck: refused with a clear answer, and the upload is started again.
    refused = server.post(f"/api/v1/partner-uploads/{public_id}/reprocess", token, {})
    assert refused.status_code == 409 and refused.json()["code"] == "upload_not_done"
    assert refused.json()["details"] == {"resumed": True}
    again = upload()  # the same file again: the earlier upload, not a second one
    assert again.status_code == 202 and again.json()["id"] == public_id
    Worker(stack, "second", COUPON_WORKER_SWEEPS="false")  # the re-upload alone starts it again
    wait_for(lambda: PartnerUpload.objects.filter(pk=row.pk, status=PartnerUpload.Status.DONE).exists(),
             "the upload finished by the next worker", timeout=120, every=0.2)
    done = PartnerUpload.objects.get(pk=row.pk)
    assert (done.rows, done.processed_rows, done.mapped, done.failed) == (ROWS, ROWS, ROWS - ROWS // 1000,
                                                                          ROWS // 1000)
    assert PartnerUpload.objects.filter(tenant=tenant).count() == 1
    invariants.check(stack.db_url)

    # … and reprocessing works again: one corrected row maps.
    fixed = server.post(f"/api/v1/partner-uploads/{public_id}/reprocess", token,
                        {"rows": [{"line": 2, "value": "FIXED0"}]})
    assert fixed.status_code == 202, fixed.text
    wait_for(lambda: PartnerUpload.objects.filter(pk=row.pk, status=PartnerUpload.Status.DONE,
                                                  mapped=ROWS - ROWS // 1000 + 1).exists(),
             "the corrected row mapped", timeout=60, every=0.2)
    server.stop()
    invariants.check(stack.db_url)


@pytest.fixture(autouse=True)
def _no_inline_jobs(settings):
    settings.JOBS_SYNC = False
