"""Coupon domain: policies (the discount rule), inventories (the pool), batches (issuance rounds) and codes.

Invariants a row can break are CheckConstraints; cross-row rules the database can still guard (an approved
policy is frozen; an inventory needs an approved policy of its own tenant) are triggers in migration 0002.
State changes go through ``coupons.services`` only (STYLE.md).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q

from core.fields import CODE_ALPHABET, MoneyField, PublicIdField
from core.models import Tenant
from events.models import Event

CHANNELS = ["android", "ios", "pc_web", "mobile_web", "wechat", "mini_program"]
PAYMENT_METHODS = ["cod", "online"]


def _list_field() -> ArrayField:
    return ArrayField(models.CharField(max_length=64), default=list, blank=True)


class CouponPolicy(models.Model):
    """The discount rule (R-POL). Immutable once approved (R-POL-5)."""

    class Kind(models.TextChoices):
        AMOUNT = "amount", "cash voucher (fixed amount)"
        THRESHOLD = "threshold", "spend X, get Y off"
        PERCENTAGE = "percentage", "percentage off with a cap"
        SHIPPING = "shipping", "shipping fee"
        SKU_DEDUCTION = "sku_deduction", "N units of a SKU free"

    class ValidityType(models.TextChoices):
        FIXED = "fixed", "fixed period"
        DYNAMIC = "dynamic", "N hours from issue"

    class Audience(models.TextChoices):
        ALL = "all", "everyone"
        MEMBERS = "members", "members only"
        WHITELIST = "whitelist", "whitelisted members"

    class StackingGroup(models.TextChoices):
        MERCHANT = "merchant", "merchant"
        PLATFORM = "platform", "platform"
        SHIPPING = "shipping", "shipping"
        SUPER = "super", "super"

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "draft"
        PENDING = "PENDING", "pending approval"
        APPROVED = "APPROVED", "approved"
        REJECTED = "REJECTED", "rejected"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="policies")
    public_id = PublicIdField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = MoneyField(null=True, blank=True, help_text="Discount in minor units (amount, threshold) or the maximum "
                                                          "shipping deduction (shipping; empty = the whole fee).")
    rate = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Percent off, 1–100 (percentage).")
    threshold = MoneyField(null=True, blank=True, help_text="Minimum applicable amount (threshold, percentage, "
                                                             "shipping).")
    cap = MoneyField(null=True, blank=True, help_text="Maximum discount (mandatory for percentage).")
    sku_deduction_sku = models.CharField(max_length=64, blank=True)
    sku_deduction_units = models.PositiveIntegerField(null=True, blank=True)

    validity_type = models.CharField(max_length=8, choices=ValidityType.choices, default=ValidityType.FIXED)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    validity_hours = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Dynamic validity: hours from issue, never past valid_until.")

    include_skus = _list_field()
    exclude_skus = _list_field()
    include_spus = _list_field()
    exclude_spus = _list_field()
    include_categories = _list_field()
    exclude_categories = _list_field()
    include_shops = _list_field()
    exclude_shops = _list_field()
    channels = ArrayField(models.CharField(max_length=16), default=list, blank=True,
                          help_text=f"Empty = every channel. Choices: {', '.join(CHANNELS)}.")
    payment_methods = ArrayField(models.CharField(max_length=8), default=list, blank=True,
                                 help_text=f"Empty = every payment method. Choices: {', '.join(PAYMENT_METHODS)}.")
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.ALL)
    stacking_group = models.CharField(max_length=16, choices=StackingGroup.choices, default=StackingGroup.PLATFORM)
    exclusive = models.BooleanField(default=False, help_text="Combines with no other coupon.")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", editable=False)
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    rejection_reason = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "coupon policies"
        ordering = ["-created_at"]
        permissions = [("approve_couponpolicy", "Can approve or reject coupon policies")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["amount", "threshold", "percentage", "shipping",
                                                         "sku_deduction"]), name="policy_kind_valid"),
            models.CheckConstraint(
                name="policy_kind_fields",
                condition=(
                    Q(kind="amount", amount__isnull=False, amount__gt=0, rate__isnull=True, cap__isnull=True)
                    & (Q(threshold__isnull=True) | Q(threshold=0))
                ) | Q(kind="threshold", amount__isnull=False, amount__gt=0, threshold__isnull=False,
                      threshold__gt=F("amount"), rate__isnull=True)
                | Q(kind="percentage", rate__isnull=False, rate__gte=1, rate__lte=100, cap__isnull=False, cap__gt=0,
                    amount__isnull=True)
                | (Q(kind="shipping", rate__isnull=True) & (Q(amount__isnull=True) | Q(amount__gt=0)))
                | (Q(kind="sku_deduction", sku_deduction_units__isnull=False, sku_deduction_units__gte=1,
                     rate__isnull=True)
                   & ~Q(sku_deduction_sku="")),
            ),
            models.CheckConstraint(
                name="policy_money_not_negative",
                condition=(Q(threshold__isnull=True) | Q(threshold__gte=0)) & (Q(cap__isnull=True) | Q(cap__gte=0))
                & (Q(amount__isnull=True) | Q(amount__gte=0)),
            ),
            models.CheckConstraint(
                name="policy_validity",
                # NULL makes a comparison unknown, which a CHECK lets through: every compared column is also
                # required to be NOT NULL explicitly.
                condition=Q(validity_type="fixed", valid_from__isnull=False, valid_until__isnull=False,
                            valid_until__gt=F("valid_from"), validity_hours__isnull=True)
                | (Q(validity_type="dynamic", validity_hours__isnull=False, validity_hours__gte=1)
                   & (Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")))),
            ),
            models.CheckConstraint(condition=Q(channels__contained_by=CHANNELS), name="policy_channels_valid"),
            models.CheckConstraint(condition=Q(payment_methods__contained_by=PAYMENT_METHODS),
                                   name="policy_payment_methods_valid"),
            models.CheckConstraint(condition=Q(audience__in=["all", "members", "whitelist"]),
                                   name="policy_audience_valid"),
            models.CheckConstraint(condition=Q(stacking_group__in=["merchant", "platform", "shipping", "super"]),
                                   name="policy_stacking_group_valid"),
            models.CheckConstraint(condition=Q(status__in=["DRAFT", "PENDING", "APPROVED", "REJECTED"]),
                                   name="policy_status_valid"),
            # R-POL-5: a decision needs a decider, and the decider is never the author.
            models.CheckConstraint(
                name="policy_decider_not_author",
                condition=Q(status__in=["DRAFT", "PENDING"])
                | (Q(decided_by__isnull=False, decided_at__isnull=False) & ~Q(decided_by=F("created_by"))),
            ),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="policy_tenant_status")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.REJECTED)


class CouponInventory(models.Model):
    """The issuable pool of an event × policy (R-DOM): quantity, per-member limit, budgets, counters."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="inventories")
    public_id = PublicIdField(help_text="The 16-character claim id members use (R-CODE-2).")
    name = models.CharField(max_length=200)
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="inventories")
    policy = models.ForeignKey(CouponPolicy, on_delete=models.PROTECT, related_name="inventories")
    total_quantity = models.PositiveBigIntegerField(help_text="Most codes this pool may ever hold.")
    per_member_limit = models.PositiveIntegerField(default=1)
    promo_code = models.CharField(max_length=32, null=True, blank=True,
                                  help_text="Optional shared code members may claim with (R-ISS-1).")
    issue_budget_count = models.PositiveBigIntegerField(null=True, blank=True)
    issue_budget_amount = MoneyField(null=True, blank=True)
    use_budget_count = models.PositiveBigIntegerField(null=True, blank=True)
    use_budget_amount = MoneyField(null=True, blank=True)
    # Counters, changed only with F() in the transaction of the change they count.
    issued_count = models.PositiveBigIntegerField(default=0, editable=False)
    used_count = models.PositiveBigIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "coupon inventories"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(total_quantity__gte=1), name="inventory_total_positive"),
            models.CheckConstraint(condition=Q(per_member_limit__gte=1), name="inventory_member_limit_positive"),
            models.CheckConstraint(condition=Q(issued_count__lte=F("total_quantity")),
                                   name="inventory_issued_within_total"),
            models.CheckConstraint(condition=Q(used_count__lte=F("issued_count")), name="inventory_used_within_issued"),
            models.CheckConstraint(
                condition=(Q(issue_budget_amount__isnull=True) | Q(issue_budget_amount__gte=0))
                & (Q(use_budget_amount__isnull=True) | Q(use_budget_amount__gte=0)),
                name="inventory_budget_not_negative",
            ),
            models.UniqueConstraint(fields=["tenant", "promo_code"], condition=Q(promo_code__isnull=False),
                                    name="inventory_unique_promo_code"),
        ]

    def __str__(self) -> str:
        return self.name


class CouponBatch(models.Model):
    """One issuance round inside an inventory, identified by ``batch_code`` (R-DOM, R-CODE-5)."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "pending"
        RUNNING = "RUNNING", "generating"
        COMPLETED = "COMPLETED", "completed"
        FAILED = "FAILED", "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="batches")
    inventory = models.ForeignKey(CouponInventory, on_delete=models.PROTECT, related_name="batches")
    batch_code = models.CharField(max_length=64)
    quantity = models.PositiveBigIntegerField()
    code_length = models.PositiveSmallIntegerField(default=8)
    alphabet = models.CharField(max_length=64, default=CODE_ALPHABET)
    prefix = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, editable=False)
    generated_count = models.PositiveBigIntegerField(default=0, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "coupon batches"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "batch_code"], name="batch_unique_code_per_tenant"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="batch_quantity_positive"),
            models.CheckConstraint(condition=Q(generated_count__lte=F("quantity")), name="batch_generated_within"),
            models.CheckConstraint(condition=Q(code_length__gte=4, code_length__lte=32), name="batch_length_range"),
            models.CheckConstraint(condition=Q(status__in=["PENDING", "RUNNING", "COMPLETED", "FAILED"]),
                                   name="batch_status_valid"),
            models.CheckConstraint(condition=~Q(status="COMPLETED") | Q(generated_count=F("quantity")),
                                   name="batch_completed_is_full"),
        ]

    def __str__(self) -> str:
        return self.batch_code


class CouponCode(models.Model):
    """One pre-generated code and its lifecycle (SPEC §4)."""

    class Status(models.TextChoices):
        AVAILABLE = "AVAILABLE", "available"
        MAPPED = "MAPPED", "mapped to a partner code"
        ISSUED = "ISSUED", "issued"
        LOCKED = "LOCKED", "locked to an order"
        USED = "USED", "used"
        EXPIRED = "EXPIRED", "expired"
        REVOKED = "REVOKED", "revoked"

    # tenant and inventory repeat the batch's; they carry no FK trigger so a 10M-row COPY pays only for the batch's.
    tenant = models.ForeignKey(Tenant, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                               related_name="+")
    inventory = models.ForeignKey(CouponInventory, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                                  related_name="codes")
    batch = models.ForeignKey(CouponBatch, on_delete=models.PROTECT, related_name="codes")
    code = models.CharField(max_length=48, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    member_id = models.CharField(max_length=64, null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    locked_order_id = models.CharField(max_length=64, null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["AVAILABLE", "MAPPED", "ISSUED", "LOCKED", "USED", "EXPIRED", "REVOKED"]),
                name="code_status_valid",
            ),
            models.CheckConstraint(condition=~Q(status__in=["AVAILABLE", "MAPPED"]) | Q(member_id__isnull=True),
                                   name="code_unissued_has_no_member"),
            models.CheckConstraint(
                condition=~Q(status__in=["ISSUED", "LOCKED", "USED"])
                | Q(member_id__isnull=False, issued_at__isnull=False),
                name="code_issued_has_member",
            ),
            models.CheckConstraint(condition=~Q(status="LOCKED") | Q(locked_order_id__isnull=False),
                                   name="code_locked_has_order"),
            models.CheckConstraint(condition=~Q(status="USED") | Q(used_at__isnull=False), name="code_used_has_time"),
        ]
        indexes = [
            # The claim path takes the next AVAILABLE code of a pool with FOR UPDATE SKIP LOCKED (R-ISS-3).
            models.Index(fields=["inventory", "id"], condition=Q(status="AVAILABLE"), name="code_pool_available"),
            models.Index(fields=["tenant", "member_id", "status"], condition=Q(member_id__isnull=False),
                         name="code_member"),
            models.Index(fields=["valid_until"], condition=Q(status__in=["AVAILABLE", "MAPPED", "ISSUED"]),
                         name="code_expiry"),
            models.Index(fields=["batch", "id"], name="code_batch"),
        ]

    def __str__(self) -> str:
        return self.code
