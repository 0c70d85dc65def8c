"""Requesting, writing and handing out exports (R-REP-1, R-REP-2).

Design: docs/design/reports-and-exports.md#exports-services.
"""
from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from typing import IO, Any

import psycopg
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core import jobs
from core.audit import Actor, audit_record
from core.exceptions import InvalidInput, InvalidState
from core.models import ApiClient, Tenant
from core.tenancy import joined_in_tenant
from coupons.models import CouponCodeExport
from exports.models import Export
from exports.selectors import export_columns, export_values, resolve_filters
from exports.columns import SHEET_TITLES
from exports import writer

logger = logging.getLogger("coupons.exports")

QUEUE = "exports"
# A RUNNING export whose worker died is taken over by the next run after this long (RQ's job timeout is 3 h).
STALE_RUNNING = timedelta(hours=3)


class ExportNotReady(InvalidState):
    code = "export_not_ready"
    default_message = _("The export's file is not ready yet.")


def _enqueue(export_id: int, tenant_id: int) -> None:
    jobs.enqueue(QUEUE, "exports.jobs.export_run", export_id, tenant_id,
                 job_id=f"export-{export_id}-{timezone.now():%Y%m%d%H%M%S%f}", tenant_id=tenant_id)


def export_request(*, tenant: Tenant, kind: str, filters: dict[str, Any], actor: Actor, user: Any = None,
                   client: ApiClient | None = None, header: str = Export.Header.LABELS) -> Export:
    """Record an export of ``kind`` rows matching ``filters`` and queue its job (see the module docstring)."""
    if header not in Export.Header.values:
        raise InvalidInput(gettext("Unknown header '%(header)s'; use labels or keys.") % {"header": header}, code="invalid_filter",
                           details={"field": "header"})
    resolved = resolve_filters(tenant=tenant, kind=kind, filters=filters)  # errors in the caller's language
    if tenant.language and tenant.language != translation.get_language():
        # The filters in words are stored for the list: in the tenant's language, as its exports' labels are (#20).
        with translation.override(tenant.language):
            resolved = resolve_filters(tenant=tenant, kind=kind, filters=filters)
    with transaction.atomic():
        export = Export.objects.create(
            tenant=tenant, kind=kind, filters=resolved.normalised, description=resolved.description, header=header,
            requested_by=user if getattr(user, "pk", None) else None, client=client)
        audit_record(tenant=tenant, actor=actor, action="export.requested", obj=export,
                     after={"kind": kind, "filters": resolved.normalised, "header": header,
                            "public_id": export.public_id})
        transaction.on_commit(lambda: _enqueue(export.pk, export.tenant_id))
    return export


def _claim(export_id: int, tenant_id: int) -> bool:
    now = timezone.now()
    this = Export.objects.filter(tenant_id=tenant_id, pk=export_id)
    claimable = this.filter(status__in=[Export.Status.PENDING, Export.Status.FAILED]) | \
        this.filter(status=Export.Status.RUNNING, started_at__lt=now - STALE_RUNNING)
    return this.filter(pk__in=claimable.values("pk")).update(
        status=Export.Status.RUNNING, started_at=now, rows_done=0, rows_total=None, error="") == 1


def storage_name(export: Export) -> str:
    return f"exports/{export.tenant_id}/{export.filename}"


def export_tenant(export_id: int) -> int:
    """The tenant of an export, by its id alone: only for a job queued before issue #23 passed the tenant along."""
    return Export.objects.values_list("tenant_id", flat=True).get(pk=export_id)


def export_write(*, export_id: int, tenant_id: int) -> Export | None:
    """Write the export's file (the job). Returns None when another run has it or it is already DONE. Its statements
    through Django name the tenant (issue #23); the rows themselves are read on the reader's own connection."""
    if not _claim(export_id, tenant_id):
        return None
    this = Export.objects.filter(tenant_id=tenant_id, pk=export_id)
    export = this.select_related("tenant").get()
    if export.code_export_id is not None:  # optional: its own statement in the tenant, not a LEFT JOIN
        export.code_export = CouponCodeExport.objects.select_related("batch").get(
            tenant_id=tenant_id, pk=export.code_export_id, **joined_in_tenant(tenant_id, "batch"))
    try:
        rows = _write(export)
    except Exception as exc:
        this.update(status=Export.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000],
                    finished_at=timezone.now())
        if isinstance(exc, psycopg.OperationalError):  # the reader's own connection: lost, refused, timed out
            raise jobs.TransientError(str(exc)) from exc
        raise
    export.refresh_from_db(from_queryset=this.select_related("tenant"))
    logger.info("export %s: %s rows", export.public_id, rows)
    return export


def _write(export: Export) -> int:
    columns = export_columns(export)
    # Sheet names and column labels in the tenant's language (issue #11); machine keys never change with it.
    with translation.override(export.tenant.language or settings.LANGUAGE_CODE):
        header = [c.key if export.header == Export.Header.KEYS else str(c.label) for c in columns]
        title = str(SHEET_TITLES[export.kind])
    sql, params = export_values(export).query.sql_with_params()
    total: dict[str, int] = {}

    def on_count(count: int) -> None:
        total["rows"] = count
        Export.objects.filter(tenant_id=export.tenant_id, pk=export.pk).update(rows_total=count)

    def on_progress(done: int) -> None:
        Export.objects.filter(tenant_id=export.tenant_id, pk=export.pk).update(
            rows_done=min(done, total.get("rows", done)))

    tmp_dir = getattr(settings, "EXPORT_TMP_DIR", None) or None
    with tempfile.NamedTemporaryFile(prefix=f"export-{export.public_id}-", suffix=".xlsx", dir=tmp_dir) as handle:
        rows = writer.write_xlsx(sql=sql, params=params, columns=columns, title=title,
                          header=header, path=handle.name, on_count=on_count, on_progress=on_progress)
        handle.seek(0)
        name = default_storage.save(storage_name(export), File(handle))
        size = default_storage.size(name)
    with transaction.atomic():
        # rows_total is the snapshot's count and equals the rows written; the CAS keeps a stale run from finishing
        # over a newer one.
        updated = Export.objects.filter(tenant_id=export.tenant_id, pk=export.pk, status=Export.Status.RUNNING,
                                        started_at=export.started_at).update(status=Export.Status.DONE, rows_done=rows, rows_total=rows, file=name, file_size=size,
                    finished_at=timezone.now())
        if updated != 1:
            default_storage.delete(name)
    return rows


def export_open(*, export: Export, actor: Actor) -> IO[bytes]:
    """The file of a DONE export, opened for reading; the download is audited."""
    if export.status != Export.Status.DONE or not export.file:
        raise ExportNotReady(gettext("Export %(id)s is %(status)s; download it once it is ready.")
                             % {"id": export.public_id, "status": export.get_status_display()})
    handle = default_storage.open(export.file, "rb")
    with transaction.atomic():
        audit_record(tenant=export.tenant, actor=actor, action="export.downloaded", obj=export,
                     after={"public_id": export.public_id, "rows": export.rows_done})
    return handle
