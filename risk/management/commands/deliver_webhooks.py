"""Cron: one attempt at every pending webhook delivery whose next attempt is due (R-RISK-3, R-OPS-2).

Last line: ``deliver_webhooks: due=N delivered=N pending=N failed=N skipped=N seconds=S``."""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext, gettext_lazy as _

from core.cron import CronCommand
from risk.webhooks import deliver_due


class Command(CronCommand):
    name = "deliver_webhooks"
    help = _("Deliver pending webhook deliveries whose next attempt is due (one attempt each, oldest first).")  # type: ignore[assignment]
    dry_run_help = _("Count the deliveries due; send nothing.")

    def add_command_arguments(self, parser: Any) -> None:
        parser.add_argument("--limit", type=int, default=500, help=_("At most this many deliveries per run (1–10000)."))

    def check_options(self, **options: Any) -> None:
        if not 1 <= options["limit"] <= 10_000:
            raise CommandError(gettext("--limit must be between 1 and 10000; got %(value)s.") % {"value": options["limit"]})

    def run(self, *, dry_run: bool, progress: Any, limit: int = 500, **options: Any) -> dict[str, Any]:
        outcome = deliver_due(limit=limit, dry_run=dry_run)
        progress.update(outcome["due"])
        return outcome
