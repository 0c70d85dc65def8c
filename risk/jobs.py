"""RQ entry points of the risk app: they take ids and call one service (STYLE.md)."""
from __future__ import annotations

import time

from django.conf import settings

from core.jobs import TransientError
from risk.webhooks import webhook_deliver


class WebhookNotDelivered(TransientError):
    """Every attempt of this run failed: transient, so RQ retries the job later too (core.jobs.RETRY_INTERVALS)."""


def deliver_webhook_job(delivery_id: int) -> None:
    """Queue ``default``: attempts with growing pauses in the job itself — a receiver that is down for a moment gets
    the delivery within seconds (issue #18) — ``COUPON_WEBHOOK_JOB_ATTEMPTS`` of them, waiting
    ``COUPON_WEBHOOK_JOB_BACKOFF_SECONDS`` × 2ⁿ between them. Still not delivered: the job fails as transient, so RQ
    retries it, and ``deliver_webhooks`` (cron) keeps trying until the delivery's ``MAX_ATTEMPTS``."""
    attempts = max(1, settings.COUPON_WEBHOOK_JOB_ATTEMPTS)
    pause = settings.COUPON_WEBHOOK_JOB_BACKOFF_SECONDS
    for attempt in range(attempts):
        status = webhook_deliver(delivery_id=delivery_id)
        if status != "PENDING":
            return  # delivered, given up (FAILED), or being sent by another worker right now (LOCKED)
        if attempt + 1 < attempts:
            time.sleep(pause * 2 ** attempt)
    raise WebhookNotDelivered(f"webhook delivery {delivery_id} not delivered after {attempts} attempts; will retry")

