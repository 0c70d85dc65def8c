"""R-EVT-2 under real concurrency: the max-participants limit holds exactly in a parallel burst."""
from __future__ import annotations

from collections import Counter

import pytest

from events.models import Event, EventParticipant
from tests import factories
from tests.coupons.concurrency import race
from tests.factories import api_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]


def test_two_hundred_parallel_joins_on_an_event_of_50_places_let_exactly_50_in():
    tenant = factories.make_tenant()
    event = factories.make_event(tenant, max_participants=50)
    token = factories.make_client(tenant)[1]
    responses = race(lambda i: api_for(token).post(f"/api/v1/events/{event.public_id}/participants",
                                                   {"member_id": f"m-{i}"}, format="json"), range(200), threads=32)
    assert Counter(r.status_code for r in responses) == {201: 50, 422: 150}
    assert {r.json()["code"] for r in responses if r.status_code == 422} == {"limit_reached"}
    assert EventParticipant.objects.filter(event=event, cancelled_at__isnull=True).count() == 50
    assert Event.objects.get(pk=event.pk).participant_count == 50


def test_one_member_joining_in_parallel_gets_exactly_its_entries_per_member():
    tenant = factories.make_tenant()
    event = factories.make_event(tenant, entries_per_member=2, max_participants=1)
    token = factories.make_client(tenant)[1]
    responses = race(lambda i: api_for(token).post(f"/api/v1/events/{event.public_id}/participants",
                                                   {"member_id": "same"}, format="json"), range(20), threads=20)
    assert Counter(r.status_code for r in responses) == {201: 2, 409: 18}
    assert sorted(EventParticipant.objects.filter(event=event).values_list("entry_no", flat=True)) == [1, 2]
    assert Event.objects.get(pk=event.pk).participant_count == 1
