"""Cron: compare the pool counters and the Bloom filter with the rows they stand for (R-OPS-2).

Design: docs/design/jobs-and-operations.md#ops-management-commands-reconcile.
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.audit import Actor
from coupons.models import CouponInventory
from core.cron import CronCommand
from ops.reconcile import bloom_check, counters_check, counters_fix
from coupons.bloom import bloom_rebuild


class Command(CronCommand):
    name = "reconcile"
    help = _("Compare inventory counters with issue/usage rows and the Bloom filter with the code table; --fix "  # type: ignore[assignment]
             "repairs them.")
    dry_run_help = _("With --fix: report what would be fixed; change nothing.")

    def add_command_arguments(self, parser: Any) -> None:
        parser.add_argument("--fix", action="store_true", help=_("Repair counters and rebuild a Bloom filter that "
                                                                 "misses codes."))
        parser.add_argument("--inventory", type=int, default=None, help=_("Only this inventory id."))
        parser.add_argument("--bloom", choices=["sample", "full", "skip"], default="sample",
                            help=_("Check a sample of codes (default), every code, or skip the Bloom filter."))
        parser.add_argument("--bloom-sample", type=int, default=2000, help=_("Codes in the sample (default 2000)."))

    def check_options(self, **options: Any) -> None:
        if options["inventory"] is not None and not CouponInventory.objects.filter(pk=options["inventory"]).exists():
            raise CommandError(gettext("--inventory %(id)s: no such inventory.") % {"id": options["inventory"]})
        if options["bloom_sample"] < 1:
            raise CommandError(gettext("--bloom-sample must be at least 1."))

    def handle(self, *args: Any, **options: Any) -> None:
        self._remaining = 0
        super().handle(*args, **options)
        if self._remaining and not options["dry_run"]:
            raise CommandError(ngettext("reconcile: %(count)d mismatch remains; run with --fix to repair.",
                                        "reconcile: %(count)d mismatches remain; run with --fix to repair.",
                                        self._remaining) % {"count": self._remaining})

    def run(self, *, dry_run: bool, progress: Any, **options: Any) -> dict[str, Any]:
        fix = options["fix"] and not dry_run
        actor = Actor.job("reconcile")
        inventories = mismatches = fixed = 0
        progress.set_description("reconcile: inventories")
        for inventory_id, mismatch in counters_check(inventory_id=options["inventory"], progress=progress.update):
            inventories += 1
            if mismatch is None:
                continue
            mismatches += 1
            if fix:
                repaired = counters_fix(inventory_id=inventory_id, actor=actor)
                if repaired is not None:
                    fixed += 1
                    self.stdout.write(f"fixed {repaired.describe()}")
                    continue
                self.stdout.write(f"inventory {inventory_id}: matched on re-check (a write was in flight)")
                mismatches -= 1
                continue
            self.stdout.write(("would fix " if options["fix"] else "mismatch ") + mismatch.describe())
        counts: dict[str, Any] = {"inventories": inventories, "counter_mismatches": mismatches, "fixed": fixed}
        remaining = mismatches - fixed

        mode = options["bloom"]
        if mode != "skip":
            progress.reset(total=None)
            progress.set_description("reconcile: Bloom filter codes")
            report = bloom_check(full=mode == "full", sample=options["bloom_sample"], progress=progress.update)
            counts.update({"bloom": mode, "bloom_checked": report.checked, "bloom_missing": report.missing})
            if not report.exists:
                self.stdout.write("bloom: there is no filter yet; the next code writer builds it from the table")
            elif report.missing:
                examples = f" e.g. {', '.join(report.examples)}" if report.examples else ""
                self.stdout.write(f"bloom: {report.missing} of {report.checked} checked codes missing from the "
                                  f"filter{examples}" + (" (would rebuild)" if options["fix"] and dry_run else ""))
            if fix and report.missing:
                result = bloom_rebuild()
                counts["bloom_rebuilt"] = result["codes"]
                self.stdout.write(f"bloom: rebuilt from {result['codes']} codes")
            elif report.missing:
                remaining += 1
        self._remaining = remaining
        return counts
