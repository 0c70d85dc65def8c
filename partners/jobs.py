"""RQ entry points of the "uploads" queue: take ids, call a service."""
from __future__ import annotations

from partners import services


def process_upload(upload_id: int) -> None:
    services.partner_upload_process(upload_id=upload_id)


def reprocess_upload(upload_id: int) -> None:
    services.partner_upload_retry_failures(upload_id=upload_id)
