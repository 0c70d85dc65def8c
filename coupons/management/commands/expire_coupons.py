"""Cron: mark every coupon past its validity EXPIRED (R-LIFE-3, R-OPS-2). Safe to run twice or concurrently.

``expire_coupons [--dry-run] [--no-progress] [--wait]`` — last line: ``expire_coupons: expired=N seconds=S``.
"""
from django.utils.translation import gettext_lazy as _

from coupons.services.lifecycle import coupons_expire
from core.cron import AlreadyRunning, CronCommand


class Command(CronCommand):
    name = "expire_coupons"
    help = _("Expire coupons past their validity, in chunks; a concurrent run exits at once (advisory lock).")
    dry_run_help = _("Count what would expire; change nothing.")

    def run(self, *, dry_run, progress, **options):
        progress.set_description("expire_coupons: codes expired")
        count = coupons_expire(dry_run=dry_run, progress=progress.update)
        if count is None:  # the RQ periodic expiry job holds the service's lock
            raise AlreadyRunning
        return {"expired": count}
