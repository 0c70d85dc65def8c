"""State changes of events: saving, joining and leaving (R-EVT-2/3), and rolling repeatable events (R-EVT-1)."""
from __future__ import annotations

import calendar
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.apps import apps
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from core.audit import Actor, audit_record
from core.exceptions import DomainError, InvalidInput
from core.locks import session_lock
from core.models import Tenant
from core.tenancy import joined_in_tenant
from events.exceptions import AlreadyJoined, EventNotFound, LimitReached, NotEligible, NotJoined
from events.models import Event, EventAllowedMember, EventParticipant, EventStaffMember
from events.windows import check_participation

logger = logging.getLogger("coupons.events")

CHANNELS = ["android", "ios", "pc_web", "mobile_web", "wechat", "mini_program"]
# Fields an operator edits; the participant counter is written only by join/cancel under the event's row lock.
_EDITABLE = ["name", "description", "starts_at", "ends_at", "registration_ends_at", "status", "recurrence",
             "max_participants",
             "entries_per_member", "require_redeemed_coupon", "allow_list_only"]


def event_save(*, event: Event, actor: Actor) -> Event:
    if not event.name.strip():
        raise InvalidInput(_("An event needs a name."))
    if event.ends_at <= event.starts_at:
        raise InvalidInput(_("An event must end after it starts."))
    if event.registration_ends_at is not None and event.registration_ends_at <= event.starts_at:
        raise InvalidInput(_("Code registration must end after the event starts."),
                           details={"field": "registration_ends_at"})
    if event.entries_per_member < 1:
        raise InvalidInput(_("Entries per member must be at least 1."))
    if event.max_participants is not None and event.max_participants < 1:
        raise InvalidInput(_("Max participants must be at least 1 (or empty for no limit)."))
    creating = event.pk is None
    with transaction.atomic():
        if creating:
            event.save()
        else:
            locked = Event.objects.select_for_update().get(pk=event.pk)
            if event.max_participants is not None and locked.participant_count > event.max_participants:
                raise InvalidInput(_("%(count)s members already take part; the limit cannot be lower.")
                                   % {"count": locked.participant_count})
            event.save(update_fields=_EDITABLE)
        audit_record(tenant=event.tenant, actor=actor, action="event.create" if creating else "event.update",
                     obj=event, after={"name": event.name, "starts_at": event.starts_at.isoformat(),
                                       "ends_at": event.ends_at.isoformat(),
                                       "registration_ends_at": event.registration_ends_at.isoformat()
                                       if event.registration_ends_at else None, "status": event.status,
                                       "recurrence": event.recurrence, "max_participants": event.max_participants,
                                       "entries_per_member": event.entries_per_member,
                                       "require_redeemed_coupon": event.require_redeemed_coupon,
                                       "allow_list_only": event.allow_list_only})
    return event


def event_create(*, tenant: Tenant, name: str, starts_at: datetime, ends_at: datetime, actor: Actor,
                 description: str = "", status: str = Event.Status.DRAFT, **settings: object) -> Event:
    return event_save(event=Event(tenant=tenant, name=name, description=description, starts_at=starts_at,
                                  ends_at=ends_at, status=status, **settings), actor=actor)


def _check_eligible(event: Event, member_id: str) -> None:
    if event.allow_list_only and not EventAllowedMember.objects.filter(tenant_id=event.tenant_id, event=event,
                                                                       member_id=member_id).exists():
        raise NotEligible(_("This event is only for selected members."), details={"reason": "allow_list"})
    if event.require_redeemed_coupon:
        # Coupons is a layer above events (its pools belong to events): its usage table is named, not imported.
        usages = apps.get_model("coupons", "CouponUsage")
        if not usages.objects.filter(tenant_id=event.tenant_id, inventory__event=event, member_id=member_id,
                                      refunded_at__isnull=True, **joined_in_tenant(event.tenant_id, "inventory")
                                      ).exists():
            raise NotEligible(_("Only members who redeemed a coupon of this event may take part."),
                              details={"reason": "no_redeemed_coupon"})


def _locked_event(tenant: Tenant, public_id: str) -> Event:
    event = Event.objects.select_for_update().filter(tenant=tenant, public_id=public_id.strip().upper()).first()
    if event is None:
        raise EventNotFound()
    return event


def participant_join(*, tenant: Tenant, event_public_id: str, member_id: str, actor: Actor, channel: str = "",
                     now: datetime | None = None) -> EventParticipant:
    """A member's next entry. The event row is locked while the limits are checked and the entry written, so the
    participant counter (with its CHECK against max_participants) is exact under any concurrency."""
    now = now or timezone.now()
    with transaction.atomic():
        event = _locked_event(tenant, event_public_id)
        check_participation(event, now)
        _check_eligible(event, member_id)
        # No ordering: the model's default one (by event) would join the event table for a set of numbers.
        active = set(EventParticipant.objects.filter(tenant_id=event.tenant_id, event=event, member_id=member_id,
                                                     cancelled_at__isnull=True).order_by()
                     .values_list("entry_no", flat=True))
        if len(active) >= event.entries_per_member:
            raise AlreadyJoined(details={"entries": len(active), "entries_per_member": event.entries_per_member})
        if not active:
            if event.max_participants is not None and event.participant_count >= event.max_participants:
                raise LimitReached(details={"max_participants": event.max_participants})
            Event.objects.filter(tenant_id=event.tenant_id, pk=event.pk).update(
                participant_count=F("participant_count") + 1)
        entry_no = min(n for n in range(1, event.entries_per_member + 1) if n not in active)
        participant = EventParticipant.objects.create(tenant=tenant, event=event, member_id=member_id,
                                                      channel=channel, entry_no=entry_no, joined_at=now)
        audit_record(tenant=tenant, actor=actor, action="event.join", obj=participant,
                     after={"event": event.public_id, "member_id": member_id, "entry_no": entry_no,
                            "channel": channel})
    return participant


def participant_cancel(*, tenant: Tenant, event_public_id: str, member_id: str, actor: Actor,
                       now: datetime | None = None) -> int:
    """Cancel the member's active entries. Refused once the event is not open: the list a draw reads is final."""
    now = now or timezone.now()
    with transaction.atomic():
        event = _locked_event(tenant, event_public_id)
        check_participation(event, now)
        cancelled = EventParticipant.objects.filter(tenant_id=event.tenant_id, event=event, member_id=member_id,
                                                    cancelled_at__isnull=True).update(cancelled_at=now)
        if not cancelled:
            raise NotJoined()
        Event.objects.filter(tenant_id=event.tenant_id, pk=event.pk).update(
            participant_count=F("participant_count") - 1)
        audit_record(tenant=tenant, actor=actor, action="event.cancel_entry", obj=event,
                     after={"member_id": member_id, "entries_cancelled": cancelled})
    return cancelled


def staff_member_add(*, tenant: Tenant, member_id: str, actor: Actor, note: str = "") -> EventStaffMember:
    member_id = member_id.strip()
    if not 1 <= len(member_id) <= 64:
        raise InvalidInput(_("member_id must be 1 to 64 characters."))
    with transaction.atomic():
        staff, created = EventStaffMember.objects.get_or_create(tenant=tenant, member_id=member_id,
                                                                defaults={"note": note})
        if created:
            audit_record(tenant=tenant, actor=actor, action="event.staff_add", obj=staff,
                         after={"member_id": member_id})
    return staff


def staff_member_remove(*, staff: EventStaffMember, actor: Actor) -> None:
    """Off the staff list: drawn again from the next draw on (a finished draw's verification then reports that its
    participant list differs — the list it was drawn from is what its digest records)."""
    with transaction.atomic():
        audit_record(tenant=staff.tenant, actor=actor, action="event.staff_remove", obj=staff,
                     before={"member_id": staff.member_id})
        staff.delete()


def allow_list_changed(*, event: Event, added: list[str], removed: list[str], actor: Actor) -> None:
    """The audit row of a console edit of an event's allow-list (rows are saved by the admin formset)."""
    if added or removed:
        with transaction.atomic():
            audit_record(tenant=event.tenant, actor=actor, action="event.allow_list", obj=event,
                         after={"added": added[:100], "removed": removed[:100], "added_count": len(added),
                                "removed_count": len(removed)})


# Repeatable events ---------------------------------------------------------------------------------------------

ROLL_LOCK = "events:roll_recurring"
OCCURRENCE_SETUP = "draws.templates.occurrence_copy_setup"


def _add_months(moment: datetime, months: int, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(moment.tzinfo)


def shifted(event: Event, periods: int) -> tuple[datetime, datetime]:
    """The event's period moved by ``periods`` recurrences (months counted in the tenant's time zone)."""
    if event.recurrence == Event.Recurrence.DAILY:
        delta = timedelta(days=periods)
        return event.starts_at + delta, event.ends_at + delta
    if event.recurrence == Event.Recurrence.WEEKLY:
        delta = timedelta(weeks=periods)
        return event.starts_at + delta, event.ends_at + delta
    if event.recurrence == Event.Recurrence.MONTHLY:
        zone = ZoneInfo(event.tenant.time_zone)
        return _add_months(event.starts_at, periods, zone), _add_months(event.ends_at, periods, zone)
    raise InvalidInput(_("This event does not repeat."))


def event_next_occurrence(*, event: Event, actor: Actor, now: datetime | None = None) -> Event | None:
    """Create the occurrence after ``event`` (same configuration and allow-list; periods missed while nobody ran the
    roll are skipped). Exactly once: the previous row is locked and ``previous`` is one-to-one."""
    now = now or timezone.now()
    periods = 1
    while shifted(event, periods)[1] <= now and periods < 10_000:
        periods += 1
    starts_at, ends_at = shifted(event, periods)
    try:
        with transaction.atomic():
            previous = Event.objects.select_for_update().get(pk=event.pk)
            if Event.objects.filter(previous=previous).exists():
                return None
            nxt = Event.objects.create(
                tenant_id=previous.tenant_id, name=previous.name, description=previous.description,
                starts_at=starts_at, ends_at=ends_at, recurrence=previous.recurrence,
                # Registration keeps its distance from the end: codes come in as long after this occurrence.
                registration_ends_at=(ends_at + (previous.registration_ends_at - previous.ends_at)
                                      if previous.registration_ends_at else None),
                status=Event.Status.DRAFT if previous.status == Event.Status.DRAFT else Event.Status.OPEN,
                max_participants=previous.max_participants, entries_per_member=previous.entries_per_member,
                require_redeemed_coupon=previous.require_redeemed_coupon, allow_list_only=previous.allow_list_only,
                previous=previous)
            allowed = EventAllowedMember.objects.filter(event=previous).values_list("member_id", flat=True)
            batch: list[EventAllowedMember] = []
            for member_id in allowed.iterator(chunk_size=5000):
                batch.append(EventAllowedMember(tenant_id=nxt.tenant_id, event=nxt, member_id=member_id))
                if len(batch) >= 5000:
                    EventAllowedMember.objects.bulk_create(batch)
                    batch = []
            EventAllowedMember.objects.bulk_create(batch)
            # Its pools, budgets and draws (issue #16): a layer above, so by dotted path; same transaction.
            import_string(OCCURRENCE_SETUP)(previous=previous, occurrence=nxt, actor=actor)
            audit_record(tenant=nxt.tenant, actor=actor, action="event.recur", obj=nxt,
                         after={"previous": previous.public_id, "starts_at": starts_at.isoformat(),
                                "ends_at": ends_at.isoformat()})
    except IntegrityError:  # another roller won between our check and insert
        return None
    return nxt


def events_roll_recurring(*, now: datetime | None = None, dry_run: bool = False,
                          actor: Actor | None = None) -> int | None:
    """Roll every ended occurrence of a repeatable event that has no next one yet. None if another run holds the
    lock; otherwise how many occurrences were (or, dry run, would be) created."""
    now = now or timezone.now()
    actor = actor or Actor.job("roll_recurring_events")
    with session_lock(ROLL_LOCK) as got:
        if not got:
            return None
        due = (Event.objects.select_related("tenant").exclude(recurrence=Event.Recurrence.NONE)
               .exclude(status=Event.Status.CANCELLED).filter(ends_at__lte=now, next_occurrence__isnull=True)
               .order_by("pk"))
        if dry_run:
            return due.count()
        created = 0
        for event in due.iterator(chunk_size=500):
            try:
                if event_next_occurrence(event=event, actor=actor, now=now) is not None:
                    created += 1
            except DomainError as exc:  # its setup cannot be copied (e.g. a pool over its total): the others roll
                logger.warning("event %s: next occurrence not created: %s", event.public_id, exc.message)
        return created
