"""The frame every cron command shares (R-OPS-2): one run at a time, ``--dry-run``, a progress bar, a summary line.

Design: docs/design/jobs-and-operations.md#core-cron.
"""
from __future__ import annotations

import abc
import sys
import time
from contextlib import AbstractContextManager
from typing import Any

from django.utils.translation import gettext_lazy as _
from tqdm import tqdm

from core.commands import BaseCommand
from core.locks import lock_key, session_lock

LOCK_NAMESPACE = "cron:"


def cron_lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a command name."""
    return lock_key(f"{LOCK_NAMESPACE}{name}")


def cron_lock(name: str, *, wait: bool = False) -> AbstractContextManager[bool]:
    """Hold the command's session advisory lock for the block; yields False (without waiting) if another run holds
    it, unless ``wait``."""
    return session_lock(cron_lock_key(name), wait=wait)


class AlreadyRunning(Exception):
    """Raised by ``run`` when the service reports that its own lock is held (e.g. by the RQ periodic job)."""


class CronCommand(BaseCommand, metaclass=abc.ABCMeta):
    """Subclasses set ``name`` and implement ``run(dry_run=…, progress=…, **options) -> dict`` returning the summary
    counts in display order; they may add arguments in ``add_command_arguments``."""

    name = ""
    dry_run_help = _("Report what would be done; change nothing.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help=self.dry_run_help)
        parser.add_argument("--no-progress", action="store_true", help=_("No progress bar, even on a terminal."))
        parser.add_argument("--wait", action="store_true",
                            help=_("Wait for a concurrent run to finish instead of exiting at once."))
        self.add_command_arguments(parser)

    def add_command_arguments(self, parser: Any) -> None:
        pass

    def check_options(self, **options: Any) -> None:
        """Raise CommandError for bad arguments, before anything is locked or changed."""

    @abc.abstractmethod
    def run(self, *, dry_run: bool, progress: tqdm, **options: Any) -> dict[str, Any]:
        """Do the work (or, with ``dry_run``, only count it) and return the summary counts."""

    def progress_bar(self, options: dict[str, Any]) -> tqdm:
        # disable=None: tqdm turns itself off when stderr is not a terminal (cron, CI, call_command in tests).
        return tqdm(desc=self.name, unit="row", unit_scale=True, file=sys.stderr, dynamic_ncols=True,
                    disable=True if options.get("no_progress") else None)

    def handle(self, *args: Any, **options: Any) -> None:
        self.check_options(**options)
        dry_run = bool(options.get("dry_run"))
        started = time.monotonic()
        with cron_lock(self.name, wait=bool(options.get("wait"))) as got:
            if not got:
                self.stdout.write(f"{self.name}: already running (another run holds the lock); nothing done.")
                return
            bar = self.progress_bar(options)
            try:
                counts = self.run(progress=bar, **{**options, "dry_run": dry_run})
            except AlreadyRunning:
                self.stdout.write(f"{self.name}: already running (another run holds the lock); nothing done.")
                return
            finally:
                bar.close()
        self.stdout.write(self.summary(counts, dry_run=dry_run, seconds=time.monotonic() - started))

    def summary(self, counts: dict[str, Any], *, dry_run: bool, seconds: float) -> str:
        parts = [f"{key}={value}" for key, value in counts.items()]
        if dry_run:
            parts.append("dry_run=yes")
        parts.append(f"seconds={seconds:.1f}")
        return f"{self.name}: " + " ".join(parts)
