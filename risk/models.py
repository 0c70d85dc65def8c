"""Risk control (SPEC §11): daily frequency limits (R-RISK-1), member risk levels (R-RISK-2), budget spend with
alarms and their signed webhooks (R-RISK-3).

Writers live in ``risk.services`` (configuration), ``risk.limits`` (frequency counters), ``risk.budgets`` (spend,
alarms) and ``risk.webhooks`` (outbox delivery). Invariants a row can break are CheckConstraints.
"""
from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext, gettext_lazy as _

from core.fields import MoneyField
from core.models import Tenant


class FrequencyLimit(models.Model):
    """At most ``max_per_day`` claims (or uses) per value of one dimension per day in the tenant's time zone, for one
    inventory or for every inventory of one policy (R-RISK-1)."""

    class Action(models.TextChoices):
        CLAIM = "claim", _("claim")
        USE = "use", _("use (redeem)")

    class Dimension(models.TextChoices):
        DEVICE = "device_id", _("device id")
        MEMBER = "member", _("member")
        IP = "ip", _("IP address")
        PHONE = "phone", _("phone number")
        POSTCODE = "postcode", _("postcode")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.ForeignKey("coupons.CouponInventory", db_constraint=False,
                                  verbose_name=_("inventory"), null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="frequency_limits",
                                  help_text=_("The limit counts this inventory's claims/uses. Give this or a policy."))
    policy = models.ForeignKey("coupons.CouponPolicy", db_constraint=False,
                               verbose_name=_("policy"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="frequency_limits",
                               help_text=_("The limit counts claims/uses of every inventory of this policy together."))
    action = models.CharField(_("action"), max_length=8, choices=Action.choices)
    dimension = models.CharField(_("dimension"), max_length=16, choices=Dimension.choices)
    max_per_day = models.PositiveIntegerField(_("max per day"),
                                              help_text=_("Successful claims/uses allowed per value per day."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("frequency limit")
        verbose_name_plural = _("frequency limits")
        ordering = ["action", "dimension"]
        constraints = [
            models.CheckConstraint(condition=Q(inventory__isnull=False, policy__isnull=True)
                                   | Q(inventory__isnull=True, policy__isnull=False), name="freq_one_scope"),
            models.CheckConstraint(condition=Q(action__in=["claim", "use"]), name="freq_action_valid"),
            models.CheckConstraint(condition=Q(dimension__in=["device_id", "member", "ip", "phone", "postcode"]),
                                   name="freq_dimension_valid"),
            models.CheckConstraint(condition=Q(max_per_day__gte=1), name="freq_max_positive"),
            models.UniqueConstraint(fields=["tenant", "inventory", "action", "dimension"],
                                    condition=Q(inventory__isnull=False),
                                    name="freq_unique_inventory_rule"),
            models.UniqueConstraint(fields=["tenant", "policy", "action", "dimension"],
                                    condition=Q(policy__isnull=False),
                                    name="freq_unique_policy_rule"),
        ]

    def __str__(self) -> str:
        scope = (gettext("inventory %(name)s") % {"name": self.inventory} if self.inventory_id else
                 gettext("policy %(name)s") % {"name": self.policy})
        return gettext("%(action)s ≤ %(max)s/day per %(dimension)s — %(scope)s") % {
            "action": self.get_action_display(), "max": self.max_per_day, "dimension": self.get_dimension_display(),
            "scope": scope}

    @property
    def scope_label(self) -> str:
        return f"inventory {self.inventory}" if self.inventory_id else f"policy {self.policy}"


class FrequencyCounter(models.Model):
    """The counters of ``risk.limits`` when Redis is not configured: one row per counter key and day."""

    key = models.CharField(_("key"), max_length=200)
    day = models.DateField(_("day"))
    count = models.PositiveIntegerField(_("count"), default=0)

    class Meta:
        verbose_name = _("frequency counter")
        verbose_name_plural = _("frequency counters")
        constraints = [models.UniqueConstraint(fields=["key", "day"], name="freq_counter_unique_key_day")]

    def __str__(self) -> str:
        return f"{self.key} {self.day:%Y-%m-%d}"


class MemberRisk(models.Model):
    """A member's risk level in a tenant (R-RISK-2): blocked members can neither claim nor use coupons; allowed
    (trusted) members skip the daily frequency limits; watched members are logged. Past ``expires_at`` the entry
    no longer counts."""

    class Level(models.TextChoices):
        BLOCK = "block", _("blocked")
        WATCH = "watch", _("watched")
        ALLOW = "allow", _("allowed (trusted)")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(_("member ID"), max_length=64)
    level = models.CharField(_("level"), max_length=8, choices=Level.choices)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, help_text=_("Empty = until removed."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("member risk level")
        verbose_name_plural = _("member risk levels")
        ordering = ["member_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "member_id"], name="member_risk_unique_member"),
            models.CheckConstraint(condition=Q(level__in=["block", "watch", "allow"]), name="member_risk_level_valid"),
            models.CheckConstraint(condition=~Q(member_id=""), name="member_risk_member_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} ({self.get_level_display()})"


def default_thresholds() -> list[int]:
    return [80, 100]


class InventoryBudget(models.Model):
    """What an inventory has spent of its budgets (the limits are CouponInventory.issue_budget_count/amount and
    use_budget_count/amount), and the percentages that raise an alarm (R-RISK-3).

    ``risk.budgets`` adds to it with ``UPDATE … WHERE spent + x <= budget`` in the claim's or redemption's
    transaction, so concurrent requests queue on this row and the budget is never exceeded.
    """

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.OneToOneField("coupons.CouponInventory", db_constraint=False,
                                     verbose_name=_("inventory"), on_delete=models.PROTECT,
                                     related_name="budget_spend")
    issued_count = models.BigIntegerField(_("issued count"), default=0)
    issued_amount = MoneyField(_("issued amount"), default=0)
    used_count = models.BigIntegerField(_("used count"), default=0)
    used_amount = MoneyField(_("used amount"), default=0)
    alarm_thresholds = ArrayField(models.PositiveSmallIntegerField(), verbose_name=_("alarm thresholds"),
                                  default=default_thresholds, blank=True,
                                  help_text=_("Percentages of a budget that raise an alarm once each, e.g. 80, 100."))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("inventory budget")
        verbose_name_plural = _("inventory budgets")
        constraints = [
            models.CheckConstraint(condition=Q(issued_count__gte=0, issued_amount__gte=0, used_count__gte=0,
                                               used_amount__gte=0), name="budget_spend_not_negative"),
        ]

    def __str__(self) -> str:
        return gettext("budget of %(inventory)s") % {"inventory": self.inventory}


class Alarm(models.Model):
    """A budget threshold crossed (R-RISK-3). Raised once per (inventory, budget, threshold): the crossing request
    writes it, its log line and its webhook deliveries in its own transaction."""

    class Budget(models.TextChoices):
        ISSUE_COUNT = "issue_count", _("issue budget (count)")
        ISSUE_AMOUNT = "issue_amount", _("issue budget (amount)")
        USE_COUNT = "use_count", _("use budget (count)")
        USE_AMOUNT = "use_amount", _("use budget (amount)")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    inventory = models.ForeignKey("coupons.CouponInventory", db_constraint=False,
                                  verbose_name=_("inventory"), on_delete=models.PROTECT,
                                  related_name="alarms")
    budget = models.CharField(_("budget"), max_length=16, choices=Budget.choices)
    threshold = models.PositiveSmallIntegerField(_("threshold"), help_text=_("Percent of the budget."))
    spent = models.BigIntegerField(_("spent"))
    limit = models.BigIntegerField(_("limit"))
    raised_at = models.DateTimeField(_("raised at"))
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("acknowledged by"), null=True,
                                        blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("alarm")
        verbose_name_plural = _("alarms")
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "inventory", "budget", "threshold"],
                                    name="alarm_once_per_threshold"),
            models.CheckConstraint(condition=Q(threshold__gte=1, threshold__lte=100), name="alarm_threshold_range"),
        ]
        indexes = [models.Index(fields=["tenant", "raised_at"], condition=Q(acknowledged_at__isnull=True),
                                name="alarm_unacknowledged")]

    def __str__(self) -> str:
        return gettext("%(inventory)s: %(budget)s at %(threshold)s %%") % {
            "inventory": self.inventory, "budget": self.get_budget_display(), "threshold": self.threshold}


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# The webhook events (docs/WEBHOOKS.md): what an endpoint may subscribe to.
WEBHOOK_EVENTS: dict[str, Any] = {
    "budget.alarm": _("budget alarm"),
    "coupon.issued": _("coupon issued"),
    "coupon.redeemed": _("coupon redeemed"),
    "coupon.refunded": _("coupon refunded"),
    "coupon.expiring": _("coupon expiring soon"),
    "coupon.expired": _("coupon expired"),
    "points.expiring": _("points expiring soon"),
}


def default_webhook_events() -> list[str]:
    return ["budget.alarm"]


class WebhookEndpoint(models.Model):
    """Where a tenant wants its events POSTed — the ones ticked in ``events`` — signed with ``secret``
    (HMAC-SHA256 of the body)."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=500, help_text=_("http(s) URL that receives a JSON POST per alarm."))
    secret = models.CharField(_("secret"), max_length=100, default=new_webhook_secret,
                              help_text=_("Verify X-Coupon-Signature = 'sha256=' + hex HMAC-SHA256(secret, body)."))
    # db_default: endpoints saved by the code before this column (a rolling deploy, R-OPS-4) keep getting alarms.
    events = ArrayField(models.CharField(max_length=32), verbose_name=_("events"), default=default_webhook_events,
                        db_default=["budget.alarm"],
                        help_text=_("The events this endpoint receives (docs/WEBHOOKS.md)."))
    notice_days = models.PositiveSmallIntegerField(
        _("notice (days)"), default=3, db_default=3,
        help_text=_("coupon.expiring and points.expiring are sent this many days before the end (1–90), once per "
                    "coupon or points credit."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(url__regex=r"^https?://"), name="webhook_url_http"),
            models.CheckConstraint(condition=Q(events__contained_by=list(WEBHOOK_EVENTS)) & Q(events__len__gte=1),
                                   name="webhook_events_known"),
            models.CheckConstraint(condition=Q(notice_days__gte=1, notice_days__lte=90),
                                   name="webhook_notice_days_range"),
        ]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """The outbox: one row per (event, endpoint), written in the transaction that raised the event, delivered by
    a job (queue ``default``) and by ``manage.py deliver_webhooks``; ``body`` is the exact bytes signed and sent."""

    class Status(models.TextChoices):
        PENDING = "PENDING", _("pending")
        DELIVERED = "DELIVERED", _("delivered")
        FAILED = "FAILED", _("failed (gave up)")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    endpoint = models.ForeignKey(WebhookEndpoint, db_constraint=False,
                                 verbose_name=_("endpoint"), on_delete=models.PROTECT,
                                 related_name="deliveries")
    alarm = models.ForeignKey(Alarm, db_constraint=False,
                              verbose_name=_("alarm"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="deliveries")
    event = models.CharField(_("event"), max_length=64)
    # The event's id (the body's "id", header X-Coupon-Event-Id): receivers ignore an id they have seen (issue #16).
    event_id = models.CharField(_("event ID"), max_length=40, blank=True, db_default="", default="")
    # For events sent once per thing (coupon.expiring: once per coupon): UNIQUE(endpoint, event_key) holds it even
    # when two scans run at once.
    event_key = models.CharField(_("event key"), max_length=120, blank=True, db_default="", default="")
    body = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["PENDING", "DELIVERED", "FAILED"]),
                                   name="webhook_delivery_status_valid"),
            models.CheckConstraint(condition=~Q(status="DELIVERED") | Q(delivered_at__isnull=False),
                                   name="webhook_delivered_has_time"),
            models.UniqueConstraint(fields=["tenant", "endpoint", "event_key"], condition=~Q(event_key=""),
                                    name="webhook_delivery_once_per_key"),
        ]
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(status="PENDING"),
                                name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: when, the answer's status or the error, how long it took."""

    # The parent's tenant, copied: the distribution key (#23) — every tenant table carries it, and its keys to
    # other tenant tables are (tenant_id, …_id) in the database (core/keys.py).
    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    delivery = models.ForeignKey(WebhookDelivery, db_constraint=False,
                                 verbose_name=_("delivery"), on_delete=models.CASCADE,
                                 related_name="attempt_log")
    attempted_at = models.DateTimeField(_("attempted at"))
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["attempted_at"]

    def __str__(self) -> str:
        return f"#{self.pk}"  # a row of its delivery's inline: the columns say the rest
