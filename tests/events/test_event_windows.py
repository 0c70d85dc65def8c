"""An event's windows (seed 001: codes come in after the event ends; events.windows): participation for entries and
pool claims, registration for codes brought by members, none for grants and prizes. Each refusal names its window and
writes nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from coupons.services import issue as issuing
from coupons.services import grant as grants
from coupons.models import CouponCode, CouponIssue
from events.models import Event
from partners import distribution
from partners.services import partner_create
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def distributed_pool(tenant):
    """An inventory whose event ended an hour ago; registration of codes runs a week longer."""
    now = timezone.now()
    event = factories.make_event(tenant, starts_at=now - timedelta(days=10), ends_at=now + timedelta(days=1),
                                 registration_ends_at=now + timedelta(days=7))
    inventory = factories.make_inventory(tenant, event=event, total_quantity=100)
    factories.make_codes(factories.make_batch(inventory, quantity=20), 20)
    partner = partner_create(tenant=tenant, name="GS25", code="GS25", actor=factories.TEST_ACTOR)
    dist = distribution.distribution_create(tenant=tenant, inventory=inventory, partner=partner, quantity=10,
                                            actor=factories.TEST_ACTOR)
    Event.objects.filter(pk=event.pk).update(ends_at=now - timedelta(hours=1))
    codes = list(CouponCode.objects.filter(distribution_id=dist.pk).order_by("id").values_list("code", flat=True))
    return inventory, codes


def claim(api, **body):
    return api.post("/api/v1/claims", {"member_id": "m-1", **body}, format="json")


def test_after_the_event_ends_a_distributed_code_registers_but_the_pool_is_closed(api, distributed_pool):
    inventory, codes = distributed_pool
    pool = claim(api, inventory=inventory.public_id)
    assert (pool.status_code, pool.json()["code"]) == (422, "event_closed")
    assert pool.json()["details"]["window"] == "participation"
    registered = claim(api, code=codes[0])
    assert registered.status_code == 201, registered.json()
    assert CouponCode.objects.get(code=codes[0]).status == "ISSUED"


def test_an_operator_closing_the_event_ends_participation_not_registration(api, distributed_pool):
    inventory, codes = distributed_pool
    Event.objects.filter(pk=inventory.event_id).update(status=Event.Status.CLOSED)
    assert claim(api, code=codes[0]).status_code == 201


@pytest.mark.parametrize("change, reason", [
    ({"registration_ends_at": -1}, "ended"),
    ({"status": Event.Status.CANCELLED}, "status"),
    ({"status": Event.Status.DRAFT}, "status"),
])
def test_outside_the_registration_window_the_refusal_names_it_and_nothing_is_written(api, distributed_pool, change,
                                                                                       reason):
    inventory, codes = distributed_pool
    if "registration_ends_at" in change:
        change = {"registration_ends_at": timezone.now() - timedelta(seconds=1)}
    Event.objects.filter(pk=inventory.event_id).update(**change)
    response = claim(api, code=codes[0])
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["details"]["window"], body["details"]["reason"]) == (
        "registration_closed", "registration", reason)
    assert body["message"] == "Codes of this event can no longer be registered."
    ko = api.post("/api/v1/claims", {"member_id": "m-1", "code": codes[0]}, format="json", HTTP_ACCEPT_LANGUAGE="ko")
    assert ko.json()["code"] == "registration_closed" and ko.json()["message"] != body["message"]
    assert CouponCode.objects.get(code=codes[0]).status == "DISTRIBUTED"
    assert not CouponIssue.objects.exists()


def test_before_the_event_starts_registration_is_closed_too(api, tenant):
    now = timezone.now()
    event = factories.make_event(tenant, starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2))
    inventory = factories.make_inventory(tenant, event=event)
    code = factories.make_codes(factories.make_batch(inventory, quantity=1), 1)[0]
    response = claim(api, code=code.code)
    assert (response.json()["code"], response.json()["details"]["reason"]) == ("registration_closed", "not_started")


def test_without_a_registration_end_the_windows_are_as_before_windows_existed(api, tenant):
    inventory, codes = factories.make_pool(tenant, size=2)
    Event.objects.filter(pk=inventory.event_id).update(status=Event.Status.CLOSED)
    response = claim(api, code=codes[0].code)  # a closed event without a registration end takes no codes
    assert (response.status_code, response.json()["code"]) == (422, "registration_closed")
    Event.objects.filter(pk=inventory.event_id).update(status=Event.Status.OPEN,
                                                       ends_at=timezone.now() - timedelta(seconds=1))
    assert claim(api, code=codes[0].code).json()["code"] == "registration_closed"
    assert not CouponIssue.objects.exists()


def test_grants_are_not_claims_they_ignore_the_participation_window_but_not_a_cancelled_event(tenant):
    inventory, _codes = factories.make_pool(tenant, size=3)
    Event.objects.filter(pk=inventory.event_id).update(status=Event.Status.CLOSED,
                                                       ends_at=timezone.now() - timedelta(days=1))
    result = grants.grant_create(tenant=tenant, inventory_public_id=inventory.public_id, member_ids=["g-1"],
                                  ctx=issuing.RequestContext())
    assert (len(result.issued), result.failed) == (1, [])
    Event.objects.filter(pk=inventory.event_id).update(status=Event.Status.CANCELLED)
    result = grants.grant_create(tenant=tenant, inventory_public_id=inventory.public_id, member_ids=["g-2"],
                                  ctx=issuing.RequestContext())
    assert result.failed == [{"member_id": "g-2", "code": "event_closed"}]


def test_the_console_shows_and_saves_the_registration_end(client, tenant):
    from django.urls import reverse

    event = factories.make_event(tenant)
    client.force_login(factories.make_operator(tenant))
    page = client.get(reverse("admin:events_event_change", args=[event.pk])).content.decode()
    assert 'name="registration_ends_at_0"' in page
    assert "Codes handed out by partners can be registered until the registration end" in page


def test_a_registration_end_before_the_start_is_refused(tenant):
    from core.exceptions import InvalidInput
    from events.services import event_save

    event = factories.make_event(tenant)
    event.registration_ends_at = event.starts_at - timedelta(minutes=1)
    with pytest.raises(InvalidInput) as refused:
        event_save(event=event, actor=factories.TEST_ACTOR)
    assert refused.value.details == {"field": "registration_ends_at"}
    event.refresh_from_db()
    assert event.registration_ends_at is None


def test_a_repeating_event_keeps_its_registration_tail(tenant):
    from events.services import event_next_occurrence

    now = timezone.now()
    event = factories.make_event(tenant, starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1),
                                 registration_ends_at=now + timedelta(days=2), recurrence=Event.Recurrence.WEEKLY)
    nxt = event_next_occurrence(event=event, actor=factories.TEST_ACTOR, now=now)
    assert nxt.registration_ends_at - nxt.ends_at == timedelta(days=3)
