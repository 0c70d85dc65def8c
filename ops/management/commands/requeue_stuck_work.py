"""Cron: queue again the work a dead worker left RUNNING (R-OPS-1, R-OPS-2, issue #18; ops/sweep.py).

``requeue_stuck_work [--dry-run] [--no-progress] [--wait]`` — one line per piece of work queued again, then
``requeue_stuck_work: batches=N uploads=N grants=N abandoned_jobs=N seconds=S``.
"""
from django.utils.translation import gettext_lazy as _

from core.cron import AlreadyRunning, CronCommand
from ops.sweep import stuck_work_requeue


class Command(CronCommand):
    name = "requeue_stuck_work"
    help = _("Queue again generation batches, partner uploads and grants left RUNNING by a worker that died; they "  # type: ignore[assignment]
             "resume from their last committed chunk.")
    dry_run_help = _("List the stuck work; queue nothing.")

    def run(self, *, dry_run, progress, **options):
        result = stuck_work_requeue(dry_run=dry_run)
        if result is None:
            raise AlreadyRunning
        for item in result.items:
            self.stdout.write(f"{'stuck' if dry_run else 'queued again'}: {item}")
        return result.counts()
