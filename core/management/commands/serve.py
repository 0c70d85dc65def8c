"""``make run``: migrate, load demo data, then serve console + API with gunicorn (and an RQ worker with Redis).

This process owns the embedded PostgreSQL when no DATABASE_URL is set: gunicorn and the worker inherit its socket
through the environment, and the server stops when this command exits.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.utils.translation import gettext_lazy as _

from core.commands import BaseCommand


class Command(BaseCommand):
    help = _("Migrate, create demo data and serve the console + API (gunicorn) and, with REDIS_URL, an RQ worker.")  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("COUPON_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
        parser.add_argument("--threads", type=int, default=4)
        parser.add_argument("--no-demo", action="store_true", help=_("Skip demo_data."))

    def handle(self, *args, **opts):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not opts["no_demo"]:
            call_command("demo_data")
        base = f"http://{opts['bind']}"
        database = "external PostgreSQL (DATABASE_URL)" if os.environ.get("DATABASE_URL") else \
            f"embedded PostgreSQL 18 in {settings.VAR_DIR / 'pgdata'}"
        jobs = "RQ workers on Redis (REDIS_URL)" if settings.USE_REDIS else "in-process (no REDIS_URL)"
        self.stdout.write(self.style.SUCCESS(
            f"\nConsole:  {base}/admin/   (users and password above; var/demo_credentials.json keeps them)\n"
            f"API docs: {base}/api/docs/\nHealth:   {base}/health/\nDatabase: {database}\nJobs:     {jobs}\n"
            "Press Ctrl-C to stop.\n"))
        sys.stdout.flush()
        procs = [subprocess.Popen([
            sys.executable, "-m", "gunicorn", "coupon_project.wsgi", "--bind", opts["bind"],
            "--workers", str(opts["workers"]), "--threads", str(opts["threads"]), "--access-logfile", "-",
            "--graceful-timeout", "20"])]
        if settings.USE_REDIS:
            procs.append(subprocess.Popen([sys.executable, "manage.py", "rqworker", *settings.JOB_QUEUES,
                                           "--with-scheduler"], cwd=str(settings.BASE_DIR)))
        stopping = False

        def stop(signum, frame):  # forward Ctrl-C / SIGTERM to the children, then wait for them
            nonlocal stopping
            stopping = True
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        stop(None, None)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        # The embedded PostgreSQL (if any) is stopped by its atexit handler as this process exits.
