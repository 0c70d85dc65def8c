"""RQ entry point for grants (queue ``grants``): takes an id, calls the service."""
from __future__ import annotations

from coupons.issuing import grant_process


def run_grant(grant_id: int) -> None:
    grant_process(grant_id=grant_id)
