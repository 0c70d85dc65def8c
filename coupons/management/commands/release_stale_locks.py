"""Cron: coupons LOCKED to an order for longer than COUPON_LOCK_TTL_SECONDS go back to ISSUED."""
from django.core.management.base import BaseCommand

from coupons.lifecycle import locks_release_stale


class Command(BaseCommand):
    help = "Release coupons locked to orders that never paid (older than COUPON_LOCK_TTL_SECONDS)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be released; change nothing.")
        parser.add_argument("--ttl", type=int, default=None, help="Override the TTL in seconds.")

    def handle(self, *args, **opts):
        if opts["ttl"] is not None and opts["ttl"] < 0:
            from django.core.management.base import CommandError

            raise CommandError("--ttl must be 0 or more seconds.")
        count = locks_release_stale(dry_run=opts["dry_run"], ttl_seconds=opts["ttl"])
        if count is None:
            self.stdout.write("release_stale_locks: another run holds the lock; nothing done.")
        elif opts["dry_run"]:
            self.stdout.write(f"release_stale_locks: {count} lock(s) would be released (dry run).")
        else:
            self.stdout.write(f"release_stale_locks: {count} lock(s) released.")
