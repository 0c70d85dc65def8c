"""Cron: write the time-driven webhook events now due — coupon.expiring, coupon.expired, points.expiring — once per
coupon or points credit and endpoint (issue #16). Safe to run twice and in parallel.

Last line: ``scan_webhook_events: endpoints=N coupon.expiring=N coupon.expired=N points.expiring=N seconds=S``."""
from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from core.cron import CronCommand
from ops.webhook_scans import webhook_events_scan


class Command(CronCommand):
    name = "scan_webhook_events"
    help = _("Write the webhook events now due: coupons and points expiring soon, coupons expired (once each).")  # type: ignore[assignment]
    dry_run_help = _("Count the endpoints that take these events; write nothing.")

    def run(self, *, dry_run: bool, progress: Any, **options: Any) -> dict[str, Any]:
        outcome = webhook_events_scan(dry_run=dry_run)
        progress.update(outcome["endpoints"])
        return outcome
