"""Cron: commit scheduled draws' seeds and run the due ones (R-DRAW-1, R-OPS-2). Safe to run twice or concurrently.

Last line: ``run_due_draws: committed=N started=N resumed=N waiting=N grants=N seconds=S``; with ``--dry-run`` the
counts are what a run would do.
"""
from django.utils.translation import gettext_lazy as _

from draws.services import draws_run_due
from core.cron import AlreadyRunning, CronCommand


class Command(CronCommand):
    name = "run_due_draws"
    help = (_("Commit the seeds of scheduled draws (publishing their hashes), then run every draw whose draw_at has "  # type: ignore[assignment]
            "passed and whose event has ended; crashed runs are resumed. A concurrent run exits at once."))
    dry_run_help = _("Report what would happen; change nothing.")

    def run(self, *, dry_run, progress, **options):
        progress.set_description("run_due_draws")
        summary = draws_run_due(dry_run=dry_run)
        if summary is None:
            raise AlreadyRunning
        progress.update(summary.committed + summary.started + summary.resumed + summary.grants)
        return {"committed": summary.committed, "started": summary.started, "resumed": summary.resumed,
                "waiting": summary.waiting, "grants": summary.grants}
