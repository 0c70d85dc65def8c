"""Cron: commit scheduled draws' seeds and run the due ones (R-DRAW-1). Safe to run twice or concurrently."""
from django.core.management.base import BaseCommand

from draws.services import draws_run_due


class Command(BaseCommand):
    help = ("Commit the seeds of scheduled draws (publishing their hashes), then run every draw whose draw_at has "
            "passed and whose event has ended; crashed runs are resumed. A concurrent run exits at once.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; change nothing.")

    def handle(self, *args, **opts):
        summary = draws_run_due(dry_run=opts["dry_run"])
        if summary is None:
            self.stdout.write("run_due_draws: another run holds the lock; nothing done.")
            return
        verb = "would be" if opts["dry_run"] else "were"
        self.stdout.write(f"run_due_draws: {summary.committed} seed(s) {verb} committed, {summary.started} draw(s) "
                          f"{verb} started, {summary.resumed} crashed draw(s) {verb} resumed, {summary.waiting} due "
                          f"draw(s) wait for their event to end, {summary.grants} draw(s) with prizes to grant "
                          f"{verb} handed over" + (" (dry run, nothing changed)." if opts["dry_run"] else "."))
