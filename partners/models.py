"""Partners, partner uploads and code mappings (R-PART-1…3, R-PART-5).

A partner uploads a file of its own codes for one inventory; each valid row takes one AVAILABLE internal code
(→ MAPPED) and becomes a ``CouponMapping``; each invalid row becomes a ``PartnerUploadFailure`` with its line and
reason. ``mapped + failed == rows`` once an upload is DONE; the constraints below hold even if the code is wrong.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.fields import PublicIdField
from core.models import Tenant

PARTNER_CODE_MAX = 64


class Partner(models.Model):
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="partners")
    name = models.CharField(_("name"), max_length=200)
    code = models.CharField(_("code"), max_length=32, help_text=_("Short reference used by the API (e.g. GS25)."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "code"], name="partner_unique_code")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PartnerUpload(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING", _("pending")
        RUNNING = "RUNNING", _("running")
        DONE = "DONE", _("done")
        FAILED = "FAILED", _("failed")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    public_id = PublicIdField(_("public ID"))
    partner = models.ForeignKey(Partner, db_constraint=False,
                                verbose_name=_("partner"), on_delete=models.PROTECT, related_name="uploads")
    inventory = models.ForeignKey("coupons.CouponInventory", db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.PROTECT,
                                  related_name="partner_uploads")
    file = models.FileField(_("file"), upload_to="partner_uploads/%Y/%m/")
    original_name = models.CharField(_("original file name"), max_length=255, blank=True)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    rows = models.PositiveIntegerField(_("rows"), default=0, help_text=_("Data rows in the file (header excluded)."))
    mapped = models.PositiveIntegerField(_("mapped"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    processed_rows = models.PositiveIntegerField(_("processed rows"), default=0,
                                                 help_text=_("Rows committed so far: the resume point."))
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey("core.ApiClient", verbose_name=_("API client"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("partner upload")
        verbose_name_plural = _("partner uploads")
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
            # Target of the mappings' composite foreign key (upload, tenant, partner): migration 0002.
            models.UniqueConstraint(fields=["id", "tenant", "partner"], name="upload_id_tenant_partner"),
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
    """A partner code mapped to one internal code, once ever per tenant (PartnerCoupon in seed 001).

    tenant, partner and upload are guarded by ONE composite foreign key (upload_id, tenant_id, partner_id) →
    partnerupload (id, tenant_id, partner_id), added in migration 0002: a mapping's tenant and partner are always its
    upload's, and a bulk insert pays one deferred key check per row instead of three (bench partner_upload). Their
    single-column indexes are left out: mapping_unique_partner_code starts with tenant_id, mapping_upload_line with
    upload_id.
    """

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+",
                               db_constraint=False, db_index=False)
    partner = models.ForeignKey(Partner, verbose_name=_("partner"), on_delete=models.PROTECT,
                                related_name="mappings", db_constraint=False)
    upload = models.ForeignKey(PartnerUpload, verbose_name=_("upload"), on_delete=models.PROTECT,
                               related_name="mappings", db_constraint=False, db_index=False)
    line = models.PositiveIntegerField(_("line"))
    partner_code = models.CharField(_("partner code"), max_length=PARTNER_CODE_MAX)
    coupon = models.OneToOneField("coupons.CouponCode", db_constraint=False,
                                  verbose_name=_("coupon code"), on_delete=models.PROTECT,
                                  related_name="partner_mapping")
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("code mapping")
        verbose_name_plural = _("code mappings")
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
        EMPTY = "empty", _("empty")
        TOO_LONG = "too_long", _("too long")
        BAD_FORMAT = "bad_format", _("bad format")
        EXTRA_COLUMNS = "extra_columns", _("more than one column")
        LINE_TOO_LONG = "line_too_long", _("line too long")
        DUPLICATE_IN_FILE = "duplicate_in_file", _("duplicate in the file")
        ALREADY_UPLOADED = "already_uploaded", _("already uploaded")
        POOL_EXHAUSTED = "pool_exhausted", _("pool exhausted")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    upload = models.ForeignKey(PartnerUpload, db_constraint=False, verbose_name=_("upload"), on_delete=models.PROTECT,
                               related_name="failures")
    line = models.PositiveIntegerField(_("line"))
    value = models.CharField(_("value"), max_length=200, blank=True,
                             help_text=_("The raw value, truncated to 200 characters."))
    reason = models.CharField(_("reason"), max_length=24, choices=Reason.choices)
    message = models.CharField(_("message"), max_length=300)
    corrected = models.BooleanField(_("corrected"), default=False,
                                    help_text=_("The value was replaced by a correction to reprocess."))

    class Meta:
        verbose_name = _("upload failure")
        verbose_name_plural = _("upload failures")
        ordering = ["upload", "line"]
        constraints = [models.UniqueConstraint(fields=["tenant", "upload", "line"], name="failure_unique_line")]
        indexes = [models.Index(fields=["upload", "reason", "line"], name="failure_upload_reason")]

    def __str__(self) -> str:
        return f"{self.upload_id}:{self.line} {self.get_reason_display()} {self.value[:40]}"


class Distribution(models.Model):
    """Codes of our own handed to a partner (flow 1, seed 001 §2.1 자체발번 → 제휴사 제공; R-PART-4).

    Creating one reserves ``quantity`` AVAILABLE codes of the inventory (optionally of one batch) in one transaction:
    they become DISTRIBUTED with ``distribution_id`` set, so no pool claim, grant, draw prize, partner mapping or
    other distribution can take them; a member registers one by its code (``POST /claims {"code"}``). The file of a
    distribution is its codes in id order, the same at every download.
    """

    class Status(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", _("awaiting approval")
        DISTRIBUTED = "distributed", _("distributed")
        REJECTED = "rejected", _("rejected")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    public_id = PublicIdField(_("public ID"))
    # issue #20: at or above the tenant's threshold a distribution waits for an approver; its codes are reserved only
    # when approved (in the approval's transaction). Below it (or with no threshold) it is DISTRIBUTED at once.
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.DISTRIBUTED)
    partner = models.ForeignKey(Partner, db_constraint=False, verbose_name=_("partner"), on_delete=models.PROTECT,
                                related_name="distributions")
    inventory = models.ForeignKey("coupons.CouponInventory", db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.PROTECT,
                                  related_name="distributions")
    batch = models.ForeignKey("coupons.CouponBatch", db_constraint=False,
                              verbose_name=_("batch"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="distributions",
                              help_text=_("The batch the codes were taken from; empty = any batch of the inventory."))
    quantity = models.PositiveBigIntegerField(_("number of codes"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("distributed by"), null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey("core.ApiClient", verbose_name=_("API client"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(_("by"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("decided by"), null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    rejection_reason = models.TextField(_("rejection reason"), blank=True)

    class Meta:
        verbose_name = _("distribution")
        verbose_name_plural = _("distributions")
        ordering = ["-created_at"]
        permissions = [("approve_distribution", "Can approve or reject distributions")]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="distribution_quantity_positive"),
            models.CheckConstraint(condition=Q(status__in=["awaiting_approval", "distributed", "rejected"]),
                                   name="distribution_status_valid"),
            # Four eyes (issue #20): whoever asked never decides. NULL (an API client asked) passes.
            models.CheckConstraint(condition=Q(decided_by__isnull=True) | Q(created_by__isnull=True)
                                   | ~Q(decided_by=F("created_by")), name="distribution_decider_not_requester"),
        ]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="distribution_tenant_time"),
                   models.Index(fields=["tenant", "created_at"], condition=Q(status="awaiting_approval"),
                                name="distribution_awaiting")]

    def __str__(self) -> str:
        return f"{self.public_id} → {self.partner.code if self.partner_id else ''} ({self.quantity:,})"
