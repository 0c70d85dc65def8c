"""Cron: coupons LOCKED to an order for longer than COUPON_LOCK_TTL_SECONDS go back to ISSUED (R-LIFE, R-OPS-2).

``release_stale_locks [--ttl SECONDS] [--dry-run] [--no-progress] [--wait]`` — last line:
``release_stale_locks: released=N ttl=S seconds=S``.
"""
from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _

from coupons.services.lifecycle import locks_release_stale
from core.cron import AlreadyRunning, CronCommand


class Command(CronCommand):
    name = "release_stale_locks"
    help = _("Release coupons locked to orders that never paid (older than COUPON_LOCK_TTL_SECONDS).")
    dry_run_help = _("Count what would be released; change nothing.")

    def add_command_arguments(self, parser):
        parser.add_argument("--ttl", type=int, default=None, help=_("Override the TTL in seconds."))

    def check_options(self, **options):
        if options["ttl"] is not None and options["ttl"] < 0:
            raise CommandError("--ttl must be 0 or more seconds.")

    def run(self, *, dry_run, progress, **options):
        ttl = options["ttl"] if options["ttl"] is not None else settings.COUPON_LOCK_TTL_SECONDS
        progress.set_description("release_stale_locks: locks released")
        count = locks_release_stale(dry_run=dry_run, ttl_seconds=ttl, progress=progress.update)
        if count is None:
            raise AlreadyRunning
        return {"released": count, "ttl": ttl}
