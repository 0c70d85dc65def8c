"""Cron (daily): birthday rewards for members whose birthday is today in their tenant's time zone (R-REW-1).

The year is the grant's reference, so a member gets one birthday reward a year however often this runs."""
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from rewards.services import birthday_rewards_grant


class Command(BaseCommand):
    help = "Grant the active birthday rule to today's birthday members; once a year each; a concurrent run exits."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count who would get a reward; change nothing.")
        parser.add_argument("--date", help="Treat this day (YYYY-MM-DD) as today in every tenant (catch-up runs).")

    def handle(self, *args, **opts):
        on_date = None
        if opts["date"]:
            try:
                on_date = date.fromisoformat(opts["date"])
            except ValueError as exc:
                raise CommandError(f"--date must be YYYY-MM-DD, got {opts['date']!r}") from exc
        run = birthday_rewards_grant(on_date=on_date, dry_run=opts["dry_run"])
        if run is None:
            self.stdout.write("grant_birthday_rewards: another run holds the lock; nothing done.")
            return
        verb = "would be granted (dry run, nothing changed)" if opts["dry_run"] else "granted"
        self.stdout.write(f"grant_birthday_rewards: {run.tenants} tenant(s), {run.due} birthday(s): {run.granted} "
                          f"{verb}, {run.already} already granted this year, {run.failed} failed.")
