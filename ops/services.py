"""Operator actions on failed jobs (R-OPS-1): re-queue or discard, each with an audit row.

The job is looked up as the acting user may see it (ops.selectors.failed_job): a tenant user acting on another
tenant's job — or on a platform job without a tenant — gets "not found", exactly like for a missing job.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from core.audit import Actor, audit_record
from core.exceptions import NotFound
from core.models import Tenant
from ops.selectors import FailedJob, failed_job, get_queue


class _JobRef:
    """What audit_record needs of an object, for an RQ job (it is not a database row)."""

    class _meta:  # noqa: N801 - mimics a model's _meta
        label = "rq.Job"

    def __init__(self, job: FailedJob) -> None:
        self.pk = job.id[:64]
        self._repr = f"{job.queue}: {job.func_name}"

    def __str__(self) -> str:
        return self._repr


@dataclass(frozen=True)
class JobActionResult:
    job_id: str
    queue: str
    func_name: str
    action: str  # "requeued" | "discarded"


def _visible_failed_job(user: Any, queue: str, job_id: str) -> FailedJob:
    job = failed_job(user, queue=queue, job_id=job_id)
    if job is None:
        raise NotFound(_("No such failed job (it may have been re-queued or discarded already)."),
                       code="failed_job_not_found")
    return job


def _audit(user: Any, job: FailedJob, action: str) -> None:
    """Call inside the transaction that surrounds the Redis change: if Redis refuses, the audit row goes too."""
    tenant = Tenant.objects.filter(pk=job.tenant_id).first() if job.tenant_id is not None else None
    audit_record(tenant=tenant, actor=Actor.user(user), action=action, obj=_JobRef(job),
                 before={"queue": job.queue, "status": "failed", "error": job.error_line[:300]},
                 after={"status": "queued" if action == "job.requeue" else "deleted"})


def failed_job_requeue(*, user: Any, queue: str, job_id: str) -> JobActionResult:
    """Put a failed job back on its queue (it runs again with its original arguments)."""
    job = _visible_failed_job(user, queue, job_id)
    registry = get_queue(queue).failed_job_registry
    with transaction.atomic():
        _audit(user, job, "job.requeue")
        try:
            registry.requeue(job_id)
        except Exception as exc:  # InvalidJobOperation: another operator acted first
            raise NotFound(_("This job is no longer in the failed registry."), code="failed_job_not_found") from exc
    return JobActionResult(job_id=job.id, queue=queue, func_name=job.func_name, action="requeued")


def failed_job_discard(*, user: Any, queue: str, job_id: str) -> JobActionResult:
    """Remove a failed job from the registry and delete it: it will not run again."""
    job = _visible_failed_job(user, queue, job_id)
    registry = get_queue(queue).failed_job_registry
    with transaction.atomic():
        _audit(user, job, "job.discard")
        registry.remove(job_id, delete_job=True)
    return JobActionResult(job_id=job.id, queue=queue, func_name=job.func_name, action="discarded")
