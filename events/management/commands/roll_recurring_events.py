"""Cron: create the next occurrence of every ended repeatable event (R-EVT-1). Safe to run twice or concurrently."""
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand
from events.services import events_roll_recurring


class Command(BaseCommand):
    help = _("Create the next occurrence of ended repeatable events, exactly once each (advisory lock).")  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help=_("Count what would be created; change nothing."))

    def handle(self, *args, **opts):
        count = events_roll_recurring(dry_run=opts["dry_run"])
        if count is None:
            self.stdout.write("roll_recurring_events: another run holds the lock; nothing done.")
        elif opts["dry_run"]:
            self.stdout.write(f"roll_recurring_events: {count} occurrence(s) would be created (dry run).")
        else:
            self.stdout.write(f"roll_recurring_events: {count} occurrence(s) created.")
