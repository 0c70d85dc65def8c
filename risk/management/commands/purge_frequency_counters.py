"""Cron: delete the PostgreSQL fallback's frequency counters of past days (R-RISK-1, R-OPS-2); Redis keys expire by
themselves. Last line: ``purge_frequency_counters: deleted=N seconds=S``."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from core.cron import CronCommand
from risk.limits import purge_counters
from risk.models import FrequencyCounter


class Command(CronCommand):
    name = "purge_frequency_counters"
    help = _("Delete frequency counter rows older than --keep-days days (default 2: every time zone's today is kept).")  # type: ignore[assignment]
    dry_run_help = _("Count the rows that would be deleted; delete nothing.")

    def add_command_arguments(self, parser: Any) -> None:
        parser.add_argument("--keep-days", type=int, default=2, help=_("Days of counters to keep (at least 2)."))

    def check_options(self, **options: Any) -> None:
        if options["keep_days"] < 2:
            raise CommandError(gettext("--keep-days must be at least 2 (time zones differ by up to a day); "
                                       "got %(value)s.") % {"value": options["keep_days"]})

    def run(self, *, dry_run: bool, progress: Any, keep_days: int = 2, **options: Any) -> dict[str, Any]:
        before = timezone.now().date() - timedelta(days=keep_days)
        if dry_run:
            return {"deleted": FrequencyCounter.objects.filter(day__lt=before).count()}
        deleted = purge_counters(before=before)
        progress.update(deleted)
        return {"deleted": deleted}
