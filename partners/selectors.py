"""Reads of partner uploads used by the API and the console."""
from __future__ import annotations

from django.db.models import QuerySet

from core.models import Tenant
from partners.models import PartnerUpload, PartnerUploadFailure


def upload_by_public_id(*, tenant: Tenant, public_id: str) -> PartnerUpload | None:
    return PartnerUpload.objects.filter(tenant=tenant, public_id=public_id.strip().upper()).first()


def upload_failures(*, upload: PartnerUpload, reason: str | None = None) -> QuerySet[PartnerUploadFailure]:
    """The rows of an upload that failed, in file order; only those of ``reason`` if given."""
    qs = PartnerUploadFailure.objects.filter(upload=upload).order_by("line").only("line", "value", "reason",
                                                                                 "message")
    return qs if reason is None else qs.filter(reason=reason)
