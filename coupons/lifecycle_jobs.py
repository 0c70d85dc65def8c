"""RQ entry points for the lifecycle's periodic work (queue ``expiry``).

Each run re-schedules itself under a fixed job id (so there is only ever one next run) when RQ is in use; cron
running the management commands is the alternative and both may run together safely (advisory locks).
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings

from coupons.lifecycle import coupons_expire, locks_release_stale

NEXT_EXPIRY_JOB_ID = "coupons-expire-next"


def expire_job(reschedule: bool = True) -> int | None:
    expired = coupons_expire()
    locks_release_stale()
    if reschedule and settings.USE_REDIS:
        import django_rq

        queue = django_rq.get_queue("expiry")
        queue.enqueue_in(timedelta(seconds=settings.COUPON_EXPIRY_INTERVAL_SECONDS), expire_job,
                         job_id=NEXT_EXPIRY_JOB_ID)
    return expired
