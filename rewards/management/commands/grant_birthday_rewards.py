"""Cron (daily): birthday rewards for members whose birthday is today in their tenant's time zone (R-REW-1, R-OPS-2).

The year is the grant's reference, so a member gets one birthday reward a year however often this runs. Last line:
``grant_birthday_rewards: tenants=N due=N granted=N already=N failed=N seconds=S``."""
from datetime import date

from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _

from core.cron import AlreadyRunning, CronCommand
from rewards.services import birthday_rewards_grant


class Command(CronCommand):
    name = "grant_birthday_rewards"
    help = _("Grant the active birthday rule to today's birthday members; once a year each; a concurrent run exits.")  # type: ignore[assignment]
    dry_run_help = _("Count who would get a reward; change nothing.")

    def add_command_arguments(self, parser):
        parser.add_argument("--date", help=_("Treat this day (YYYY-MM-DD) as today in every tenant (catch-up runs)."))

    def check_options(self, **options):
        if options["date"]:
            try:
                date.fromisoformat(options["date"])
            except ValueError as exc:
                raise CommandError(f"--date must be YYYY-MM-DD, got {options['date']!r}") from exc

    def run(self, *, dry_run, progress, **options):
        on_date = date.fromisoformat(options["date"]) if options["date"] else None
        progress.set_description("grant_birthday_rewards")
        run = birthday_rewards_grant(on_date=on_date, dry_run=dry_run)
        if run is None:
            raise AlreadyRunning
        progress.update(run.due)
        return {"tenants": run.tenants, "due": run.due, "granted": run.granted, "already": run.already,
                "failed": run.failed}
