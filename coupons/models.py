"""Coupon domain: policies (the discount rule), inventories (the pool), batches (issuance rounds) and codes.

Invariants a row can break are CheckConstraints; cross-row rules the database can still guard (an approved
policy is frozen; an inventory needs an approved policy of its own tenant) are triggers in migration 0002.
State changes go through ``coupons.services`` only (STYLE.md).
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext

from core.fields import CODE_ALPHABET, MoneyField, PublicIdField
from core.models import Tenant
from events.models import Event

CHANNELS = ["android", "ios", "pc_web", "mobile_web", "wechat", "mini_program"]
PAYMENT_METHODS = ["cod", "online"]
# What the console shows for the stored values above (issue #20: the raw keys read as English internals).
CHANNEL_LABELS = {"android": _("Android app"), "ios": _("iOS app"), "pc_web": _("PC web"),
                  "mobile_web": _("mobile web"), "wechat": _("WeChat"), "mini_program": _("mini program")}
PAYMENT_METHOD_LABELS = {"cod": _("cash on delivery"), "online": _("online payment")}


def _list_field(verbose_name: Any) -> ArrayField:
    return ArrayField(models.CharField(max_length=64), default=list, blank=True, verbose_name=verbose_name)


class CouponPolicy(models.Model):
    """The discount rule (R-POL). Immutable once approved (R-POL-5)."""

    class Kind(models.TextChoices):
        AMOUNT = "amount", _("cash voucher (fixed amount)")
        THRESHOLD = "threshold", _("spend X, get Y off")
        PERCENTAGE = "percentage", _("percentage off with a cap")
        SHIPPING = "shipping", _("shipping fee")
        SKU_DEDUCTION = "sku_deduction", _("N units of a SKU free")

    class ValidityType(models.TextChoices):
        FIXED = "fixed", _("fixed period")
        DYNAMIC = "dynamic", _("N hours from issue")
        END_OF_DAY = "end_of_day", _("until the end of the day of issue + N days")
        END_OF_MONTH = "end_of_month", _("until the end of the month of issue")

    class Audience(models.TextChoices):
        ALL = "all", _("everyone")
        MEMBERS = "members", _("members only")
        WHITELIST = "whitelist", _("whitelisted members")

    class StackingGroup(models.TextChoices):
        MERCHANT = "merchant", _("merchant")
        PLATFORM = "platform", _("platform")
        SHIPPING = "shipping", _("shipping")
        SUPER = "super", _("super")

    class Status(models.TextChoices):
        DRAFT = "DRAFT", _("draft")
        PENDING = "PENDING", _("pending approval")
        APPROVED = "APPROVED", _("approved")
        REJECTED = "REJECTED", _("rejected")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="policies")
    public_id = PublicIdField(_("public ID"))
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    amount = MoneyField(_("amount"), null=True, blank=True,
                        help_text=_("Discount in minor units (amount, threshold) or the maximum "
                                                          "shipping deduction (shipping; empty = the whole fee)."))
    rate = models.PositiveSmallIntegerField(_("rate"), null=True, blank=True,
                                            help_text=_("Percent off, 1–100 (percentage)."))
    threshold = MoneyField(_("threshold"), null=True, blank=True,
                           help_text=_("Minimum applicable amount (threshold, percentage, "
                                                             "shipping)."))
    cap = MoneyField(_("cap"), null=True, blank=True, help_text=_("Maximum discount (mandatory for percentage)."))
    sku_deduction_sku = models.CharField(_("SKU deduction: SKU"), max_length=64, blank=True)
    sku_deduction_units = models.PositiveIntegerField(_("SKU deduction: units"), null=True, blank=True)

    validity_type = models.CharField(_("validity type"), max_length=16, choices=ValidityType.choices,
                                     default=ValidityType.FIXED)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    validity_hours = models.PositiveIntegerField(_("validity (hours)"), null=True, blank=True,
                                                 help_text=_("Dynamic validity: hours from issue, never past "
                                                             "valid_until."))
    validity_days = models.PositiveSmallIntegerField(
        _("validity (days after the day of issue)"), null=True, blank=True,
        help_text=_("End-of-day validity: 0 = until 23:59:59 of the day of issue, 1 = of the next day, … in the "
                    "tenant's time zone; never past valid_until."))

    include_skus = _list_field(_("included SKUs"))
    exclude_skus = _list_field(_("excluded SKUs"))
    include_spus = _list_field(_("included SPUs"))
    exclude_spus = _list_field(_("excluded SPUs"))
    include_categories = _list_field(_("included categories"))
    exclude_categories = _list_field(_("excluded categories"))
    include_shops = _list_field(_("included shops"))
    exclude_shops = _list_field(_("excluded shops"))
    channels = ArrayField(models.CharField(max_length=16), default=list, blank=True, verbose_name=_("channels"),
                          help_text=format_lazy(_("Empty = every channel. Choices: {choices}."),
                                                choices=", ".join(CHANNELS)))
    payment_methods = ArrayField(models.CharField(max_length=8), default=list, blank=True,
                                 verbose_name=_("payment methods"),
                                 help_text=format_lazy(_("Empty = every payment method. Choices: {choices}."),
                                                       choices=", ".join(PAYMENT_METHODS)))
    audience = models.CharField(_("audience"), max_length=16, choices=Audience.choices, default=Audience.ALL)
    # db_default: rows written by the code before this column (a rolling deploy, R-OPS-4) get "every tier".
    audience_tiers = ArrayField(models.CharField(max_length=64), default=list, db_default=[], blank=True,
                                verbose_name=_("member tiers"),
                                help_text=_("Empty = every member. Otherwise only members of these tiers or "
                                            "segments (the tier the checkout request states) can use the coupon; "
                                            "guests never."))
    stacking_group = models.CharField(_("stacking group"), max_length=16, choices=StackingGroup.choices,
                                      default=StackingGroup.PLATFORM)
    exclusive = models.BooleanField(_("exclusive"), default=False, help_text=_("Combines with no other coupon."))

    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT,
                                   related_name="+",
                                   editable=False)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True, editable=False)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("decided by"), null=True, blank=True,
                                   on_delete=models.PROTECT,
                                   related_name="+", editable=False)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True, editable=False)
    rejection_reason = models.TextField(_("rejection reason"), blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("coupon policy")
        verbose_name_plural = _("coupon policies")
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
                            valid_until__gt=F("valid_from"), validity_hours__isnull=True, validity_days__isnull=True)
                | ((Q(validity_type="dynamic", validity_hours__isnull=False, validity_hours__gte=1,
                      validity_days__isnull=True)
                    | Q(validity_type="end_of_day", validity_days__isnull=False, validity_days__lte=3650,
                        validity_hours__isnull=True)
                    | Q(validity_type="end_of_month", validity_hours__isnull=True, validity_days__isnull=True))
                   & (Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")))),
            ),
            models.CheckConstraint(condition=~Q(audience_tiers__contains=[""]), name="policy_tiers_not_blank"),
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

    def face_value(self) -> int:
        """What one issued coupon may cost at most (budgets, R-RISK-2): the amount of a cash or threshold voucher,
        the cap of a percentage, the maximum deduction of a shipping coupon (0 when it is the whole fee, unknown in
        advance); 0 for a SKU deduction, whose value depends on the order."""
        if self.kind == self.Kind.PERCENTAGE:
            return self.cap or 0
        if self.kind in (self.Kind.AMOUNT, self.Kind.THRESHOLD, self.Kind.SHIPPING):
            return self.amount or 0
        return 0

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.REJECTED)


class CouponInventory(models.Model):
    """The issuable pool of an event × policy (R-DOM): quantity, per-member limit, budgets, counters."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="inventories")
    public_id = PublicIdField(_("public ID"), help_text=_("The 16-character claim id members use (R-CODE-2)."))
    name = models.CharField(_("name"), max_length=200)
    event = models.ForeignKey(Event, db_constraint=False,
                              verbose_name=_("event"), on_delete=models.PROTECT, related_name="inventories")
    policy = models.ForeignKey(CouponPolicy, db_constraint=False, verbose_name=_("policy"), on_delete=models.PROTECT,
                               related_name="inventories")
    total_quantity = models.PositiveBigIntegerField(_("total quantity"),
                                                    help_text=_("Most codes this pool may ever hold."))
    per_member_limit = models.PositiveIntegerField(_("limit per member"), default=1)
    # NULL = no promo code: the partial unique index (tenant, promo_code) skips NULLs, not empty strings.
    promo_code = models.CharField(_("promo code"), max_length=32, null=True, blank=True,  # noqa: DJ001
                                  help_text=_("Optional shared code members may claim with (R-ISS-1)."))
    issue_budget_count = models.PositiveBigIntegerField(_("issue budget (count)"), null=True, blank=True)
    issue_budget_amount = MoneyField(_("issue budget (amount)"), null=True, blank=True)
    use_budget_count = models.PositiveBigIntegerField(_("use budget (count)"), null=True, blank=True)
    use_budget_amount = MoneyField(_("use budget (amount)"), null=True, blank=True)
    # Issued/used counts live in InventoryCounter shards (a single counter row would serialise every claim).
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("coupon inventory")
        verbose_name_plural = _("coupon inventories")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(total_quantity__gte=1), name="inventory_total_positive"),
            models.CheckConstraint(condition=Q(per_member_limit__gte=1), name="inventory_member_limit_positive"),
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
        PENDING = "PENDING", _("pending")
        RUNNING = "RUNNING", _("generating")
        COMPLETED = "COMPLETED", _("completed")
        FAILED = "FAILED", _("failed")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="batches")
    inventory = models.ForeignKey(CouponInventory, db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.PROTECT,
                                  related_name="batches")
    batch_code = models.CharField(_("batch code"), max_length=64)
    quantity = models.PositiveBigIntegerField(_("quantity"))
    code_length = models.PositiveSmallIntegerField(_("code length"), default=8)
    alphabet = models.CharField(_("alphabet"), max_length=64, default=CODE_ALPHABET)
    prefix = models.CharField(_("prefix"), max_length=16, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING,
                              editable=False)
    generated_count = models.PositiveBigIntegerField(_("generated"), default=0, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("coupon batch")
        verbose_name_plural = _("coupon batches")
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
        AVAILABLE = "AVAILABLE", _("available")
        MAPPED = "MAPPED", _("mapped to a partner code")
        DISTRIBUTED = "DISTRIBUTED", _("distributed to a partner")
        ISSUED = "ISSUED", _("issued")
        LOCKED = "LOCKED", _("locked to an order")
        USED = "USED", _("used")
        EXPIRED = "EXPIRED", _("expired")
        REVOKED = "REVOKED", _("revoked")

    # No per-row foreign-key triggers: codes are written only by coupons.services.generation, for a batch it holds locked,
    # and batches are never deleted; the RI check alone cost ~48 s per 10M-code COPY (bench/RESULTS.md). The
    # code_batch and code_pool_available indexes serve every lookup by batch and inventory.
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.DO_NOTHING, db_constraint=False,
                               db_index=False,
                               related_name="+")
    inventory = models.ForeignKey(CouponInventory, verbose_name=_("inventory"), on_delete=models.DO_NOTHING,
                                  db_constraint=False, db_index=False,
                                  related_name="codes")
    batch = models.ForeignKey(CouponBatch, verbose_name=_("batch"), on_delete=models.DO_NOTHING, db_constraint=False,
                              db_index=False,
                              related_name="codes")
    # Unique per tenant (``code_unique_per_tenant`` in Meta.constraints, issue #23), never unique=True: that would
    # make the code globally unique again and add a second, varchar_pattern_ops index that the C-collation unique
    # index makes redundant — and every COPY would maintain both.
    code = models.CharField(_("code"), max_length=48)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    # NULL = not issued: the status check constraints and the partial member index test member_id IS NULL.
    member_id = models.CharField(_("member ID"), max_length=64, null=True, blank=True)  # noqa: DJ001
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    # NULL = not locked: the LOCKED check constraint tests locked_order_id IS NOT NULL.
    locked_order_id = models.CharField(_("locked for order"), max_length=64, null=True,  # noqa: DJ001
                                       blank=True)
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    # The partner distribution (partners.Distribution, flow 1) that reserved this code; kept after the member
    # registers it, so the distribution can count its registered and used codes. A plain id: partners sits above
    # coupons, and the code table carries no per-row foreign-key triggers (see above).
    distribution_id = models.BigIntegerField(_("distribution"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon code")
        verbose_name_plural = _("coupon codes")
        constraints = [
            # (tenant, code), not (code): a code is unique within its tenant (issue #23). Every lookup by code names
            # the tenant, so it is one probe of this index — another tenant's code is as cheap to refuse as an unknown
            # one (no heap visit to a foreign row) — and the key holds the distribution column (Citus, partitions).
            # Under the database's C collation the index also serves ``tenant_id = … AND code LIKE 'PREFIX%'``.
            models.UniqueConstraint(fields=["tenant", "code"], name="code_unique_per_tenant"),
            models.CheckConstraint(
                condition=Q(status__in=["AVAILABLE", "MAPPED", "DISTRIBUTED", "ISSUED", "LOCKED", "USED", "EXPIRED",
                                        "REVOKED"]),
                name="code_status_valid",
            ),
            models.CheckConstraint(condition=~Q(status__in=["AVAILABLE", "MAPPED", "DISTRIBUTED"])
                                   | Q(member_id__isnull=True),
                                   name="code_unissued_has_no_member"),
            # A reserved code always names the distribution that holds it (R-PART-4).
            models.CheckConstraint(condition=~Q(status="DISTRIBUTED") | Q(distribution_id__isnull=False),
                                   name="code_distributed_has_distribution"),
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
            models.Index(fields=["valid_until"], condition=Q(valid_until__isnull=False,
                                                             status__in=["AVAILABLE", "MAPPED", "DISTRIBUTED",
                                                                         "ISSUED"]),
                         name="code_expiry"),
            models.Index(fields=["distribution_id", "id"], condition=Q(distribution_id__isnull=False),
                         name="code_distribution"),
            models.Index(fields=["batch", "id"], name="code_batch"),
        ]

    def __str__(self) -> str:
        return self.code


class InventoryCounter(models.Model):
    """Issued/used counts of an inventory, split over shards so concurrent claims don't queue on one row.

    A claim or redemption adds to the shard of its member (``coupons.services.counters``) in its own transaction; the
    inventory's figure is the sum of its shards. ``manage.py reconcile`` compares them with the rows they count.
    """

    SHARDS = 16

    # The parent's tenant, copied: the distribution key (#23) — every tenant table carries it, and its keys to
    # other tenant tables are (tenant_id, …_id) in the database (core/keys.py).
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.ForeignKey(CouponInventory, db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.CASCADE,
                                  related_name="counters")
    shard = models.PositiveSmallIntegerField(_("shard"))
    issued = models.BigIntegerField(_("issued"), default=0)
    used = models.BigIntegerField(_("used"), default=0)
    used_discount = MoneyField(_("discount used"), default=0)

    class Meta:
        verbose_name = _("inventory counter")
        verbose_name_plural = _("inventory counters")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "inventory", "shard"], name="counter_unique_shard"),
            models.CheckConstraint(condition=Q(shard__lt=16), name="counter_shard_range"),
        ]

    def __str__(self) -> str:
        return f"{self.inventory_id}#{self.shard}"


class CouponIssue(models.Model):
    """Issue history (R-DOM): who got which code, when, how, and through which client or operator."""

    class Via(models.TextChoices):
        INVENTORY = "inventory", _("claim by inventory id")
        PROMO_CODE = "promo_code", _("claim by promo code")
        CODE = "code", _("registration of a unique code")
        PARTNER_CODE = "partner_code", _("registration of a partner code")
        GRANT = "grant", _("grant")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.ForeignKey(CouponInventory, db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.PROTECT,
                                  related_name="issues")
    coupon = models.OneToOneField(CouponCode, db_constraint=False,
                                  verbose_name=_("coupon"), on_delete=models.PROTECT, related_name="issue")
    member_id = models.CharField(_("member ID"), max_length=64)
    # The member's n-th coupon of this inventory: UNIQUE(inventory, member, slot) with slot ≤ the per-member limit
    # is the database's last guard against issuing a member more than the limit (R-ISS-3/4).
    slot = models.PositiveIntegerField(_("slot"))
    via = models.CharField(_("issued via"), max_length=16, choices=Via.choices)
    client = models.ForeignKey("core.ApiClient", verbose_name=_("API client"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("operator"), null=True, blank=True,
                                 on_delete=models.PROTECT,
                                 related_name="+")
    grant = models.ForeignKey("CouponGrant", db_constraint=False,
                              verbose_name=_("grant"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="issues")
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    device_id = models.CharField(_("device ID"), max_length=128, blank=True)
    issued_at = models.DateTimeField(_("issued at"))

    class Meta:
        verbose_name = _("coupon issue")
        verbose_name_plural = _("coupon issues")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "inventory", "member_id", "slot"],
                                    name="issue_unique_member_slot"),
            models.CheckConstraint(condition=Q(slot__gte=1), name="issue_slot_positive"),
        ]
        indexes = [
            models.Index(fields=["tenant", "issued_at"], name="issue_tenant_time"),
            models.Index(fields=["inventory", "issued_at"], name="issue_inventory_time"),
            models.Index(fields=["tenant", "member_id"], name="issue_member"),
        ]

    def __str__(self) -> str:
        return gettext("%(code)s to %(member)s") % {"code": self.coupon_id and self.coupon.code, "member": self.member_id}


class CouponUsage(models.Model):
    """Redemption history — the accounting log (R-USE-4). A full refund stamps ``refunded_at``; rows are never
    deleted. At most one un-refunded usage per code: the database's last guard against double redemption."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.ForeignKey(CouponInventory, db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.PROTECT,
                                  related_name="usages")
    coupon = models.ForeignKey(CouponCode, db_constraint=False,
                               verbose_name=_("coupon"), on_delete=models.PROTECT, related_name="usages")
    member_id = models.CharField(_("member ID"), max_length=64)
    order_id = models.CharField(_("order ID"), max_length=64)
    order_amount = MoneyField(_("order amount"))
    discount = MoneyField(_("discount"))
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    payment_method = models.CharField(_("payment method"), max_length=8, blank=True)
    client = models.ForeignKey("core.ApiClient", verbose_name=_("API client"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    device_id = models.CharField(_("device ID"), max_length=128, blank=True)
    used_at = models.DateTimeField(_("used at"))
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon usage")
        verbose_name_plural = _("coupon usages")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "coupon"], condition=Q(refunded_at__isnull=True),
                                    name="usage_one_active_per_coupon"),
            models.CheckConstraint(condition=Q(discount__gte=0) & Q(order_amount__gte=0) & Q(
                discount__lte=F("order_amount")), name="usage_amounts_valid"),
        ]
        indexes = [
            models.Index(fields=["tenant", "used_at"], name="usage_tenant_time"),
            models.Index(fields=["inventory", "used_at"], name="usage_inventory_time"),
            models.Index(fields=["coupon", "order_id"], name="usage_coupon_order"),
            # the console's usage search by order or member (R-OPS: indexed searches on big tables)
            models.Index(fields=["tenant", "order_id"], name="usage_tenant_order"),
            models.Index(fields=["tenant", "member_id"], name="usage_tenant_member"),
        ]

    def __str__(self) -> str:
        return gettext("order %(order)s of %(member)s") % {"order": self.order_id, "member": self.member_id}


class CouponGrant(models.Model):
    """A targeted grant of one inventory to a list of members (R-ISS-1/2). Large ones run as a job."""

    class Status(models.TextChoices):
        # issue #20: a grant to at least the tenant's threshold of members waits for an approver; approved it
        # becomes PENDING and its job is queued; rejected, nothing is issued.
        AWAITING_APPROVAL = "AWAITING_APPROVAL", _("awaiting approval")
        PENDING = "PENDING", _("pending")
        RUNNING = "RUNNING", _("running")
        COMPLETED = "COMPLETED", _("completed")
        FAILED = "FAILED", _("failed")
        REJECTED = "REJECTED", _("rejected")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    public_id = PublicIdField(_("public ID"))
    inventory = models.ForeignKey(CouponInventory, db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.PROTECT,
                                  related_name="grants")
    client = models.ForeignKey("core.ApiClient", verbose_name=_("API client"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("operator"), null=True, blank=True,
                                 on_delete=models.PROTECT,
                                 related_name="+")
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(_("total"), default=0)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    issued = models.PositiveIntegerField(_("issued"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("decided by"), null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    rejection_reason = models.TextField(_("rejection reason"), blank=True)

    class Meta:
        verbose_name = _("coupon grant")
        verbose_name_plural = _("coupon grants")
        ordering = ["-created_at"]
        permissions = [("approve_coupongrant", "Can approve or reject grants")]
        constraints = [
            models.CheckConstraint(condition=Q(processed__lte=F("total")), name="grant_processed_within_total"),
            models.CheckConstraint(condition=Q(issued__lte=F("processed")), name="grant_issued_within_processed"),
            # Four eyes (issue #20): the operator who asked never decides. NULL (an API client asked) passes.
            models.CheckConstraint(condition=Q(decided_by__isnull=True) | Q(operator__isnull=True)
                                   | ~Q(decided_by=F("operator")), name="grant_decider_not_requester"),
        ]
        indexes = [models.Index(fields=["tenant", "created_at"], condition=Q(status="AWAITING_APPROVAL"),
                                name="grant_awaiting")]

    def __str__(self) -> str:
        return gettext("grant %(id)s") % {"id": self.public_id}


class CouponGrantMember(models.Model):
    """One member of a grant: each member at most once per grant (unique), processed one by one, resumable."""

    class Status(models.TextChoices):
        PENDING = "PENDING", _("pending")
        ISSUED = "ISSUED", _("issued")
        FAILED = "FAILED", _("failed")

    # The parent's tenant, copied: the distribution key (#23) — every tenant table carries it, and its keys to
    # other tenant tables are (tenant_id, …_id) in the database (core/keys.py).
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    grant = models.ForeignKey(CouponGrant, db_constraint=False,
                              verbose_name=_("grant"), on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(_("member ID"), max_length=64)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    coupon = models.ForeignKey(CouponCode, db_constraint=False,
                               verbose_name=_("coupon"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    error_code = models.CharField(_("error code"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("grant member")
        verbose_name_plural = _("grant members")
        constraints = [models.UniqueConstraint(fields=["tenant", "grant", "member_id"], name="grant_member_once")]
        indexes = [models.Index(fields=["grant", "id"], condition=Q(status="PENDING"), name="grant_member_pending")]

    def __str__(self) -> str:
        return self.member_id  # not "CouponGrantMember object (1)" (issue #20)


class AudienceEntry(models.Model):
    """A member allowed to claim an inventory whose policy's audience is ``whitelist`` (R-POL-3)."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.ForeignKey(CouponInventory, db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.CASCADE,
                                  related_name="audience")
    member_id = models.CharField(_("member ID"), max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("audience entry")
        verbose_name_plural = _("audience entries")
        constraints = [models.UniqueConstraint(fields=["tenant", "inventory", "member_id"],
                                               name="audience_unique_member")]

    def __str__(self) -> str:
        return self.member_id  # not "AudienceEntry object (1)" (issue #20)


# --- Code generation progress and partner hand-overs (issue #3; coupons/services/generation.py; partners/distribution.py) ---


class CouponBatchChunk(models.Model):
    """One committed chunk of a batch's codes (R-CODE-5).

    Written in the same transaction as the chunk's codes and the batch's ``generated_count``, so after a crash the
    chunks present are exactly the codes present; unique per (batch, chunk_no), so no chunk is ever written twice.
    """

    # The parent's tenant, copied: the distribution key (#23) — every tenant table carries it, and its keys to
    # other tenant tables are (tenant_id, …_id) in the database (core/keys.py).
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(CouponBatch, db_constraint=False,
                              verbose_name=_("batch"), on_delete=models.PROTECT, related_name="chunks")
    chunk_no = models.PositiveIntegerField(_("chunk number"))
    size = models.PositiveIntegerField(_("size"))
    first_code = models.CharField(_("first code"), max_length=48)
    last_code = models.CharField(_("last code"), max_length=48)
    attempts = models.PositiveSmallIntegerField(_("attempts"),
        default=1, help_text=_("COPY attempts: more than 1 when the unique index caught codes the Bloom pre-check could "
                             "not know about (e.g. written by a concurrent batch)."))
    candidates_rejected = models.PositiveIntegerField(_("candidates rejected"),
        default=0, help_text=_("Random candidates dropped and replaced: duplicates in the draw, Bloom 'maybe present' "
                             "answers, and codes the unique index refused."))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"),
                                              help_text=_("Wall time since the previous commit of the same run."))
    committed_at = models.DateTimeField(_("committed at"))

    class Meta:
        verbose_name = _("batch chunk")
        verbose_name_plural = _("batch chunks")
        ordering = ["batch", "chunk_no"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "batch", "chunk_no"], name="chunk_unique_per_batch"),
            models.CheckConstraint(condition=Q(size__gte=1), name="chunk_size_positive"),
            models.CheckConstraint(condition=Q(first_code__lte=F("last_code")), name="chunk_code_range"),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}#{self.chunk_no}"


class CouponCodeExport(models.Model):
    """A batch's codes handed to a partner as a file, as recorded before issue #15: who, when, how many.

    Superseded by ``partners.Distribution``, which reserves the codes it hands over (these records did not: their
    codes stayed AVAILABLE). Kept, read-only, for the hand-overs recorded before; nothing creates new ones.
    """

    class Format(models.TextChoices):
        CSV = "csv", _("CSV")
        XLSX = "xlsx", _("Excel (XLSX)")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(CouponBatch, db_constraint=False,
                              verbose_name=_("batch"), on_delete=models.PROTECT, related_name="exports")
    partner_name = models.CharField(_("partner"), max_length=200)
    format = models.CharField(_("format"), max_length=8, choices=Format.choices)
    code_count = models.PositiveBigIntegerField(_("number of codes"))
    last_code_id = models.BigIntegerField(_("last code ID"), null=True, blank=True)
    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("exported by"), null=True, blank=True,
                                    on_delete=models.PROTECT,
                                    related_name="+")
    actor_label = models.CharField(_("by"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner export")
        verbose_name_plural = _("partner exports")
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(format__in=["csv", "xlsx"]), name="export_format_valid")]
        indexes = [models.Index(fields=["batch", "-created_at"], name="export_batch_time")]

    def __str__(self) -> str:
        return f"{self.batch_id} → {self.partner_name} ({self.format}, {self.code_count})"
