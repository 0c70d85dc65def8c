"""Partner distribution, flow 1 (R-PART-4): a batch's codes exported for a partner as CSV or XLSX, and recorded.

``batch_export_codes`` records the hand-over (a ``CouponCodeExport`` row and an audit row, one transaction) and fixes
what the file holds: the batch's AVAILABLE codes with ``id <= last_code_id``. The file is then produced from that
record in blocks of 500,000 codes read by id (``coupons.bloom.iter_code_blocks``): memory stays bounded whatever the
batch size. CSV is streamed straight into the HTTP response; XLSX is written with openpyxl's write-only workbook to a
temporary file (a zip cannot be streamed before it is complete), at most 1,000,000 rows per sheet (Excel's limit).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit import Actor, audit_record
from core.exceptions import InvalidInput, InvalidState
from coupons.bloom import iter_code_blocks
from coupons.models import CouponBatch, CouponCode, CouponCodeExport

EXPORT_BLOCK = 500_000  # codes read per query
CSV_HEADER = b"code\n"


class BatchNotGenerated(InvalidState):
    code = "batch_not_generated"
    default_message = gettext_lazy("Only a batch whose codes are all generated can be exported.")


def batch_export_codes(*, batch: CouponBatch, partner_name: str, fmt: str, actor: Actor,
                       user: Any = None) -> CouponCodeExport:
    """Record that ``batch``'s available codes are handed to ``partner_name`` as a ``fmt`` file (R-PART-4)."""
    partner_name = (partner_name or "").strip()
    if not partner_name:
        raise InvalidInput(_("Name the partner the codes are for."), details={"field": "partner_name"})
    if len(partner_name) > 200:
        raise InvalidInput(_("The partner name is at most 200 characters."), details={"field": "partner_name"})
    if fmt not in CouponCodeExport.Format.values:
        raise InvalidInput(_("Unknown format %(format)r; use csv or xlsx.") % {"format": fmt},
                           details={"field": "format"})
    with transaction.atomic():
        locked = CouponBatch.objects.select_related("tenant").select_for_update(of=("self",)).get(pk=batch.pk)
        if locked.status != CouponBatch.Status.COMPLETED:
            raise BatchNotGenerated(_("Batch %(batch)s is %(status)s (%(generated)s of %(quantity)s codes); export it "
                                      "once generation has completed.") % {
                "batch": locked.batch_code, "status": locked.get_status_display(),
                "generated": f"{locked.generated_count:,}", "quantity": f"{locked.quantity:,}"})
        available = CouponCode.objects.filter(batch=locked, status=CouponCode.Status.AVAILABLE)
        last_id = available.aggregate(last=Max("id"))["last"]
        count = available.count() if last_id is not None else 0
        export = CouponCodeExport.objects.create(
            tenant_id=locked.tenant_id, batch=locked, partner_name=partner_name, format=fmt, code_count=count,
            last_code_id=last_id, exported_by=user if getattr(user, "pk", None) else None,
            actor_label=actor.label[:200])
        audit_record(tenant=locked.tenant, actor=actor, action="batch.codes_exported", obj=locked,
                     after={"export": export.pk, "partner": partner_name, "format": fmt, "codes": count,
                            "earlier_exports": CouponCodeExport.objects.filter(batch=locked).count() - 1})
    return export


def export_code_blocks(export: CouponCodeExport) -> Iterator[np.ndarray]:
    """The export's codes in id order, in blocks (``S48`` arrays)."""
    if export.last_code_id is None:
        return
    yield from iter_code_blocks(where="batch_id = %s AND status = 'AVAILABLE' AND id <= %s",
                                params=[export.batch_id, export.last_code_id], block=EXPORT_BLOCK)


def _block_lines(codes: np.ndarray) -> bytes:
    # One bytes.join per block; the NUL padding of the S48 array is stripped by numpy's tolist().
    return b"\n".join(codes.tolist()) + b"\n"


def csv_stream(export: CouponCodeExport) -> Iterator[bytes]:
    """CSV bytes of the export: a ``code`` header, then one code per line (codes need no quoting: A-Z, 0-9)."""
    yield CSV_HEADER
    for codes in export_code_blocks(export):
        yield _block_lines(codes)


def export_filename(export: CouponCodeExport) -> str:
    safe_partner = "".join(ch if ch.isalnum() else "-" for ch in export.partner_name)[:40].strip("-") or "partner"
    return f"{export.batch.batch_code}-{safe_partner}-{export.created_at:%Y%m%d-%H%M%S}.{export.format}"
