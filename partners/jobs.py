"""RQ entry points of the "uploads" queue: take ids, call a service.

The failure messages a job stores are written in the tenant's language (issue #11)."""
from __future__ import annotations

from django.conf import settings
from django.utils import translation

from partners import services
from partners.models import PartnerUpload


def _language(upload_id: int) -> str:
    language = PartnerUpload.objects.filter(pk=upload_id).values_list("tenant__language", flat=True).first()
    return language or settings.LANGUAGE_CODE


def process_upload(upload_id: int) -> None:
    with translation.override(_language(upload_id)):
        services.partner_upload_process(upload_id=upload_id)


def reprocess_upload(upload_id: int) -> None:
    with translation.override(_language(upload_id)):
        services.partner_upload_retry_failures(upload_id=upload_id)
