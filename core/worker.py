"""RQ worker classes that time every job for /metrics (``coupon_job_duration_seconds``).

``settings.RQ["WORKER_CLASS"]`` makes ``manage.py rqworker`` use :class:`MetricsWorker`. The timing wraps
``perform_job``, which runs in the work horse (the forked child), so it measures the job itself; with
``PROMETHEUS_MULTIPROC_DIR`` set the horse's figures survive its exit in the shared directory.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from rq import SimpleWorker, Worker

from core.metrics import record_job
from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

logger = logging.getLogger("coupons.jobs")


class _TimedJobs:
    def perform_job(self, job: Any, queue: Any) -> bool:
        started = time.perf_counter()
        ok = False
        try:
            ok = super().perform_job(job, queue)  # type: ignore[misc]
            return ok
        finally:
            record_job(queue=queue.name, function=job.func_name or "?", ok=bool(ok),
                       seconds=time.perf_counter() - started)


class _LostJobsFoundSooner:
    """A killed worker's job is found (RQ's ``AbandonedJobError``, then retried — core.jobs) once its heartbeat has
    lapsed and some worker runs registry maintenance. RQ's defaults (heartbeat 30 s, maintenance every 10 min) would
    leave it for up to ten minutes; these settings bring that to about a minute (issue #18)."""

    worker_ttl: int  # RQ's Worker's, which this mixin goes before
    maintenance_interval: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.COUPON_WORKER_HEARTBEAT_SECONDS)
        kwargs.setdefault("maintenance_interval", settings.COUPON_WORKER_MAINTENANCE_SECONDS)
        super().__init__(*args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        """An idle worker blocks on its queues this long between maintenance runs (RQ: worker_ttl - 15 = 405 s)."""
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval))

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance (at start, then every ``maintenance_interval``, also while a job runs), then the stuck-work
        sweep (ops/sweep.py): a worker that starts after another one died picks the dead one's work up at once —
        no waiting for the dead worker's heartbeat or scheduler lock to lapse, no cron needed (issue #18)."""
        super().run_maintenance_tasks()  # type: ignore[misc]

        if not settings.COUPON_WORKER_SWEEPS:
            return

        try:
            import_string("ops.sweep.stuck_work_requeue")()  # by dotted path: ops is a sibling app (STYLE.md)
        except Exception:  # never let the sweep stop the worker; cron and the periodic job sweep too
            logger.exception("the stuck-work sweep failed")
        finally:
            connections.close_all()  # the next work horse is forked from here: it must not share this connection


class MetricsWorker(_LostJobsFoundSooner, _TimedJobs, Worker):
    pass


class MetricsSimpleWorker(_LostJobsFoundSooner, _TimedJobs, SimpleWorker):
    """No fork: for tests and debugging."""
