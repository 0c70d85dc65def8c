"""Enqueueing background work (R-OPS-1): RQ with ``REDIS_URL``, an in-process pool without, inline when sync.

Jobs take ids, never model instances; only transient failures are retried.
Design: docs/design/jobs-and-operations.md#core-jobs.
"""
from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django_rq
import redis.exceptions
from django.conf import settings
from django.db import close_old_connections
from django.db.utils import InterfaceError, OperationalError
from django.utils.module_loading import import_string
from rq import Callback, Retry
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from core.exceptions import DomainError
from core.metrics import record_job

logger = logging.getLogger("coupons.jobs")

_executor: ThreadPoolExecutor | None = None

# Default pauses between attempts of a transiently failing job (seconds); settings.JOB_RETRY_INTERVALS overrides.
RETRY_INTERVALS = [10, 60, 300]


class TransientError(Exception):
    """Raise (or chain) this from a job to ask for a retry of a failure the code knows to be temporary."""


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [TransientError, OperationalError, InterfaceError, ConnectionError,
                                         TimeoutError, socket.timeout]
    types += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError]
    # AbandonedJobError: the worker running the job died (SIGKILL, OOM, a lost host). The jobs resume from their
    # last committed chunk, so running it again is exactly right (issue #18).
    types += [JobTimeoutException, AbandonedJobError]
    return tuple(types)


def is_transient(exc: BaseException) -> bool:
    """True when retrying might succeed. A DomainError is transient only when it says so (``transient``: a dependency
    not answering), even when it wraps a connection error."""
    if isinstance(exc, DomainError):
        return exc.transient
    transient = _transient_types()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, transient):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def retry_intervals() -> list[int]:
    return list(getattr(settings, "JOB_RETRY_INTERVALS", RETRY_INTERVALS))


def on_job_failure(job: Any, connection: Any, exc_type: type, exc_value: BaseException, tb: Any) -> None:
    """RQ failure callback, run by the worker before it decides on a retry: a permanent failure spends every retry
    left, so the job goes straight to the failed registry (R-OPS-1)."""
    transient = is_transient(exc_value)
    job.meta["failure"] = "transient" if transient else "permanent"
    job.meta["failure_error"] = f"{exc_type.__name__}: {exc_value}"[:500]
    if not transient:
        job.retries_left = 0
    try:
        job.save_meta()
    except Exception:  # Redis trouble: the worker is about to report it anyway
        logger.warning("could not save the failure meta of job %s", job.id, exc_info=True)


def _timed(queue: str, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    """One attempt, timed for /metrics like an RQ worker's (core.worker): same metric, labels and outcome."""
    started = time.perf_counter()
    ok = False
    try:
        func(*args, **kwargs)
        ok = True
    finally:
        record_job(queue=queue, function=f"{func.__module__}.{func.__qualname__}", ok=ok,
                   seconds=time.perf_counter() - started)


def _in_process(queue: str, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    intervals = retry_intervals()
    attempt = 0
    while True:
        close_old_connections()
        try:
            _timed(queue, func, args, kwargs)
            return
        except Exception as exc:
            if attempt < len(intervals) and is_transient(exc):
                logger.warning("in-process job %s failed transiently; retry in %s s",
                               getattr(func, "__name__", func), intervals[attempt], exc_info=True)
                time.sleep(intervals[attempt])
                attempt += 1
                continue
            logger.exception("in-process job %s failed", getattr(func, "__name__", func))
            return
        finally:
            close_old_connections()


def rq_enqueue(rq_queue: Any, func: Callable[..., Any], *args: Any, job_id: str, tenant_id: int | None = None,
               **kwargs: Any) -> Any:
    """Put a job on an RQ queue with the project's failure callback and retries (``enqueue`` without Redis settings:
    the fault tests use it on their own Redis)."""
    intervals = retry_intervals()
    meta = {"tenant_id": int(tenant_id)} if tenant_id is not None else {}
    return rq_queue.enqueue(func, *args, job_id=job_id, meta=meta, on_failure=Callback(on_job_failure),
                            retry=Retry(max=len(intervals), interval=intervals) if intervals else None, **kwargs)


def enqueue(queue: str, func: Callable[..., Any] | str, *args: Any, job_id: str | None = None,
            tenant_id: int | None = None, **kwargs: Any) -> str:
    """``func``: the job, or its dotted path — a service queues its app's job by path, so services never import
    jobs (the jobs import the services)."""
    if queue not in settings.JOB_QUEUES:
        raise ValueError(f"unknown queue {queue!r}; known: {settings.JOB_QUEUES}")
    job_id = job_id or uuid.uuid4().hex
    job: Callable[..., Any] = import_string(func) if isinstance(func, str) else func
    if getattr(settings, "JOBS_SYNC", False):
        job(*args, **kwargs)
        return job_id
    if settings.USE_REDIS:
        rq_enqueue(django_rq.get_queue(queue), job, *args, job_id=job_id, tenant_id=tenant_id, **kwargs)
        return job_id
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="job")
    _executor.submit(_in_process, queue, job, args, kwargs)
    return job_id
