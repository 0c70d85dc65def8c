"""Generate a batch's codes: ``manage.py generate_codes BATCH_CODE [--tenant SLUG] [--sync]`` (R-CODE-5).

Without ``--sync`` the job is queued on ``generation`` (like the console's Generate button) and the command follows
the batch's progress; with ``--sync`` it runs here. Either way a re-run resumes an interrupted batch.
"""
from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _
from tqdm import tqdm

from core.commands import BaseCommand
from core.audit import Actor
from core.exceptions import DomainError
from coupons.services.generation import batch_generate, batch_generation_progress, batch_start_generation, generation_plan
from coupons.models import CouponBatch


class Command(BaseCommand):
    help = _("Generate (or resume generating) the codes of a batch, with a progress bar.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("batch_code")
        parser.add_argument("--tenant", help=_("Tenant slug (needed when several tenants use the batch code)."))
        parser.add_argument("--sync", action="store_true", help=_("Run here instead of queueing a job."))
        parser.add_argument("--no-progress", action="store_true", help=_("No progress bar (logs, CI)."))

    def handle(self, *args: Any, **opts: Any) -> None:
        batches = CouponBatch.objects.select_related("tenant").filter(batch_code=opts["batch_code"])
        if opts["tenant"]:
            batches = batches.filter(tenant__slug=opts["tenant"])
        found = list(batches[:2])
        if not found:
            raise CommandError(f"No batch {opts['batch_code']!r}" + (f" in tenant {opts['tenant']!r}."
                                                                    if opts["tenant"] else "."))
        if len(found) > 1:
            raise CommandError(f"Batch code {opts['batch_code']!r} exists in several tenants; pass --tenant.")
        batch = found[0]
        actor = Actor.system("manage.py generate_codes")
        bar = tqdm(total=batch.quantity, initial=batch.generated_count, unit="code", unit_scale=True,
                   desc=batch.batch_code, disable=opts["no_progress"], smoothing=0.1, dynamic_ncols=True)
        try:
            if opts["sync"]:
                generation_plan(batch)  # refuses an impossible request before anything is written
                batch = batch_generate(batch_id=batch.pk, actor=actor, progress=bar.update)
            else:
                batch_start_generation(batch=batch, actor=actor)
                batch = self._follow(batch, bar)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        finally:
            bar.close()
        progress = batch_generation_progress(batch)
        self.stdout.write(f"{batch.batch_code}: {progress['status']}, {progress['generated_count']:,} of "
                          f"{progress['quantity']:,} codes in {progress['chunks']} chunks")
        if batch.status != CouponBatch.Status.COMPLETED:
            raise CommandError(progress["last_error"] or "generation did not complete")

    def _follow(self, batch: CouponBatch, bar: tqdm) -> CouponBatch:
        seen, started, warned = batch.generated_count, time.monotonic(), False
        while True:
            time.sleep(1)
            batch.refresh_from_db()
            bar.update(batch.generated_count - seen)
            seen = batch.generated_count
            if batch.status in (CouponBatch.Status.COMPLETED, CouponBatch.Status.FAILED):
                return batch
            if not warned and batch.status == CouponBatch.Status.PENDING and time.monotonic() - started > 30:
                warned = True
                bar.write("The job is still queued: is a worker running (`manage.py rqworker generation`)? "
                          "Ctrl-C leaves it queued; --sync runs it here.")
