"""Marketing events (R-EVT-1), who takes part (R-EVT-2), eligibility (R-EVT-3) and the staff list (R-EVT-4)."""
from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.fields import PublicIdField
from core.models import Tenant


class Event(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", _("draft")
        OPEN = "OPEN", _("open")
        CLOSED = "CLOSED", _("closed")
        CANCELLED = "CANCELLED", _("cancelled")

    class Recurrence(models.TextChoices):
        NONE = "none", _("does not repeat")
        DAILY = "daily", _("daily")
        WEEKLY = "weekly", _("weekly")
        MONTHLY = "monthly", _("monthly")

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="events")
    public_id = PublicIdField(_("public ID"))
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    # The event's windows (seed 001: codes come in after the event ends). Participation — entries and claims from a
    # pool — runs from starts_at to ends_at. Registration of distributed and partner codes runs from starts_at to
    # registration_ends_at (empty: to ends_at, as participation). Coupon validity is the policy's.
    registration_ends_at = models.DateTimeField(
        _("registration ends at"), null=True, blank=True,
        help_text=_("Until when members may register codes handed out by partners (distributed or partner codes). "
                    "Empty = until the event ends. May be later than the event's end."))
    recurrence = models.CharField(_("recurrence"), max_length=16, choices=Recurrence.choices, default=Recurrence.NONE)
    # Participation limits (R-EVT-2): distinct members with an active entry, and active entries per member.
    max_participants = models.PositiveIntegerField(_("max participants"), null=True, blank=True,
                                                   help_text=_("Most members who may take part; empty = no limit."))
    entries_per_member = models.PositiveIntegerField(_("entries per member"), default=1)
    # Members with at least one active entry; written only by the join/cancel services under the event's row lock.
    participant_count = models.PositiveIntegerField(_("participant count"), default=0, editable=False)
    # Eligibility (R-EVT-3).
    require_redeemed_coupon = models.BooleanField(_("requires a redeemed coupon"),
        default=False, help_text=_("Only members who redeemed (and did not refund) a coupon of this event may join."))
    allow_list_only = models.BooleanField(_("allow-list only"), default=False,
                                          help_text=_("Only members on this event's allow-list may join."))
    # The occurrence this one repeats. One-to-one: an occurrence is rolled forward exactly once, whoever races.
    previous = models.OneToOneField("self", db_constraint=False,
                                    verbose_name=_("previous occurrence"), null=True, blank=True,
                                    on_delete=models.PROTECT,
                                    related_name="next_occurrence", editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="event_ends_after_start"),
            models.CheckConstraint(condition=Q(registration_ends_at__isnull=True)
                                   | Q(registration_ends_at__gt=F("starts_at")),
                                   name="event_registration_ends_after_start"),
            models.CheckConstraint(condition=Q(status__in=["DRAFT", "OPEN", "CLOSED", "CANCELLED"]),
                                   name="event_status_valid"),
            models.CheckConstraint(condition=Q(recurrence__in=["none", "daily", "weekly", "monthly"]),
                                   name="event_recurrence_valid"),
            models.CheckConstraint(condition=Q(entries_per_member__gte=1), name="event_entries_per_member_positive"),
            models.CheckConstraint(condition=Q(max_participants__isnull=True) | Q(max_participants__gte=1),
                                   name="event_max_participants_positive"),
            # Defence in depth: even a buggy writer cannot let more members in than the limit.
            models.CheckConstraint(condition=Q(max_participants__isnull=True)
                                   | Q(participant_count__lte=F("max_participants")),
                                   name="event_participants_within_limit"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "starts_at"], name="event_tenant_status")]

    def __str__(self) -> str:
        return self.name


class EventParticipant(models.Model):
    """One entry of a member in an event. A cancelled entry stays (with ``cancelled_at``) for the record."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(Event, db_constraint=False,
                              verbose_name=_("event"), on_delete=models.PROTECT, related_name="participants")
    member_id = models.CharField(_("member ID"), max_length=64)
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    entry_no = models.PositiveIntegerField(_("entry number"), default=1)
    joined_at = models.DateTimeField(_("joined at"))
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        ordering = ["event", "member_id", "entry_no"]
        constraints = [
            # The service hands out the lowest free entry number ≤ entries_per_member under the event's row lock;
            # this index is the database's guard that no entry number is active twice for a member.
            models.UniqueConstraint(fields=["tenant", "event", "member_id", "entry_no"],
                                    condition=Q(cancelled_at__isnull=True),
                                    name="participant_unique_active_entry"),
            models.CheckConstraint(condition=Q(entry_no__gte=1), name="participant_entry_no_positive"),
            models.CheckConstraint(condition=Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=F("joined_at")),
                                   name="participant_cancelled_after_join"),
        ]
        indexes = [models.Index(fields=["event", "member_id"], name="participant_event_member",
                                condition=Q(cancelled_at__isnull=True))]

    def __str__(self) -> str:
        return f"{self.member_id} #{self.entry_no}"


class EventAllowedMember(models.Model):
    """The allow-list of an event with ``allow_list_only``."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(Event, db_constraint=False,
                              verbose_name=_("event"), on_delete=models.PROTECT, related_name="allowed_members")
    member_id = models.CharField(_("member ID"), max_length=64)

    class Meta:
        verbose_name = _("allowed member")
        verbose_name_plural = _("allowed members")
        constraints = [models.UniqueConstraint(fields=["tenant", "event", "member_id"], name="allowed_member_unique")]

    def __str__(self) -> str:
        return self.member_id


class EventStaffMember(models.Model):
    """A tenant's internal staff (R-EVT-4): they may join events but are never drawn."""

    tenant = models.ForeignKey(Tenant, verbose_name=_("tenant"), on_delete=models.PROTECT, related_name="+")
    member_id = models.CharField(_("member ID"), max_length=64)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")
        ordering = ["member_id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "member_id"], name="staff_member_unique")]

    def __str__(self) -> str:
        return self.member_id
