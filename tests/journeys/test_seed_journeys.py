"""Seed 001's core journeys end to end, over the real HTTP API of a live server (issue #15): one test per flow, the
way an integrator's back office and a member app drive them.

- Flow 1 (자체발번 → 제휴사 제공, R-PART-4): codes handed to partners are reserved, never claimed from the pool, never
  handed to a second partner, and registered by members after the event's participation window closed.
- The draw (R-DRAW-1/2): members enter, entries close, the draw runs, winners are published with the revealed seed,
  prize coupons are ISSUED to them, and the draw verifies; the seed is not in the database before the run.
"""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from core.models import ApiClient
from events.models import Event
from partners.services import partner_create
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def codes_of(response: httpx.Response) -> list[str]:
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["code"]
    return [row[0] for row in rows[1:]]


def test_flow_1_codes_handed_to_partners_are_theirs_alone_and_members_register_them_after_the_event(tenant, http):
    now = timezone.now()
    event = factories.make_event(tenant, starts_at=now - timedelta(days=7), ends_at=now + timedelta(days=1),
                                 registration_ends_at=now + timedelta(days=30))
    inventory = factories.make_inventory(tenant, event=event, total_quantity=300)
    factories.make_codes(factories.make_batch(inventory, quantity=300), 300)
    partner_create(tenant=tenant, name="GS25 convenience stores", code="GS25", actor=factories.TEST_ACTOR)
    partner_create(tenant=tenant, name="CU convenience stores", code="CU", actor=factories.TEST_ACTOR)
    ops = http(factories.make_client(tenant, scope=ApiClient.Scope.OPERATOR)[1])
    app = http(factories.make_client(tenant)[1])

    # The back office hands 50 codes to GS25 and downloads the file for them.
    first = ops.post("/distributions", json={"inventory": inventory.public_id, "partner": "GS25", "quantity": 50})
    assert first.status_code == 201, first.text
    first_codes = codes_of(ops.get(f"/distributions/{first.json()['id']}/codes"))
    assert len(first_codes) == len(set(first_codes)) == 50
    assert codes_of(ops.get(first.json()["file"].split("/api/v1", 1)[1])) == first_codes  # downloaded again
    # GS25 asks for 50 more: 50 other codes.
    second = ops.post("/distributions", json={"inventory": inventory.public_id, "partner": "GS25", "quantity": 50})
    second_codes = codes_of(ops.get(f"/distributions/{second.json()['id']}/codes"))
    assert len(set(second_codes)) == 50 and not set(first_codes) & set(second_codes)
    handed = set(first_codes) | set(second_codes)

    # 120 members claim from the pool: none gets a code a partner holds.
    pooled = [app.post("/claims", json={"member_id": f"member-{i}", "inventory": inventory.public_id})
              for i in range(120)]
    assert {r.status_code for r in pooled} == {201}
    assert not {r.json()["coupon"]["code"] for r in pooled} & handed

    # Participation closes; a shopper registers the code printed on a GS25 receipt.
    Event.objects.filter(pk=event.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    late_pool = app.post("/claims", json={"member_id": "late", "inventory": inventory.public_id})
    assert (late_pool.status_code, late_pool.json()["code"]) == (422, "event_closed")
    printed = first_codes[7]
    registered = app.post("/claims", json={"member_id": "shopper-1", "code": printed.lower()})
    assert registered.status_code == 201, registered.text
    assert (registered.json()["coupon"]["code"], registered.json()["coupon"]["member_id"]) == (printed, "shopper-1")
    redeemed = app.post(f"/coupons/{printed}/redeem", json={"member_id": "shopper-1", "order_id": "order-1",
                                                           "order": factories.order(order_id="order-1")})
    assert redeemed.status_code == 200, redeemed.text
    status = ops.get(f"/distributions/{first.json()['id']}").json()
    assert status["codes"] == {"reserved": 50, "waiting": 49, "registered": 1, "used": 1}

    # CU can never get GS25's codes: it gets what is left of the pool, and nothing more.
    rest = ops.post("/distributions", json={"inventory": inventory.public_id, "partner": "CU", "quantity": 80})
    assert rest.status_code == 201, rest.text
    assert not set(codes_of(ops.get(f"/distributions/{rest.json()['id']}/codes"))) & handed
    more = ops.post("/distributions", json={"inventory": inventory.public_id, "partner": "CU", "quantity": 1})
    assert (more.status_code, more.json()["code"]) == (422, "not_enough_codes")
    # The registration window ends too.
    Event.objects.filter(pk=event.pk).update(registration_ends_at=timezone.now() - timedelta(seconds=1))
    too_late = app.post("/claims", json={"member_id": "shopper-2", "code": first_codes[8]})
    assert (too_late.status_code, too_late.json()["code"]) == (422, "registration_closed")


def test_the_draw_journey_entries_close_the_draw_runs_winners_get_their_prize_coupons_and_it_verifies(
        tenant, http, capsys):
    from draws.models import Draw
    from draws.services import TierSpec, draw_create

    now = timezone.now()
    event = factories.make_event(tenant, starts_at=now - timedelta(days=7), ends_at=now + timedelta(days=1))
    prize_pool = factories.make_inventory(tenant, event=event, total_quantity=10, name="Tier 1 prize")
    factories.make_codes(factories.make_batch(prize_pool, quantity=10), 10)
    draw = draw_create(event=event, name="Lucky draw", draw_at=now, actor=factories.TEST_ACTOR,
                       tiers=[TierSpec(name="Tier 1", winners=3, inventory=prize_pool), TierSpec(name="Tier 2",
                                                                                                winners=5)])
    app = http(factories.make_client(tenant)[1])
    for i in range(40):
        joined = app.post(f"/events/{event.public_id}/participants", json={"member_id": f"fan-{i:02d}"})
        assert joined.status_code == 201, joined.text

    published = app.get(f"/events/{event.public_id}/draws").json()
    assert (published[0]["status"], published[0]["seed"]) == ("COMMITTED", None)
    sealed = Draw.objects.get(pk=draw.pk)
    with connection.cursor() as cursor:  # nobody reading the database finds the seed before the run
        cursor.execute("SELECT row_to_json(d)::text FROM draws_draw d WHERE id = %s", [draw.pk])
        row = cursor.fetchone()[0]
    assert sealed.seed == "" and sealed.seed_sealed and sealed.seed_hash in row

    # Entries close; the operator closes the event too. The cron runs the due draw, then its prize grants.
    Event.objects.filter(pk=event.pk).update(ends_at=timezone.now() - timedelta(seconds=1),
                                             status=Event.Status.CLOSED)
    late = app.post(f"/events/{event.public_id}/participants", json={"member_id": "late-fan"})
    assert (late.status_code, late.json()["code"]) == (422, "event_closed")
    call_command("run_due_draws")  # commits nothing new; hands the due draw to its job (inline here)

    result = app.get(f"/events/{event.public_id}/draws").json()[0]
    assert result["status"] == "DONE" and result["seed"] and result["participants_count"] == 40
    winners = result["winners"]
    assert [(w["tier"], w["rank"]) for w in winners] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3), (2, 4),
                                                         (2, 5)]
    for winner in winners[:3]:
        coupons = app.get(f"/members/{winner['member_id']}/coupons").json()
        held = coupons["results"] if isinstance(coupons, dict) else coupons
        assert [(c["inventory"], c["status"]) for c in held] == [(prize_pool.public_id, "ISSUED")]
    for winner in winners[3:]:
        coupons = app.get(f"/members/{winner['member_id']}/coupons").json()
        assert (coupons["results"] if isinstance(coupons, dict) else coupons) == []

    capsys.readouterr()
    call_command("verify_draw", draw.public_id)
    assert "OK" in capsys.readouterr().out
