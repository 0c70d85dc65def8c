"""Rewards (SPEC §12, seed 003): rules per trigger, the grants they made, and the members' points ledger."""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import ApiClient, Tenant
from coupons.models import CouponCode, CouponInventory


class Trigger(models.TextChoices):
    SIGNUP = "signup", "signup"
    BIRTHDAY = "birthday", "birthday"
    REVIEW = "review", "review"
    PURCHASE_CONFIRMED = "purchase_confirmed", "purchase confirmed"


BASIS_POINTS = 10_000  # 100 basis points = 1 %


class RewardRule(models.Model):
    """What a trigger grants in one tenant (R-REW-1/2). Grants copy the amounts, so editing a rule never changes
    what was already granted."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    inventory = models.ForeignKey(CouponInventory, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+", help_text="Optional: the member also gets the next coupon of "
                                                              "this inventory.")
    points = models.PositiveIntegerField(default=0, help_text="Signup and birthday: points granted.")
    review_text_points = models.PositiveIntegerField(default=0, help_text="Review without an image.")
    review_image_points = models.PositiveIntegerField(default=0, help_text="Review with an image.")
    purchase_rate_bp = models.PositiveIntegerField(
        default=0, help_text="Purchase confirmed: points = payment amount × rate, in basis points (100 = 1 %), "
                             "rounded down to the tenant's rounding unit.")
    points_valid_days = models.PositiveIntegerField(null=True, blank=True,
                                                    help_text="Points expire this many days after the grant; "
                                                              "empty = never.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
        return f"{self.name} ({self.trigger})"


class RewardGrant(models.Model):
    """One trigger's outcome for one member. UNIQUE(tenant, member, trigger, reference) is the idempotency guard:
    a repeat finds this row and grants nothing (R-REW-2)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(max_length=64)
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    reference = models.CharField(max_length=128, help_text="What the trigger is about: order number, review id, "
                                                           "the year for birthdays, the member for signup.")
    rule = models.ForeignKey(RewardRule, null=True, on_delete=models.PROTECT, related_name="grants")
    rule_snapshot = models.JSONField(default=dict)
    points = models.PositiveBigIntegerField(default=0)
    coupon = models.ForeignKey(CouponCode, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    coupon_error = models.CharField(max_length=64, blank=True,
                                    help_text="Why the rule's coupon could not be issued (points were still granted).")
    client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member_id", "trigger", "reference"],
                                    name="rewardgrant_once_per_reference"),
        ]
        indexes = [models.Index(fields=["tenant", "member_id"], name="rewardgrant_member")]

    def __str__(self) -> str:
        return f"{self.trigger} {self.reference} → {self.member_id}"


class MemberPoints(models.Model):
    """A member's running total of the ledger, and the row every points change locks first."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(max_length=64)
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "member points"
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
        GRANT = "grant", "reward grant"
        SPEND = "spend", "spent"
        EXPIRY = "expiry", "expired"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(max_length=64)
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField(default=0, help_text="Credits: the part not yet spent or expired.")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    reference = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    grant = models.OneToOneField(RewardGrant, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="points_entry")
    expired_entry = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="expiry_debit")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "points entries"
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
        ]
        indexes = [
            models.Index(fields=["tenant", "member_id", "-created_at"], name="pointsentry_member_time"),
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0), name="pointsentry_open_expiring"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.amount:+d} {self.reason}"


class MemberBirthday(models.Model):
    """A member's birthday as the tenant sent or uploaded it; the daily job grants the birthday reward."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(max_length=64)
    month = models.PositiveSmallIntegerField()
    day = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["month", "day", "member_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member_id"], name="memberbirthday_one_per_member"),
            models.CheckConstraint(condition=Q(month__gte=1, month__lte=12, day__gte=1, day__lte=31),
                                   name="memberbirthday_month_day_range"),
        ]
        indexes = [models.Index(fields=["tenant", "month", "day"], name="memberbirthday_date")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:02d}-{self.day:02d}"
