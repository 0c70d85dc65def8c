"""R-EVT-2/3: joining and leaving an event through the member API, with API.md's error codes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditLog
from events.models import Event, EventAllowedMember, EventParticipant
from tests import factories

pytestmark = pytest.mark.django_db


def join(api, event, member="m-1", **body):
    return api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": member, **body}, format="json")


def test_a_member_joins_an_open_event_and_gets_the_participant_back(api, tenant):
    event = factories.make_event(tenant)
    response = join(api, event, "m-1", channel="ios")
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("event", "member_id", "channel", "entry_no")} == {
        "event": event.public_id, "member_id": "m-1", "channel": "ios", "entry_no": 1}
    participant = EventParticipant.objects.get(event=event)
    assert (participant.member_id, participant.tenant_id, participant.cancelled_at) == ("m-1", tenant.pk, None)
    event.refresh_from_db()
    assert event.participant_count == 1
    assert AuditLog.objects.filter(action="event.join", object_id=str(participant.pk)).count() == 1


def test_joining_twice_answers_409_already_joined_and_writes_nothing(api, tenant):
    event = factories.make_event(tenant)
    assert join(api, event).status_code == 201
    response = join(api, event)
    assert response.status_code == 409
    assert response.json() == {"code": "already_joined", "message": "This member has already joined this event.",
                                "details": {"entries": 1, "entries_per_member": 1}}
    assert EventParticipant.objects.filter(event=event).count() == 1


def test_a_member_may_take_as_many_entries_as_the_event_allows(api, tenant):
    event = factories.make_event(tenant, entries_per_member=3)
    assert [join(api, event).json()["entry_no"] for _ in range(3)] == [1, 2, 3]
    assert join(api, event).json()["code"] == "already_joined"
    event.refresh_from_db()
    assert event.participant_count == 1  # one member, three entries


@pytest.mark.parametrize("change", [
    {"status": Event.Status.DRAFT},
    {"status": Event.Status.CLOSED},
    {"status": Event.Status.CANCELLED},
    {"starts_at": timezone.now() + timedelta(days=1), "ends_at": timezone.now() + timedelta(days=2)},
    {"starts_at": timezone.now() - timedelta(days=2), "ends_at": timezone.now() - timedelta(days=1)},
], ids=["draft", "closed", "cancelled", "not_started", "ended"])
def test_an_event_that_is_not_open_or_outside_its_period_answers_422_event_closed(api, tenant, change):
    event = factories.make_event(tenant, **change)
    response = join(api, event)
    assert response.status_code == 422
    assert response.json()["code"] == "event_closed"
    assert set(response.json()) == {"code", "message", "details"}
    assert not EventParticipant.objects.exists()


def test_the_max_participants_limit_answers_422_limit_reached(api, tenant):
    event = factories.make_event(tenant, max_participants=2)
    assert [join(api, event, f"m-{i}").status_code for i in range(3)] == [201, 201, 422]
    response = join(api, event, "m-9")
    assert response.json() == {"code": "limit_reached",
                               "message": "This event has reached its maximum number of participants.",
                               "details": {"max_participants": 2}}
    assert EventParticipant.objects.filter(event=event).count() == 2


def test_a_cancelled_member_frees_a_place_and_may_join_again(api, tenant):
    event = factories.make_event(tenant, max_participants=1)
    assert join(api, event, "m-1").status_code == 201
    assert api.delete(f"/api/v1/events/{event.public_id}/participants/m-1").status_code == 204
    assert join(api, event, "m-2").status_code == 201
    assert join(api, event, "m-1").json()["code"] == "limit_reached"
    assert api.delete(f"/api/v1/events/{event.public_id}/participants/m-2").status_code == 204
    again = join(api, event, "m-1")
    assert (again.status_code, again.json()["entry_no"]) == (201, 1)
    assert EventParticipant.objects.filter(event=event, member_id="m-1").count() == 2  # the cancelled one stays
    event.refresh_from_db()
    assert event.participant_count == 1


def test_leaving_without_an_active_entry_answers_404(api, tenant):
    event = factories.make_event(tenant)
    response = api.delete(f"/api/v1/events/{event.public_id}/participants/nobody")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_leaving_after_the_event_closed_is_refused_so_the_draw_list_is_final(api, tenant):
    event = factories.make_event(tenant)
    assert join(api, event).status_code == 201
    Event.objects.filter(pk=event.pk).update(status=Event.Status.CLOSED)
    response = api.delete(f"/api/v1/events/{event.public_id}/participants/m-1")
    assert (response.status_code, response.json()["code"]) == (422, "event_closed")
    assert EventParticipant.objects.get(event=event).cancelled_at is None


def test_an_allow_list_event_answers_422_not_eligible_to_others(api, tenant):
    event = factories.make_event(tenant, allow_list_only=True)
    EventAllowedMember.objects.create(tenant=tenant, event=event, member_id="vip")
    response = join(api, event, "stranger")
    assert response.status_code == 422
    assert response.json() == {"code": "not_eligible", "message": "This event is only for selected members.",
                               "details": {"reason": "allow_list"}}
    assert join(api, event, "vip").status_code == 201


def test_only_members_who_redeemed_a_coupon_of_the_event_may_join_when_required(api, tenant):
    from coupons.services import lifecycle
    from coupons.discounts.payload import validate_order_payload
    from coupons.services.issue import RequestContext, issue_from_pool

    event = factories.make_event(tenant, require_redeemed_coupon=True)
    inventory, _ = factories.make_pool(tenant, size=3, event=event)
    ctx = RequestContext()
    issued = issue_from_pool(inventory=inventory, member_id="buyer", via="grant", ctx=ctx)
    issue_from_pool(inventory=inventory, member_id="holder", via="grant", ctx=ctx)
    lifecycle.coupon_redeem(tenant=tenant, code=issued.code, member_id="buyer", order_id="o-1",
                            order=validate_order_payload(factories.order()), ctx=ctx)
    refused = join(api, event, "holder")  # holds a coupon but never redeemed it
    assert (refused.status_code, refused.json()["code"], refused.json()["details"]) == (
        422, "not_eligible", {"reason": "no_redeemed_coupon"})
    assert join(api, event, "buyer").status_code == 201


def test_another_tenants_event_answers_exactly_like_a_missing_one(api, tenant, other_tenant):
    foreign = factories.make_event(other_tenant)
    missing = api.post("/api/v1/events/ZZZZZZZZZZZZZZZZ/participants", {"member_id": "m-1"}, format="json")
    response = join(api, foreign)
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() == {"code": "not_found", "message": "No such event.", "details": {}}
    assert api.delete(f"/api/v1/events/{foreign.public_id}/participants/m-1").json() == missing.json()
    assert api.get(f"/api/v1/events/{foreign.public_id}/draws").json() == missing.json()
    assert not EventParticipant.objects.exists()


def test_bad_input_answers_400_in_the_error_shape(api, tenant):
    event = factories.make_event(tenant)
    response = join(api, event, "x" * 65, channel="fax")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert set(response.json()["details"]["fields"]) == {"member_id", "channel"}


def test_a_replayed_join_with_the_same_idempotency_key_joins_once(api, tenant):
    event = factories.make_event(tenant, entries_per_member=2)
    first = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post(f"/api/v1/events/{event.public_id}/participants", {"member_id": "m-1"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert EventParticipant.objects.filter(event=event).count() == 1
