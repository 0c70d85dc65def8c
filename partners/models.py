"""Partners, partner uploads and code mappings (R-PART-1…3, R-PART-5).

A partner uploads a file of its own codes for one inventory; each valid row takes one AVAILABLE internal code
(→ MAPPED) and becomes a ``CouponMapping``; each invalid row becomes a ``PartnerUploadFailure`` with its line and
reason. ``mapped + failed == rows`` once an upload is DONE; the constraints below hold even if the code is wrong.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.fields import PublicIdField
from core.models import Tenant

PARTNER_CODE_MAX = 64


class Partner(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="partners")
    name = models.CharField(max_length=200)
    code = models.CharField(max_length=32, help_text="Short reference used by the API (e.g. GS25).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="partner_unique_code")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PartnerUpload(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", "pending"
        RUNNING = "RUNNING", "running"
        DONE = "DONE", "done"
        FAILED = "FAILED", "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    public_id = PublicIdField()
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="uploads")
    inventory = models.ForeignKey("coupons.CouponInventory", on_delete=models.PROTECT, related_name="partner_uploads")
    file = models.FileField(upload_to="partner_uploads/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    rows = models.PositiveIntegerField(default=0, help_text="Data rows in the file (header excluded).")
    mapped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0, help_text="Rows committed so far: the resume point.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    client = models.ForeignKey("core.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "inventory", "sha256"], name="upload_unique_file"),
            models.CheckConstraint(condition=Q(status__in=["PENDING", "RUNNING", "DONE", "FAILED"]),
                                   name="upload_status_valid"),
            # Every committed row is either mapped or failed, at every moment (chunks advance all three together).
            models.CheckConstraint(condition=Q(processed_rows=F("mapped") + F("failed")),
                                   name="upload_counts_add_up"),
            models.CheckConstraint(condition=Q(processed_rows__lte=F("rows")), name="upload_processed_within_rows"),
            models.CheckConstraint(condition=~Q(status="DONE") | Q(processed_rows=F("rows")),
                                   name="upload_done_all_rows"),
        ]

    def __str__(self) -> str:
        return f"{self.original_name or self.public_id} → {self.partner.code}" if self.partner_id else self.public_id

    @property
    def progress(self) -> float:
        """Share of rows committed, 0–1 (1 once DONE or FAILED)."""
        if self.status in (self.Status.DONE, self.Status.FAILED):
            return 1.0
        return round(self.processed_rows / self.rows, 4) if self.rows else 0.0


class CouponMapping(models.Model):
    """A partner code mapped to one internal code, once ever per tenant (PartnerCoupon in seed 001)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="mappings")
    upload = models.ForeignKey(PartnerUpload, on_delete=models.PROTECT, related_name="mappings")
    line = models.PositiveIntegerField()
    partner_code = models.CharField(max_length=PARTNER_CODE_MAX)
    coupon = models.OneToOneField("coupons.CouponCode", on_delete=models.PROTECT, related_name="partner_mapping")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "partner_code"], name="mapping_unique_partner_code"),
            models.CheckConstraint(condition=Q(partner_code__regex=r"^[A-Z0-9]{1,64}$"),
                                   name="mapping_partner_code_normalised"),
        ]
        indexes = [models.Index(fields=["upload", "line"], name="mapping_upload_line")]

    def __str__(self) -> str:
        return self.partner_code


class PartnerUploadFailure(models.Model):
    class Reason(models.TextChoices):
        EMPTY = "empty", "empty"
        TOO_LONG = "too_long", "too long"
        BAD_FORMAT = "bad_format", "bad format"
        EXTRA_COLUMNS = "extra_columns", "more than one column"
        LINE_TOO_LONG = "line_too_long", "line too long"
        DUPLICATE_IN_FILE = "duplicate_in_file", "duplicate in the file"
        ALREADY_UPLOADED = "already_uploaded", "already uploaded"
        POOL_EXHAUSTED = "pool_exhausted", "pool exhausted"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    upload = models.ForeignKey(PartnerUpload, on_delete=models.PROTECT, related_name="failures")
    line = models.PositiveIntegerField()
    value = models.CharField(max_length=200, blank=True, help_text="The raw value, truncated to 200 characters.")
    reason = models.CharField(max_length=24, choices=Reason.choices)
    message = models.CharField(max_length=300)
    corrected = models.BooleanField(default=False, help_text="The value was replaced by a correction to reprocess.")

    class Meta:
        ordering = ["upload", "line"]
        constraints = [models.UniqueConstraint(fields=["upload", "line"], name="failure_unique_line")]
        indexes = [models.Index(fields=["upload", "reason", "line"], name="failure_upload_reason")]

    def __str__(self) -> str:
        return f"{self.upload_id}:{self.line} {self.reason} {self.value[:40]}"
