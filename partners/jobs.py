"""RQ entry points of the "uploads" queue: take ids, call a service.

Each run holds the upload's work lock (a PostgreSQL session lock, ``upload_work_key``) for its whole length: a second
run of the same upload (a retry of an abandoned job, the sweeper's re-queue, a re-upload of the same file) returns at
once, and ``ops.sweep`` knows an upload whose lock nobody holds is stuck (issue #18).

The failure messages a job stores are written in the tenant's language (issue #11)."""
from __future__ import annotations

import logging

from django.conf import settings
from django.utils import translation

from core.locks import session_lock
from partners import services
from partners.models import PartnerUpload

logger = logging.getLogger("coupons.jobs")


def _language(upload_id: int, tenant_id: int) -> str:
    language = PartnerUpload.objects.filter(tenant_id=tenant_id, pk=upload_id).values_list(
        "tenant__language", flat=True).first()
    return language or settings.LANGUAGE_CODE


def _tenant_of(upload_id: int, tenant_id: int | None) -> int:
    """The upload's tenant: passed by every job queued since issue #23; looked up (by id alone) for one queued
    before, so a deploy does not strand the jobs already waiting."""
    if tenant_id is not None:
        return tenant_id
    return PartnerUpload.objects.values_list("tenant_id", flat=True).get(pk=upload_id)


def process_upload(upload_id: int, tenant_id: int | None = None) -> None:
    with session_lock(services.upload_work_key(upload_id)) as got:
        if not got:
            logger.info("partner upload %s is being processed by another worker; nothing to do", upload_id)
            return
        tenant_id = _tenant_of(upload_id, tenant_id)
        with translation.override(_language(upload_id, tenant_id)):
            services.partner_upload_process(upload_id=upload_id, tenant_id=tenant_id)


def reprocess_upload(upload_id: int, tenant_id: int | None = None) -> None:
    with session_lock(services.upload_work_key(upload_id)) as got:
        if not got:
            logger.info("partner upload %s is being processed by another worker; nothing to do", upload_id)
            return
        tenant_id = _tenant_of(upload_id, tenant_id)
        with translation.override(_language(upload_id, tenant_id)):
            services.partner_upload_retry_failures(upload_id=upload_id, tenant_id=tenant_id)
