"""Rewards (SPEC §12, seed 003): rules per trigger, the grants they made, and the members' points ledger."""
from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import ApiClient, Tenant
from coupons.models import CouponCode, CouponInventory


class Trigger(models.TextChoices):
    SIGNUP = "signup", _("signup")
    BIRTHDAY = "birthday", _("birthday")
    REVIEW = "review", _("review")
    PURCHASE_CONFIRMED = "purchase_confirmed", _("purchase confirmed")


BASIS_POINTS = 10_000  # 100 basis points = 1 %


class RewardRule(models.Model):
    """What a trigger grants in one tenant (R-REW-1/2). Grants copy the amounts, so editing a rule never changes
    what was already granted."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    trigger = models.CharField(_("trigger"), max_length=32, choices=Trigger.choices)
    inventory = models.ForeignKey(CouponInventory, db_constraint=False,
                                  verbose_name=_("inventory"), null=True, blank=True,
                                  on_delete=models.PROTECT,
                                  related_name="+", help_text=_("Optional: the member also gets the next coupon of "
                                                              "this inventory."))
    points = models.PositiveIntegerField(_("points"), default=0, help_text=_("Signup and birthday: points granted."))
    review_text_points = models.PositiveIntegerField(_("review text points"), default=0,
                                                     help_text=_("Review without an image."))
    review_image_points = models.PositiveIntegerField(_("review image points"), default=0,
                                                      help_text=_("Review with an image."))
    purchase_rate_bp = models.PositiveIntegerField(_("purchase rate (basis points)"),
        default=0, help_text=_("Purchase confirmed: points = payment amount × rate, in basis points (100 = 1 %), "
                             "rounded down to the tenant's rounding unit."))
    points_valid_days = models.PositiveIntegerField(_("points valid for (days)"), null=True, blank=True,
                                                    help_text=_("Points expire this many days after the grant; "
                                                              "empty = never."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("reward rule")
        verbose_name_plural = _("reward rules")
        ordering = ["trigger", "-is_active", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "trigger"], condition=Q(is_active=True),
                                    name="rewardrule_one_active_per_trigger"),
            models.CheckConstraint(condition=Q(purchase_rate_bp__lte=BASIS_POINTS),
                                   name="rewardrule_rate_at_most_100_percent"),
            models.CheckConstraint(condition=Q(points_valid_days__isnull=True) | Q(points_valid_days__gte=1),
                                   name="rewardrule_valid_days_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_trigger_display()})"


class RewardGrant(models.Model):
    """One trigger's outcome for one member. UNIQUE(tenant, member, trigger, reference) is the idempotency guard:
    a repeat finds this row and grants nothing (R-REW-2)."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(_("member ID"), max_length=64)
    trigger = models.CharField(_("trigger"), max_length=32, choices=Trigger.choices)
    reference = models.CharField(_("reference"), max_length=128,
                                 help_text=_("What the trigger is about: order number, review id, "
                                             "the year for birthdays, the member for signup."))
    rule = models.ForeignKey(RewardRule, db_constraint=False,
                             verbose_name=_("rule"), null=True, on_delete=models.PROTECT,
                             related_name="grants")
    rule_snapshot = models.JSONField(_("rule at grant time"), default=dict)
    points = models.PositiveBigIntegerField(_("points"), default=0)
    coupon = models.ForeignKey(CouponCode, db_constraint=False,
                               verbose_name=_("coupon"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    coupon_error = models.CharField(_("coupon error"), max_length=64, blank=True,
                                    help_text=_("Why the rule's coupon could not be issued (points were still granted)."))
    client = models.ForeignKey(ApiClient, verbose_name=_("API client"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("reward grant")
        verbose_name_plural = _("reward grants")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member_id", "trigger", "reference"],
                                    name="rewardgrant_once_per_reference"),
        ]
        indexes = [models.Index(fields=["tenant", "member_id"], name="rewardgrant_member")]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} {self.reference} → {self.member_id}"


class MemberPoints(models.Model):
    """A member's running total of the ledger, and the row every points change locks first."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(_("member ID"), max_length=64)
    balance = models.BigIntegerField(_("balance"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member points balance")
        verbose_name_plural = _("member points")
        ordering = ["member_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member_id"], name="memberpoints_one_per_member"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="memberpoints_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.balance}"


class PointsEntry(models.Model):
    """One ledger line (R-REW-3): a credit (+) or a debit (−). Debits consume credits first-to-expire-first, which
    is what ``remaining`` tracks; the expiry job debits a credit's remainder exactly once (``expired_entry``)."""

    class Reason(models.TextChoices):
        GRANT = "grant", _("reward grant")
        SPEND = "spend", _("spent")
        EXPIRY = "expiry", _("expired")
        REFUND = "refund", _("refunded")
        EXCHANGE = "exchange", _("exchanged for a coupon")
        ADJUSTMENT = "adjustment", _("manual adjustment")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(_("member ID"), max_length=64)
    amount = models.BigIntegerField(_("amount"))
    remaining = models.BigIntegerField(_("remaining"), default=0,
                                       help_text=_("Credits: the part not yet spent or expired."))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    grant = models.OneToOneField(RewardGrant, db_constraint=False,
                                 verbose_name=_("reward grant"), null=True, blank=True,
                                 on_delete=models.PROTECT,
                                 related_name="points_entry")
    expired_entry = models.OneToOneField("self", db_constraint=False,
                                         verbose_name=_("expired credit"), null=True, blank=True,
                                         on_delete=models.PROTECT,
                                         related_name="expiry_debit")
    # Issue #16 (all nullable, so code of the previous release keeps inserting rows during a deploy — R-OPS-4).
    # NULL = not a spend: the partial unique index (tenant, order_id) skips NULLs.
    order_id = models.CharField(_("order ID"), max_length=64, null=True, blank=True,  # noqa: DJ001
                                help_text=_("Spends: the order the points paid for (one spend per order)."))
    coupon = models.OneToOneField(CouponCode, db_constraint=False, verbose_name=_("coupon"), null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+",
                                  help_text=_("Exchanges: the coupon the points bought."))
    refund_of = models.OneToOneField("PointsAllocation", db_constraint=False,
                                     verbose_name=_("refunded allocation"), null=True,
                                     blank=True, on_delete=models.PROTECT, related_name="refund")
    note = models.TextField(_("note"), null=True, blank=True,  # noqa: DJ001 nullable for the deploy, as above
                            help_text=_("Manual adjustments: why (required)."))
    client = models.ForeignKey(ApiClient, verbose_name=_("API client"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="pointsentry_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(amount__gt=0, remaining__gte=0, remaining__lte=models.F("amount"))
                | Q(amount__lt=0, remaining=0),
                name="pointsentry_remaining_within_credit"),
            models.CheckConstraint(condition=Q(reason="grant", amount__gt=0) | ~Q(reason="grant"),
                                   name="pointsentry_grant_is_credit"),
            models.CheckConstraint(
                condition=(Q(reason="expiry", amount__lt=0, expired_entry__isnull=False)
                           | (~Q(reason="expiry") & Q(expired_entry__isnull=True))),
                name="pointsentry_expiry_debits_a_credit"),
            # Issue #16: a spend or an exchange is a debit; a refund credits back one allocation, once.
            models.CheckConstraint(condition=~Q(reason__in=["spend", "exchange"]) | Q(amount__lt=0),
                                   name="pointsentry_spend_is_debit"),
            models.CheckConstraint(
                condition=(Q(reason="refund", amount__gt=0, refund_of__isnull=False)
                           | (~Q(reason="refund") & Q(refund_of__isnull=True))),
                name="pointsentry_refund_credits_an_allocation"),
            models.CheckConstraint(condition=~Q(reason="adjustment") | Q(note__isnull=False) & ~Q(note=""),
                                   name="pointsentry_adjustment_has_note"),
            models.UniqueConstraint(fields=["tenant", "order_id"],
                                    condition=Q(reason="spend", order_id__isnull=False),
                                    name="pointsentry_one_spend_per_order"),
        ]
        indexes = [
            models.Index(fields=["tenant", "member_id", "-created_at"], name="pointsentry_member_time"),
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0), name="pointsentry_open_expiring"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.amount:+d} {self.get_reason_display()}"


class PointsAllocation(models.Model):
    """Which credit a debit consumed, and how much (issue #16): a refund gives each part back with the expiry of
    the credit it came from, and only once (``PointsEntry.refund_of`` is unique)."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    debit = models.ForeignKey(PointsEntry, db_constraint=False, verbose_name=_("debit"), on_delete=models.PROTECT,
                              related_name="allocations")
    credit = models.ForeignKey(PointsEntry, db_constraint=False, verbose_name=_("credit"), on_delete=models.PROTECT,
                               related_name="consumed_by")
    amount = models.BigIntegerField(_("amount"))

    class Meta:
        verbose_name = _("points allocation")
        verbose_name_plural = _("points allocations")
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="pointsallocation_amount_positive")]

    def __str__(self) -> str:
        return f"{self.debit_id} ← {self.credit_id}: {self.amount}"


class ExchangeOffer(models.Model):
    """An inventory an operator offers for points (issue #16, seed 003): a member exchanges ``points`` for the next
    coupon of the inventory."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.OneToOneField(CouponInventory, db_constraint=False,
                                     verbose_name=_("inventory"), on_delete=models.PROTECT,
                                     related_name="exchange_offer")
    points = models.PositiveBigIntegerField(_("price in points"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("points exchange offer")
        verbose_name_plural = _("points exchange offers")
        ordering = ["-is_active", "inventory_id"]
        constraints = [models.CheckConstraint(condition=Q(points__gte=1), name="exchangeoffer_price_positive")]

    def __str__(self) -> str:
        return f"{self.inventory} ← {self.points}"


class MemberBirthday(models.Model):
    """A member's birthday as the tenant sent or uploaded it; the daily job grants the birthday reward."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(_("member ID"), max_length=64)
    month = models.PositiveSmallIntegerField(_("month"))
    day = models.PositiveSmallIntegerField(_("day"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member birthday")
        verbose_name_plural = _("member birthdays")
        ordering = ["month", "day", "member_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member_id"], name="memberbirthday_one_per_member"),
            models.CheckConstraint(condition=Q(month__gte=1, month__lte=12, day__gte=1, day__lte=31),
                                   name="memberbirthday_month_day_range"),
        ]
        indexes = [models.Index(fields=["tenant", "month", "day"], name="memberbirthday_date")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:02d}-{self.day:02d}"
