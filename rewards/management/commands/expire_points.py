"""Cron: debit every points credit past its expiry (R-REW-3, R-OPS-2). Safe to run twice or concurrently."""
from django.core.management.base import BaseCommand

from rewards.services import points_expire


class Command(BaseCommand):
    help = "Write one expiry debit for the unspent part of each expired points credit; a concurrent run exits."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would expire; change nothing.")

    def handle(self, *args, **opts):
        result = points_expire(dry_run=opts["dry_run"])
        if result is None:
            self.stdout.write("expire_points: another run holds the lock; nothing done.")
        elif opts["dry_run"]:
            self.stdout.write(f"expire_points: {result.credits} credit(s), {result.points} point(s) would expire "
                              "(dry run, nothing changed).")
        else:
            self.stdout.write(f"expire_points: {result.credits} credit(s) expired, {result.points} point(s) removed.")
