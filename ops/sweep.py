"""The stuck-work sweeper (R-OPS-1, issue #18): work left RUNNING by a worker that died is queued again.

Design: docs/design/jobs-and-operations.md#ops-sweep.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.audit import Actor, audit_record
from core.jobs import enqueue
from core.locks import session_lock, session_lock_held
import django_rq
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from coupons.services.generation import batch_generation_running
from coupons.services.grant import grant_work_key
from coupons.jobs import generate_batch_job, run_grant
from coupons.models import CouponBatch, CouponGrant, CouponGrantMember
from partners.models import PartnerUpload
from partners.services import partner_upload_is_stuck, partner_upload_resume_if_stuck

logger = logging.getLogger("coupons.jobs")

SWEEP_LOCK = "cron:requeue_stuck_work"  # the cron frame's key for the command of the same name (core.cron)
ACTOR = "requeue_stuck_work"


@dataclass
class SweepResult:
    batches: int = 0
    uploads: int = 0
    grants: int = 0
    abandoned_jobs: int = 0
    items: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"batches": self.batches, "uploads": self.uploads, "grants": self.grants,
                "abandoned_jobs": self.abandoned_jobs}


def _waiting(job_id: str) -> bool:
    """True when RQ already holds a queued, scheduled, deferred or started job under this id."""
    if not settings.USE_REDIS or getattr(settings, "JOBS_SYNC", False):
        return False

    try:
        job = Job.fetch(job_id, connection=django_rq.get_connection("default"))
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    return status in ("queued", "scheduled", "deferred", "started")


def _abandoned_rq_jobs(dry_run: bool) -> int:
    """Let RQ find the jobs of dead workers now rather than at its next maintenance: they are retried (core.jobs)."""
    if not settings.USE_REDIS or getattr(settings, "JOBS_SYNC", False):
        return 0

    found = 0
    for name in settings.JOB_QUEUES:
        queue = django_rq.get_queue(name)
        registry = StartedJobRegistry(queue=queue)
        found += len(registry.get_expired_job_ids())
        if not dry_run:
            registry.cleanup()
    return found


def _grace_cutoff():
    return timezone.now() - timedelta(seconds=settings.COUPON_SWEEP_PENDING_GRACE_SECONDS)


def stuck_work_requeue(*, dry_run: bool = False) -> SweepResult | None:
    """One sweep. None if another sweep holds the lock."""
    actor = Actor.job(ACTOR)
    with session_lock(SWEEP_LOCK) as got:
        if not got:
            return None
        result = SweepResult()
        result.abandoned_jobs = _abandoned_rq_jobs(dry_run)

        for batch in CouponBatch.objects.select_related("tenant").filter(status=CouponBatch.Status.RUNNING):
            job_id = f"resume-generation-{batch.pk}"
            if batch_generation_running(batch.pk) or _waiting(job_id):
                continue
            result.batches += 1
            result.items.append(f"batch {batch.batch_code}: {batch.generated_count} of {batch.quantity}")
            if not dry_run:
                with transaction.atomic():
                    audit_record(tenant=batch.tenant, actor=actor, action="batch.generation_requeued", obj=batch,
                                 after={"generated_count": batch.generated_count, "quantity": batch.quantity})
                    transaction.on_commit(partial(enqueue, "generation", generate_batch_job, batch.pk,
                                                  {"type": actor.type, "id": actor.id, "label": actor.label},
                                                  job_id=job_id, tenant_id=batch.tenant_id), robust=True)

        uploads = PartnerUpload.objects.select_related("tenant").filter(
            status__in=[PartnerUpload.Status.RUNNING, PartnerUpload.Status.PENDING])
        for upload in uploads:
            job_id = f"resume-upload-{upload.pk}"
            if _waiting(job_id) or not partner_upload_is_stuck(upload=upload):
                continue
            result.uploads += 1
            result.items.append(f"partner upload {upload.public_id}: {upload.processed_rows} of {upload.rows} rows")
            if not dry_run:
                with transaction.atomic():
                    audit_record(tenant=upload.tenant, actor=actor, action="partner_upload.requeued", obj=upload,
                                 after={"status": upload.status, "processed_rows": upload.processed_rows})
                    transaction.on_commit(partial(partner_upload_resume_if_stuck, upload=upload, job_id=job_id),
                                          robust=True)

        # Only grants run as a job have member rows; a small grant is issued inside its request.
        grants = CouponGrant.objects.select_related("tenant").filter(
            status__in=[CouponGrant.Status.RUNNING, CouponGrant.Status.PENDING],
            pk__in=CouponGrantMember.objects.values("grant_id"))
        for grant in grants:
            job_id = f"resume-grant-{grant.pk}"
            if grant.status == CouponGrant.Status.PENDING and grant.created_at > _grace_cutoff():
                continue
            if session_lock_held(grant_work_key(grant.pk)) or _waiting(job_id):
                continue
            result.grants += 1
            result.items.append(f"grant {grant.public_id}: {grant.processed} of {grant.total}")
            if not dry_run:
                with transaction.atomic():
                    audit_record(tenant=grant.tenant, actor=actor, action="grant.requeued", obj=grant,
                                 after={"status": grant.status, "processed": grant.processed})
                    transaction.on_commit(partial(enqueue, "grants", run_grant, grant.pk, grant.tenant_id,
                                                  job_id=job_id, tenant_id=grant.tenant_id), robust=True)
        for item in result.items:
            logger.warning("stuck work %s: %s", "found" if dry_run else "queued again", item)
        return result


NEXT_SWEEP_JOB_ID = "ops-sweep-next"


def sweep_job(reschedule: bool = True) -> dict[str, int] | None:
    """Queue ``default``: one sweep, then the next one in COUPON_SWEEP_INTERVAL_SECONDS (one fixed job id, so there
    is only ever one next run)."""
    try:
        result = stuck_work_requeue()
    finally:
        if reschedule and settings.USE_REDIS:
            django_rq.get_queue("default").enqueue_in(timedelta(seconds=settings.COUPON_SWEEP_INTERVAL_SECONDS),
                                                      sweep_job, job_id=NEXT_SWEEP_JOB_ID)
    return result.counts() if result is not None else None
