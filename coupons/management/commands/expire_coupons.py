"""Cron: mark every coupon past its validity EXPIRED (R-LIFE-3, R-OPS-2). Safe to run twice or concurrently."""
from django.core.management.base import BaseCommand

from coupons.lifecycle import coupons_expire


class Command(BaseCommand):
    help = "Expire coupons past their validity, in chunks; a concurrent run exits at once (advisory lock)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would expire; change nothing.")

    def handle(self, *args, **opts):
        count = coupons_expire(dry_run=opts["dry_run"])
        if count is None:
            self.stdout.write("expire_coupons: another run holds the lock; nothing done.")
        elif opts["dry_run"]:
            self.stdout.write(f"expire_coupons: {count} coupon(s) would expire (dry run, nothing changed).")
        else:
            self.stdout.write(f"expire_coupons: {count} coupon(s) expired.")
