"""Start the self-rescheduling periodic jobs on RQ (run once after a deploy; idempotent)."""
from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand
import django_rq
from coupons.jobs import NEXT_EXPIRY_JOB_ID, expire_job
from ops.sweep import NEXT_SWEEP_JOB_ID, sweep_job


class Command(BaseCommand):
    help = _("Enqueue the periodic jobs: expiry and lock release on the 'expiry' queue, the stuck-work sweep on "  # type: ignore[assignment]
             "'default' (needs REDIS_URL and a worker started with --with-scheduler).")

    def handle(self, *args, **opts):
        if not settings.USE_REDIS:
            raise CommandError("REDIS_URL is not set: use the cron lines in the README instead.")



        queue = django_rq.get_queue("expiry")
        queue.enqueue(expire_job, job_id=NEXT_EXPIRY_JOB_ID)
        django_rq.get_queue("default").enqueue(sweep_job, job_id=NEXT_SWEEP_JOB_ID)
        self.stdout.write(f"schedule_jobs: expiry runs now and then every "
                          f"{settings.COUPON_EXPIRY_INTERVAL_SECONDS} s; the stuck-work sweep every "
                          f"{settings.COUPON_SWEEP_INTERVAL_SECONDS} s.")
