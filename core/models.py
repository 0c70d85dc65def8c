"""Cross-cutting models: tenants, console users, API clients, the audit log and idempotency records."""
from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q


class Tenant(models.Model):
    """A customer organisation (a card issuer, a mall). Every business row belongs to exactly one (R-TEN-1)."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    currency = models.CharField(
        max_length=3, default="KRW", validators=[RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code, e.g. KRW.")]
    )
    # Money is integer minor units; computed amounts round down to a multiple of this (KRW: 10 → 1001 becomes 1000).
    rounding_unit = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    time_zone = models.CharField(max_length=64, default="Asia/Seoul")
    language = models.CharField(max_length=8, default="ko", choices=[("ko", "Korean"), ("en", "English")])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(rounding_unit__gte=1), name="tenant_rounding_unit_positive"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"), name="tenant_currency_iso"),
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A console user. Staff of one tenant see only that tenant (R-TEN-3); superusers see all."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="users")

    class Meta(AbstractUser.Meta):
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
        MEMBER = "member", "member"
        OPERATOR = "operator", "operator"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_clients")
    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.MEMBER)
    # Public, non-secret part of the token used to find the row; the secret part is only stored as a hash.
    key_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="apiclient_unique_name_per_tenant"),
            models.CheckConstraint(condition=Q(scope__in=["member", "operator"]), name="apiclient_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"

    # DRF treats request.user as the authenticated principal.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditLog(models.Model):
    """Append-only record of every state change by a person, an API client or a job.

    A database trigger (migration 0002) refuses UPDATE and DELETE, so not even a bug or a shell can rewrite history.
    """

    class ActorType(models.TextChoices):
        USER = "user", "console user"
        API_CLIENT = "api_client", "API client"
        JOB = "job", "job"
        SYSTEM = "system", "system"

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Actors are copied as plain values, not foreign keys: deleting a user must never touch the log.
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="auditlog_tenant_time"),
            models.Index(fields=["object_type", "object_id"], name="auditlog_object"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_type}#{self.object_id}"


class IdempotencyRecord(models.Model):
    """The stored outcome of a POST made with an ``Idempotency-Key`` (API.md, Conventions)."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "in progress"
        DONE = "done", "done"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_unique_key_per_client"),
            models.CheckConstraint(
                condition=Q(status="in_progress") | Q(response_status__isnull=False), name="idempotency_done_has_response"
            ),
        ]
