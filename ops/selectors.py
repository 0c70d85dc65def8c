"""Reads of the job system for the console (R-OPS-1): queue depths, registries, workers, failed jobs."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from ops.permissions import job_visible_to
import django_rq
from rq import Worker
from rq.job import Job
from rq.exceptions import NoSuchJobError

# A tenant user's failed-job list is filtered after fetching: look at no more than this many of the newest ids per
# queue, so one page never fetches a whole 100,000-job registry.
SCAN_LIMIT = 1000


@dataclass
class QueueStats:
    name: str
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    finished: int


@dataclass
class WorkerInfo:
    name: str
    state: str
    queues: list[str]
    current_job_id: str | None
    last_heartbeat: datetime | None
    successful: int
    failed: int


@dataclass
class FailedJob:
    id: str
    queue: str
    func_name: str
    args: str
    tenant_id: int | None
    failure: str  # "transient" (retries spent) or "permanent" (no retry) or "" (unknown)
    exc_info: str
    ended_at: datetime | None
    enqueued_at: datetime | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def error_line(self) -> str:
        lines = [line for line in (self.exc_info or "").strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


def jobs_configured() -> bool:
    return bool(settings.USE_REDIS)


def queue_names() -> list[str]:
    return list(settings.JOB_QUEUES)


# What each queue carries, for the queue picker (issue #20); the name itself stays what rqworker is started with.
QUEUE_LABELS = {"generation": _("code generation"), "uploads": _("partner uploads"), "grants": _("grants to members"),
                "expiry": _("expiry"), "draws": _("prize draws"), "exports": _("exports"), "default": _("other jobs")}


def queue_label(name: str) -> str:
    label = QUEUE_LABELS.get(name)
    return str(label) if label else name


def get_queue(name: str) -> Any:
    if name not in settings.JOB_QUEUES:
        raise KeyError(name)
    return django_rq.get_queue(name)


def queue_stats() -> list[QueueStats]:
    stats = []
    for name in queue_names():
        q = get_queue(name)
        stats.append(QueueStats(name=name, queued=q.count, started=q.started_job_registry.count,
                                scheduled=q.scheduled_job_registry.count, deferred=q.deferred_job_registry.count,
                                failed=q.failed_job_registry.count, finished=q.finished_job_registry.count))
    return stats


def workers() -> list[WorkerInfo]:
    connection = get_queue(queue_names()[0]).connection
    found = []
    for worker in Worker.all(connection=connection):
        found.append(WorkerInfo(name=worker.name, state=str(worker.get_state()), queues=worker.queue_names(),
                                current_job_id=worker.get_current_job_id(), last_heartbeat=worker.last_heartbeat,
                                successful=worker.successful_job_count, failed=worker.failed_job_count))
    return sorted(found, key=lambda w: w.name)


def _as_failed_job(job: Any, queue: str) -> FailedJob:
    try:
        func_name = job.func_name
        args = ", ".join([*(repr(a) for a in job.args), *(f"{k}={v!r}" for k, v in job.kwargs.items())])
    except Exception:  # undecodable payload: still show and let an operator discard it
        func_name, args = "<cannot be decoded>", ""
    meta = dict(job.meta or {})
    latest = job.latest_result()
    tenant_id = meta.get("tenant_id")
    return FailedJob(id=job.id, queue=queue, func_name=func_name, args=args[:500],
                     tenant_id=int(tenant_id) if tenant_id is not None else None, failure=meta.get("failure", ""),
                     exc_info=(latest.exc_string if latest is not None else "") or "", ended_at=job.ended_at, enqueued_at=job.enqueued_at, meta=meta)


def failed_jobs(user: Any, *, queue: str | None = None, limit: int = 200) -> list[FailedJob]:
    """The failed jobs ``user`` may see, newest first (across every queue unless ``queue`` is given)."""
    result: list[FailedJob] = []
    for name in ([queue] if queue else queue_names()):
        q = get_queue(name)
        ids = q.failed_job_registry.get_job_ids(0, (limit if user.is_superuser else SCAN_LIMIT) - 1, desc=True)
        for job in Job.fetch_many(ids, connection=q.connection, serializer=q.serializer):
            if job is not None and job_visible_to(user, job.meta):
                result.append(_as_failed_job(job, name))
    result.sort(key=lambda j: j.ended_at.timestamp() if j.ended_at else 0.0, reverse=True)
    return result[:limit]


def failed_job(user: Any, *, queue: str, job_id: str) -> FailedJob | None:
    """One failed job, or None when it is not in the queue's failed registry or ``user`` may not see it (a tenant
    user cannot tell another tenant's job from a missing one)."""
    try:
        q = get_queue(queue)
    except KeyError:
        return None
    if job_id not in q.failed_job_registry:
        return None
    try:
        job = Job.fetch(job_id, connection=q.connection, serializer=q.serializer)
    except NoSuchJobError:
        return None
    if not job_visible_to(user, job.meta):
        return None
    return _as_failed_job(job, queue)
