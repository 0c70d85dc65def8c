"""Draws an operator can run, with prizes that arrive (R-DRAW-1/2, issue #15): the seed is sealed until the reveal,
the draw runs once entries close whatever the event's status, and prize coupons are granted even after the event is
closed (a prize is not a claim)."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from core.models import AuditLog
from core.sealing import derived_key, unseal
from coupons.models import CouponCode
from draws import algorithm, services
from draws.models import Draw, DrawWinner
from events.models import Event
from tests import factories
from tests.draws.helpers import committed_draw, ended_event_with, winners_of

pytestmark = pytest.mark.django_db

MEMBERS = [f"m-{i:03d}" for i in range(40)]


def row_text(draw: Draw) -> str:
    """Everything the database holds about the draw and its audit rows, as one text."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(d)::text FROM draws_draw d WHERE id = %s", [draw.pk])
        text = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(string_agg(row_to_json(a)::text, ''), '') FROM core_auditlog a "
                       "WHERE object_type = 'draws.Draw' AND object_id = %s", [str(draw.pk)])
        return text + cursor.fetchone()[0]


def test_the_seed_is_not_readable_from_the_database_before_the_run_and_is_revealed_after(tenant):
    draw = committed_draw(ended_event_with(tenant, MEMBERS))
    seed = unseal(draw.seed_sealed)  # only with the settings' key
    assert algorithm.seed_hash(bytes.fromhex(seed)) == draw.seed_hash
    assert draw.seed == "" and seed not in row_text(draw)
    done = services.draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR)
    assert (done.seed, done.seed_sealed) == (seed, "")
    assert done.seed in row_text(done)
    assert services.draw_verify(draw=done).ok


def test_the_database_refuses_a_committed_draw_with_a_plain_seed(tenant):
    draw = committed_draw(ended_event_with(tenant, MEMBERS))
    with pytest.raises(IntegrityError, match="draw_seed_sealed_until_done"), transaction.atomic():
        Draw.objects.filter(pk=draw.pk).update(seed="ab" * 32)
    with pytest.raises(IntegrityError, match="draw_done_reveals_seed"), transaction.atomic():
        Draw.objects.filter(pk=draw.pk).update(status="DONE", participants_count=0, finished_at=draw.committed_at)


def test_with_another_key_the_run_is_refused_and_nothing_changes(tenant, settings):
    draw = committed_draw(ended_event_with(tenant, MEMBERS))
    settings.COUPON_SEAL_KEYS = [derived_key("an entirely different secret key, 40 chars")]
    from draws.exceptions import DrawNotReady

    with pytest.raises(DrawNotReady) as refused:
        services.draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR)
    assert refused.value.details == {"reason": "seal"}
    draw.refresh_from_db()
    assert (draw.status, DrawWinner.objects.count()) == ("COMMITTED", 0)


def test_the_commitment_audit_row_records_that_it_came_before_entries_closed(tenant):
    event = factories.make_event(tenant)
    draw = committed_draw(event)
    row = AuditLog.objects.get(action="draw.commit", object_id=str(draw.pk))
    assert row.after["before_entries_closed"] is True
    assert row.after["entries_close"] == event.ends_at.isoformat()
    assert "seed" not in row.after and row.after["seed_hash"] == draw.seed_hash


@pytest.mark.parametrize("status", [Event.Status.OPEN, Event.Status.CLOSED])
def test_entries_closed_the_draw_runs_and_prize_coupons_arrive_even_from_a_closed_event(
        tenant, status, django_capture_on_commit_callbacks):
    event = ended_event_with(tenant, MEMBERS)
    Event.objects.filter(pk=event.pk).update(status=status)
    inventory = factories.make_inventory(tenant, event=event, total_quantity=100)
    factories.make_codes(factories.make_batch(inventory, quantity=10), 10)
    draw = committed_draw(event, [("first", 3), ("second", 5)], inventories={"first": inventory})
    with django_capture_on_commit_callbacks(execute=True):  # the prize job, queued on commit, runs inline
        done = services.draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR)
    firsts = DrawWinner.objects.filter(draw=done, tier__position=1)
    assert firsts.count() == 3 and not firsts.filter(coupon__isnull=True).exists()
    assert set(firsts.values_list("grant_error", flat=True)) == {""}
    coupons = CouponCode.objects.filter(pk__in=firsts.values("coupon"))
    assert {(c.status, c.member_id) for c in coupons} == {("ISSUED", w.member_id) for w in firsts}
    assert services.draw_verify(draw=done).ok


def test_a_draw_waits_while_entries_are_open(tenant):
    from draws.exceptions import EventNotEnded

    event = factories.make_event(tenant)
    draw = committed_draw(event)
    with pytest.raises(EventNotEnded):
        services.draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR)
    Event.objects.filter(pk=event.pk).update(status=Event.Status.CLOSED)  # the operator closes entries early
    assert services.draw_run(draw_id=draw.pk, actor=factories.TEST_ACTOR).status == "DONE"


# --- the draw page ---------------------------------------------------------------------------------------------------

def test_the_draw_page_shows_winners_prizes_failures_in_the_operators_language_and_its_buttons(client, tenant,
                                                                                                monkeypatch,
                                                                                                django_capture_on_commit_callbacks):
    monkeypatch.setattr("draws.admin.WINNERS_PER_PAGE", 25)
    event = ended_event_with(tenant, MEMBERS)
    small = factories.make_inventory(tenant, event=event, total_quantity=100)
    factories.make_codes(factories.make_batch(small, quantity=2), 2)  # 2 codes for 3 first prizes: one fails
    draw = committed_draw(event, [("first", 3), ("second", 60)], inventories={"first": small})
    operator = factories.make_operator(tenant)
    client.force_login(operator)
    page = client.get(reverse("admin:draws_draw_change", args=[draw.pk])).content.decode()
    assert 'id="draw-run"' in page and draw.seed_hash in page and unseal(draw.seed_sealed) not in page

    with django_capture_on_commit_callbacks(execute=True):
        ran = client.post(reverse("admin:draws_draw_step", args=[draw.pk, "run"]))
    assert ran.status_code == 302
    draw.refresh_from_db()
    assert draw.status == "DONE"
    page = client.get(reverse("admin:draws_draw_change", args=[draw.pk])).content.decode()
    assert page.count('class="winner-row"') == 25  # 40 winners (3 + 37), 25 a page
    failed = DrawWinner.objects.get(draw=draw, tier__position=1, coupon__isnull=True)
    assert failed.grant_error == "sold_out"
    assert "Prize grants that failed (1)" in page and "All coupons of this inventory have been claimed." in page
    assert draw.seed in page and 'id="draw-grant"' in page

    operator.language = "ko"
    operator.save(update_fields=["language"])
    ko = client.get(reverse("admin:draws_draw_change", args=[draw.pk]) + "?winners_page=2").content.decode()
    assert ko.count('class="winner-row"') == 15 and 'id="winners-pages"' in ko
    assert "All coupons of this inventory have been claimed." not in ko and "sold_out" in ko and "당첨" in ko


def test_the_draw_page_buttons_commit_and_redraw(client, tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = services.draw_create(event=event, name="Lucky", draw_at=event.ends_at,
                                tiers=[services.TierSpec(name="first", winners=2)], actor=factories.TEST_ACTOR,
                                commit=False)
    client.force_login(factories.make_operator(tenant))
    client.post(reverse("admin:draws_draw_step", args=[draw.pk, "commit"]))
    draw.refresh_from_db()
    assert draw.status == "COMMITTED" and draw.seed_sealed
    client.post(reverse("admin:draws_draw_step", args=[draw.pk, "run"]))
    winner = DrawWinner.objects.filter(draw=draw).first()
    services.winner_forfeit(winner=winner, actor=factories.TEST_ACTOR)
    response = client.post(reverse("admin:draws_draw_step", args=[draw.pk, "redraw"]))
    redraw = Draw.objects.get(parent=draw)
    assert response["Location"] == reverse("admin:draws_draw_change", args=[redraw.pk])
    assert (redraw.round, redraw.status) == (2, "COMMITTED")


def test_a_viewer_sees_the_draw_page_without_buttons_and_cannot_post_them(client, tenant):
    draw = committed_draw(ended_event_with(tenant, MEMBERS))
    client.force_login(factories.make_viewer(tenant))
    page = client.get(reverse("admin:draws_draw_change", args=[draw.pk])).content.decode()
    assert 'id="draw-buttons"' not in page
    assert client.post(reverse("admin:draws_draw_step", args=[draw.pk, "run"])).status_code == 403
    assert Draw.objects.get(pk=draw.pk).status == "COMMITTED"


def test_another_tenants_draw_page_and_buttons_are_not_found(client, tenant, other_tenant):
    draw = committed_draw(ended_event_with(other_tenant, MEMBERS))
    client.force_login(factories.make_operator(tenant))
    assert client.post(reverse("admin:draws_draw_step", args=[draw.pk, "run"])).status_code == 404
    assert Draw.objects.get(pk=draw.pk).status == "COMMITTED"
    assert winners_of(draw) == []
