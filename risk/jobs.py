"""RQ entry points of the risk app: they take ids and call one service (STYLE.md)."""
from __future__ import annotations

from risk.webhooks import webhook_deliver


class WebhookNotDelivered(Exception):
    """Raised so RQ retries the job with backoff (core.jobs.RETRY_INTERVALS)."""


def deliver_webhook_job(delivery_id: int) -> None:
    """Queue ``default``: one attempt; a failed attempt fails the job, so RQ retries it."""
    status = webhook_deliver(delivery_id=delivery_id)
    if status == "PENDING":
        raise WebhookNotDelivered(f"webhook delivery {delivery_id} not delivered yet; will retry")
