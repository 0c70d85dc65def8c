"""Start the self-rescheduling periodic jobs on RQ (run once after a deploy; idempotent)."""
from django.conf import settings
from django.core.management.base import CommandError
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand


class Command(BaseCommand):
    help = _("Enqueue the periodic expiry/lock-release job on the 'expiry' queue (needs REDIS_URL and a worker " \
           "started with --with-scheduler).")

    def handle(self, *args, **opts):
        if not settings.USE_REDIS:
            raise CommandError("REDIS_URL is not set: use the cron lines in the README instead.")
        import django_rq

        from coupons.lifecycle_jobs import NEXT_EXPIRY_JOB_ID, expire_job

        queue = django_rq.get_queue("expiry")
        queue.enqueue(expire_job, job_id=NEXT_EXPIRY_JOB_ID)
        self.stdout.write(f"schedule_jobs: expiry runs now and then every "
                          f"{settings.COUPON_EXPIRY_INTERVAL_SECONDS} s.")
