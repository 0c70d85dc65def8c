"""Enqueueing background work (R-OPS-1).

With ``REDIS_URL``: an RQ job on the named queue, run by ``rqworker`` processes, retried with backoff.
Without it (the zero-setup quick start): the job runs in a small in-process thread pool — same code path, no
separate worker. ``COUPON_JOBS_SYNC=true`` runs jobs inline in the caller (tests, management commands).

Jobs take ids, never model instances, and call one service (STYLE.md): whatever runs them, the service is the same.
Call ``enqueue`` from ``transaction.on_commit`` when the job reads rows the caller is writing.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger("coupons.jobs")

_executor: ThreadPoolExecutor | None = None

# Transient failures are retried with growing pauses; what still fails lands in RQ's failed registry.
RETRY_INTERVALS = [10, 60, 300]


def _in_process(func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    close_old_connections()
    try:
        func(*args, **kwargs)
    except Exception:
        logger.exception("in-process job %s failed", getattr(func, "__name__", func))
    finally:
        close_old_connections()


def enqueue(queue: str, func: Callable[..., Any], *args: Any, job_id: str | None = None, **kwargs: Any) -> str:
    if queue not in settings.JOB_QUEUES:
        raise ValueError(f"unknown queue {queue!r}; known: {settings.JOB_QUEUES}")
    job_id = job_id or uuid.uuid4().hex
    if getattr(settings, "JOBS_SYNC", False):
        func(*args, **kwargs)
        return job_id
    if settings.USE_REDIS:
        import django_rq
        from rq import Retry

        django_rq.get_queue(queue).enqueue(func, *args, job_id=job_id, retry=Retry(max=len(RETRY_INTERVALS),
                                                                                     interval=RETRY_INTERVALS),
                                           **kwargs)
        return job_id
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="job")
    _executor.submit(_in_process, func, args, kwargs)
    return job_id
