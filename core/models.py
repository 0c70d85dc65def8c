"""Cross-cutting models: tenants, console users, API clients, the audit log and idempotency records."""
from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.validators import validate_time_zone
from django.apps import apps
from django.utils import timezone


class Tenant(models.Model):
    """A customer organisation (a card issuer, a mall). Every business row belongs to exactly one (R-TEN-1)."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    currency = models.CharField(
        _("currency"), max_length=3, default="KRW",
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Use an ISO 4217 code, e.g. KRW."))]
    )
    # Money is integer minor units; computed amounts round down to a multiple of this (KRW: 10 → 1001 becomes 1000).
    rounding_unit = models.PositiveIntegerField(_("rounding unit"), default=1, validators=[MinValueValidator(1)])
    # Console dates and times are shown in this zone (core.i18n.ConsoleLocaleMiddleware).
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Seoul", validators=[validate_time_zone],
                                 help_text=_("IANA name, e.g. Asia/Seoul."))
    # The console language of the tenant's users who have not chosen their own (issue #11).
    language = models.CharField(_("language"), max_length=8, default="ko", choices=settings.LANGUAGES)
    is_active = models.BooleanField(_("active"), default=True)
    # Four-eyes for handing out money (issue #20): at or above these sizes an approver must say yes first.
    distribution_approval_threshold = models.PositiveIntegerField(
        _("approval needed from (codes per distribution)"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("A distribution of at least this many codes to a partner waits for an approver before any code "
                    "is reserved. Empty: no approval needed."))
    grant_approval_threshold = models.PositiveIntegerField(
        _("approval needed from (members per grant)"), null=True, blank=True, validators=[MinValueValidator(1)],
        help_text=_("A grant to at least this many members waits for an approver before any coupon is issued. "
                    "Empty: no approval needed."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(rounding_unit__gte=1), name="tenant_rounding_unit_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="tenant_currency_iso"),
            models.CheckConstraint(condition=Q(distribution_approval_threshold__isnull=True)
                                   | Q(distribution_approval_threshold__gte=1),
                                   name="tenant_distribution_threshold_positive"),
            models.CheckConstraint(condition=Q(grant_approval_threshold__isnull=True)
                                   | Q(grant_approval_threshold__gte=1), name="tenant_grant_threshold_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A console user. Staff of one tenant see only that tenant (R-TEN-3); superusers see all."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="users",
                               verbose_name=_("tenant"))
    # Empty = follow the tenant's language (core.i18n.console_language).
    language = models.CharField(_("console language"), max_length=8, blank=True, default="",
                                choices=settings.LANGUAGES, help_text=_("Empty: the company's language."))

    class Meta(AbstractUser.Meta):  # type: ignore[name-defined]  # not declared by django-stubs
        swappable = "AUTH_USER_MODEL"
        constraints = [
            # A staff user without a tenant could see nothing or — worse — everything; only superusers may.
            models.CheckConstraint(
                condition=Q(is_superuser=True) | Q(is_staff=False) | Q(tenant__isnull=False),
                name="user_staff_has_tenant",
            ),
        ]


class ApiClient(models.Model):
    """A tenant's server-to-server API credential (R-TEN-2). The token is shown once and stored hashed."""

    class Scope(models.TextChoices):
        MEMBER = "member", _("member")
        OPERATOR = "operator", _("operator")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="api_clients")
    name = models.CharField(_("name"), max_length=100)
    scope = models.CharField(_("scope"), max_length=16, choices=Scope.choices, default=Scope.MEMBER)
    # Public, non-secret part of the token used to find the row; the secret part is only stored as a hash.
    key_prefix = models.CharField(_("key prefix"), max_length=16, unique=True, editable=False)
    token_hash = models.CharField(_("token hash"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    # Rotation without downtime: the token replaced by the last rotation stays valid until previous_valid_until,
    # so integrators can roll the new one out while the old one still works (two valid tokens during a rollover).
    previous_key_prefix = models.CharField(_("previous key prefix"), max_length=16, unique=True, null=True,
                                           blank=True, editable=False)
    previous_token_hash = models.CharField(_("previous token hash"), max_length=64, blank=True, editable=False)
    previous_valid_until = models.DateTimeField(_("previous token valid until"), null=True, blank=True, editable=False)
    # Optional IP allow-list: one network per line (CIDR, or a single address); empty = any address.
    allowed_networks = models.TextField(_("allowed networks"), blank=True, default="", help_text=_(
        "One IP network per line in CIDR notation (e.g. 203.0.113.0/24 or 2001:db8::/32) or a single address. "
        "Empty: requests from any address are accepted."))

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="apiclient_unique_name_per_tenant"),
            models.CheckConstraint(condition=Q(scope__in=["member", "operator"]), name="apiclient_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_scope_display()})"

    # DRF treats request.user as the authenticated principal.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def networks_list(self) -> list[str]:
        return [line.strip() for line in self.allowed_networks.splitlines() if line.strip()]

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The parsed allow-list (validated on save by ``core.services.api_client_set_networks``)."""
        return [ipaddress.ip_network(line.strip(), strict=False)
                for line in self.allowed_networks.splitlines() if line.strip()]


class AuditLog(models.Model):
    """Append-only record of every state change by a person, an API client or a job.

    A database trigger (migration 0002) refuses UPDATE and DELETE, so not even a bug or a shell can rewrite history.
    """

    class ActorType(models.TextChoices):
        USER = "user", _("console user")
        API_CLIENT = "api_client", _("API client")
        JOB = "job", _("job")
        SYSTEM = "system", _("system")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    # Actors are copied as plain values, not foreign keys: deleting a user must never touch the log.
    actor_type = models.CharField(_("actor type"), max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(_("actor ID"), max_length=64, blank=True)
    actor_label = models.CharField(_("actor label"), max_length=200, blank=True)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object ID"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="auditlog_tenant_time"),
            models.Index(fields=["object_type", "object_id"], name="auditlog_object"),
        ]

    def __str__(self) -> str:
        # in the active (tenant's) time zone, the object by its model's name: a page title the operator reads (#20)

        try:
            kind = str(apps.get_model(self.object_type)._meta.verbose_name)
        except (LookupError, ValueError):
            kind = self.object_type
        when = timezone.localtime(self.created_at) if self.created_at else None
        return f"{when:%Y-%m-%d %H:%M:%S} {self.actor_label} · {kind} #{self.object_id}"


class IdempotencyRecord(models.Model):
    """The stored outcome of a POST made with an ``Idempotency-Key`` (API.md, Conventions)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", _("in progress")
        DONE = "done", _("done")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(ApiClient, verbose_name=_("API client"), on_delete=models.CASCADE, related_name="+")
    key = models.CharField(_("idempotency key"), max_length=255)
    request_hash = models.CharField(_("request hash"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.TextField(_("response body"), blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "client", "key"], name="idempotency_unique_key_per_client"),
            models.CheckConstraint(
                condition=Q(status="in_progress") | Q(response_status__isnull=False), name="idempotency_done_has_response"
            ),
        ]

    def __str__(self) -> str:
        return self.key
