"""R-EVT-1: a repeatable event's next occurrence is created once its occurrence has ended — exactly once."""
from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.models import AuditLog
from events.models import Event, EventAllowedMember
from events.services import event_next_occurrence, events_roll_recurring
from tests import factories

pytestmark = pytest.mark.django_db


def test_an_ended_weekly_event_gets_its_next_occurrence_with_the_same_configuration(tenant):
    now = timezone.now()
    event = factories.make_event(tenant, recurrence="weekly", starts_at=now - timedelta(days=3),
                                 ends_at=now - timedelta(hours=1), max_participants=7, entries_per_member=2,
                                 allow_list_only=True, require_redeemed_coupon=True)
    EventAllowedMember.objects.create(tenant=tenant, event=event, member_id="vip")
    out = StringIO()
    call_command("roll_recurring_events", stdout=out)
    assert out.getvalue().strip() == "roll_recurring_events: 1 occurrence(s) created."
    nxt = Event.objects.get(previous=event)
    assert (nxt.starts_at, nxt.ends_at) == (event.starts_at + timedelta(weeks=1), event.ends_at + timedelta(weeks=1))
    assert (nxt.name, nxt.status, nxt.recurrence, nxt.max_participants, nxt.entries_per_member,
            nxt.allow_list_only, nxt.require_redeemed_coupon, nxt.participant_count) == (
        event.name, "OPEN", "weekly", 7, 2, True, True, 0)
    assert list(EventAllowedMember.objects.filter(event=nxt).values_list("member_id", flat=True)) == ["vip"]
    assert AuditLog.objects.filter(action="event.recur", object_id=str(nxt.pk)).count() == 1


def test_rolling_twice_creates_the_next_occurrence_once(tenant):
    now = timezone.now()
    event = factories.make_event(tenant, recurrence="daily", starts_at=now - timedelta(hours=5),
                                 ends_at=now - timedelta(hours=1))
    assert events_roll_recurring() == 1
    assert events_roll_recurring() == 0
    assert event_next_occurrence(event=event, actor=factories.TEST_ACTOR) is None
    assert Event.objects.filter(previous=event).count() == 1


def test_running_occurrences_and_non_repeating_events_are_left_alone(tenant):
    now = timezone.now()
    factories.make_event(tenant, recurrence="daily")  # still running
    factories.make_event(tenant, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    factories.make_event(tenant, recurrence="daily", status="CANCELLED", starts_at=now - timedelta(days=2),
                         ends_at=now - timedelta(days=1))
    out = StringIO()
    call_command("roll_recurring_events", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "roll_recurring_events: 0 occurrence(s) would be created (dry run)."
    assert events_roll_recurring() == 0


def test_periods_missed_while_nobody_rolled_are_skipped(tenant):
    now = timezone.now()
    event = factories.make_event(tenant, recurrence="daily", starts_at=now - timedelta(days=10, hours=2),
                                 ends_at=now - timedelta(days=10, hours=1))
    events_roll_recurring()
    nxt = Event.objects.get(previous=event)
    assert nxt.starts_at == event.starts_at + timedelta(days=11)  # day 10 has ended too: the first still to come
    assert nxt.ends_at > now


def test_a_monthly_event_keeps_its_day_and_clamps_at_the_end_of_a_short_month(tenant):
    seoul = ZoneInfo("Asia/Seoul")
    event = factories.make_event(tenant, recurrence="monthly", starts_at=datetime(2026, 1, 31, 10, tzinfo=seoul),
                                 ends_at=datetime(2026, 1, 31, 22, tzinfo=seoul))
    nxt = event_next_occurrence(event=event, actor=factories.TEST_ACTOR,
                                now=datetime(2026, 2, 1, tzinfo=seoul))
    assert (nxt.starts_at.astimezone(seoul), nxt.ends_at.astimezone(seoul)) == (
        datetime(2026, 2, 28, 10, tzinfo=seoul), datetime(2026, 2, 28, 22, tzinfo=seoul))


def test_a_second_roller_waits_for_the_lock_and_exits(tenant):
    from core.locks import session_lock
    from events.services import ROLL_LOCK

    with session_lock(ROLL_LOCK) as got:
        assert got is True
        # the same session may re-take an advisory lock, so ask from a second connection
        import psycopg
        from django.db import connection

        s = connection.settings_dict
        with psycopg.connect(host=s["HOST"] or None, port=s["PORT"] or None, user=s["USER"] or None,
                             password=s["PASSWORD"] or None, dbname=s["NAME"], autocommit=True) as other:
            import hashlib

            key = int.from_bytes(hashlib.blake2b(ROLL_LOCK.encode(), digest_size=8).digest(), "big", signed=True)
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0] is False


def test_saving_a_stale_event_keeps_the_participant_counter_and_refuses_a_limit_below_it(tenant):
    from core.exceptions import InvalidInput
    from events.services import event_save, participant_join

    event = factories.make_event(tenant)
    stale = Event.objects.get(pk=event.pk)  # loaded before anyone joined, as a console form would be
    for member in ("a", "b", "c"):
        participant_join(tenant=tenant, event_public_id=event.public_id, member_id=member, actor=factories.TEST_ACTOR)
    stale.name = "Renamed"
    event_save(event=stale, actor=factories.TEST_ACTOR)
    assert Event.objects.values_list("name", "participant_count").get(pk=event.pk) == ("Renamed", 3)
    stale.max_participants = 2
    with pytest.raises(InvalidInput):
        event_save(event=stale, actor=factories.TEST_ACTOR)
    assert Event.objects.get(pk=event.pk).max_participants is None
