"""Cron: debit every points credit past its expiry (R-REW-3, R-OPS-2). Safe to run twice or concurrently.

Last line: ``expire_points: credits=N points=N seconds=S``."""
from django.utils.translation import gettext_lazy as _

from core.cron import AlreadyRunning, CronCommand
from rewards.services import points_expire


class Command(CronCommand):
    name = "expire_points"
    help = _("Write one expiry debit for the unspent part of each expired points credit; a concurrent run exits.")  # type: ignore[assignment]
    dry_run_help = _("Count what would expire; change nothing.")

    def run(self, *, dry_run, progress, **options):
        progress.set_description("expire_points")
        result = points_expire(dry_run=dry_run)
        if result is None:
            raise AlreadyRunning
        progress.update(result.credits)
        return {"credits": result.credits, "points": result.points}
