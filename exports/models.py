"""Exports of the issue and usage logs, a batch's codes and draw winners as XLSX files (R-REP-1, R-REP-2).

An ``Export`` is requested (console or API), written by a job on the ``exports`` queue that streams the rows into
a write-only workbook, and downloaded once DONE. Progress (rows written / rows to write) lives on the row.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.fields import PublicIdField
from core.models import Tenant
from core.spreadsheets import local_stamp


class Export(models.Model):
    class Kind(models.TextChoices):
        USAGES = "usages", _("usage log (redemptions and refunds)")
        ISSUES = "issues", _("issue log")
        CODES = "codes", _("a batch's codes")
        WINNERS = "winners", _("draw winners")

    class Status(models.TextChoices):
        PENDING = "PENDING", _("queued")
        RUNNING = "RUNNING", _("writing")
        DONE = "DONE", _("ready")
        FAILED = "FAILED", _("failed")

    class Header(models.TextChoices):
        LABELS = "labels", _("column labels")
        KEYS = "keys", _("machine keys")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    public_id = PublicIdField(_("public ID"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # The filters as requested, normalised (public ids, ISO dates): echoed by the API, re-resolved by the job within
    # the tenant, so a stored filter can never reach another tenant's rows.
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    description = models.CharField(_("description"), max_length=500, blank=True,
                                   help_text=_("The filters in words, for the list."))
    header = models.CharField(_("header row"), max_length=8, choices=Header.choices, default=Header.LABELS)
    # A partner hand-over of a batch's codes (R-PART-4): the file holds exactly the codes that record fixed.
    code_export = models.ForeignKey("coupons.CouponCodeExport", db_constraint=False,
                                    verbose_name=_("partner hand-over"), null=True, blank=True,
                                    on_delete=models.PROTECT,
                                    related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    rows_done = models.PositiveBigIntegerField(_("rows written"), default=0)
    rows_total = models.PositiveBigIntegerField(_("rows to write"), null=True, blank=True,
                                                help_text=_("Rows to write, counted when the job starts."))
    file = models.CharField(_("file"), max_length=300, blank=True, help_text=_("Name in the default storage."))
    file_size = models.PositiveBigIntegerField(_("file size"), null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("requested by"), null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    client = models.ForeignKey("core.ApiClient", verbose_name=_("API client"), null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["usages", "issues", "codes", "winners"]),
                                   name="export_kind_valid"),
            models.CheckConstraint(condition=Q(status__in=["PENDING", "RUNNING", "DONE", "FAILED"]),
                                   name="export_status_valid"),
            models.CheckConstraint(condition=Q(header__in=["labels", "keys"]), name="export_header_valid"),
            models.CheckConstraint(condition=~Q(status="DONE") | (~Q(file="") & Q(finished_at__isnull=False)),
                                   name="export_done_has_file"),
            models.CheckConstraint(condition=Q(rows_total__isnull=True) | Q(rows_done__lte=F("rows_total")),
                                   name="export_rows_within_total"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="export_tenant_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.public_id}" + (f" — {self.description}" if self.description else "")

    @property
    def progress(self) -> float:
        """0.0–1.0; 1.0 only once the file is stored."""
        if self.status == self.Status.DONE:
            return 1.0
        if not self.rows_total:
            return 0.0
        return min(self.rows_done / self.rows_total, 0.99)

    @property
    def filename(self) -> str:
        """The stored file's name (its time in UTC: the storage path of files already written must not move)."""
        return f"{self.kind}-{self.public_id}-{self.created_at:%Y%m%d-%H%M%S}.xlsx"

    @property
    def download_filename(self) -> str:
        """The name the operator's browser saves: the time in the tenant's zone, as the console shows it (#20)."""
        return f"{self.kind}-{self.public_id}-{local_stamp(self.created_at, self.tenant.time_zone)}.xlsx"
