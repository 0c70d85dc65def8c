"""RQ entry point for grants (queue ``grants``): takes an id, calls the service.

The run holds the grant's work lock (a PostgreSQL session lock) for its whole length: two runs of one grant (an
abandoned job retried, the sweeper's re-queue) never issue side by side, and ``ops.sweep`` knows a RUNNING grant whose
lock nobody holds is stuck (issue #18)."""
from __future__ import annotations

import logging

from core.locks import session_lock
from coupons.issuing import grant_process

logger = logging.getLogger("coupons.jobs")


def grant_work_key(grant_id: int) -> str:
    return f"grant:{grant_id}"


def run_grant(grant_id: int) -> None:
    with session_lock(grant_work_key(grant_id)) as got:
        if not got:
            logger.info("grant %s is being processed by another worker; nothing to do", grant_id)
            return
        grant_process(grant_id=grant_id)
