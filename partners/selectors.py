"""Reads of partner uploads used by the API and the console."""
from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from core.models import Tenant
from partners.models import CouponMapping, Partner, PartnerUpload, PartnerUploadFailure


def upload_by_public_id(*, tenant: Tenant, public_id: str) -> PartnerUpload | None:
    return PartnerUpload.objects.filter(tenant=tenant, public_id=public_id.strip().upper()).first()


def upload_failures(*, upload: PartnerUpload, reason: str | None = None) -> QuerySet[PartnerUploadFailure]:
    """The rows of an upload that failed, in file order; only those of ``reason`` if given."""
    qs = PartnerUploadFailure.objects.filter(tenant_id=upload.tenant_id, upload=upload).order_by("line").only("line", "value", "reason",
                                                                                 "message")
    return qs if reason is None else qs.filter(reason=reason)


def _upload_total(field: str) -> Coalesce:
    sums = (PartnerUpload.objects.filter(partner=OuterRef("pk")).order_by().values("partner")
            .annotate(total=Sum(field)).values("total"))
    return Coalesce(Subquery(sums, output_field=IntegerField()), Value(0))


def partners_with_totals(partners: QuerySet[Partner]) -> QuerySet[Partner]:
    """The partner list's summary per partner: uploads, rows, mapped, failed, and mapped codes members have claimed
    (``uploads_n``, ``rows_n``, ``mapped_n``, ``failed_n``, ``claimed_n``; R-PART)."""
    uploads = (PartnerUpload.objects.filter(partner=OuterRef("pk")).order_by().values("partner")
               .annotate(n=Count("pk")).values("n"))
    claimed = (CouponMapping.objects.filter(partner=OuterRef("pk")).exclude(coupon__status="MAPPED").order_by()
               .values("partner").annotate(n=Count("pk")).values("n"))
    return partners.annotate(
        uploads_n=Coalesce(Subquery(uploads, output_field=IntegerField()), Value(0)),
        rows_n=_upload_total("rows"), mapped_n=_upload_total("mapped"), failed_n=_upload_total("failed"),
        claimed_n=Coalesce(Subquery(claimed, output_field=IntegerField()), Value(0)))
