"""R-DRAW-1..3: running a draw — staff and cancelled entries never win, re-runs are idempotent, a crashed run
resumes to the same winners, redraws are new rounds, prizes are granted once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from core.models import AuditLog
from draws import algorithm, services
from draws.exceptions import DrawNotReady, EventNotEnded, ParticipantsChanged
from draws.models import Draw, DrawWinner
from events.models import EventParticipant, EventStaffMember
from tests import factories
from tests.draws.helpers import ACTOR, add_participants, committed_draw, end, ended_event_with, winners_of

pytestmark = pytest.mark.django_db

MEMBERS = [f"m-{i:04d}" for i in range(200)]


def run(draw: Draw) -> Draw:
    return services.draw_run(draw_id=draw.pk, actor=ACTOR)


def test_a_draw_picks_the_recomputable_winners_and_records_the_run(tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = run(committed_draw(event, [("first", 1), ("second", 3)]))
    assert draw.status == Draw.Status.DONE
    assert draw.participants_count == 200
    expected = algorithm.winners(bytes.fromhex(draw.seed), MEMBERS, [(1, 1), (2, 3)])
    assert winners_of(draw) == expected
    assert draw.participants_digest == algorithm.participants_digest(MEMBERS)
    actions = list(AuditLog.objects.filter(object_type="draws.Draw", object_id=str(draw.pk))
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["draw.create", "draw.commit", "draw.start", "draw.done"]


def test_the_seed_hash_is_committed_before_the_draw_and_matches_the_revealed_seed(tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = committed_draw(event)
    assert draw.status == Draw.Status.COMMITTED and len(draw.seed_hash) == 64
    commit_row = AuditLog.objects.get(action="draw.commit", object_id=str(draw.pk))
    assert commit_row.after["seed_hash"] == draw.seed_hash
    draw = run(draw)
    assert algorithm.seed_hash(bytes.fromhex(draw.seed)) == draw.seed_hash == commit_row.after["seed_hash"]


def test_running_twice_never_adds_winners(tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = run(committed_draw(event))
    first = winners_of(draw)
    for _ in range(3):
        run(draw)
    assert winners_of(draw) == first
    assert DrawWinner.objects.filter(draw=draw).count() == 4
    assert AuditLog.objects.filter(action="draw.start", object_id=str(draw.pk)).count() == 1


def test_same_seed_and_participants_give_identical_winners_over_100_reruns_from_the_database(tenant):
    event = ended_event_with(tenant, MEMBERS)
    draw = run(committed_draw(event, [("first", 5), ("second", 20)]))
    stored = winners_of(draw)
    for _ in range(100):
        participants = services.eligible_participants(draw)
        assert algorithm.winners(bytes.fromhex(draw.seed), participants, [(1, 5), (2, 20)]) == stored
    assert len({m for _, _, m in stored}) == 25  # no duplicate winner


def test_two_draws_with_the_same_seed_over_the_same_participants_pick_the_same_winners(tenant):
    event = ended_event_with(tenant, MEMBERS)
    one, two = committed_draw(event), committed_draw(event)
    Draw.objects.filter(pk=two.pk).update(seed_sealed=one.seed_sealed, seed_hash=one.seed_hash)
    assert winners_of(run(one)) == winners_of(run(two))


def test_staff_never_win(tenant):
    event = ended_event_with(tenant, MEMBERS)
    staff = MEMBERS[:150]
    EventStaffMember.objects.bulk_create([EventStaffMember(tenant=tenant, member_id=m) for m in staff])
    draw = run(committed_draw(event, [("all", 60)]))
    won = {m for _, _, m in winners_of(draw)}
    assert len(won) == 50  # only 50 non-staff members remain; all of them win, no staff member does
    assert won == set(MEMBERS[150:])
    assert draw.participants_count == 50


def test_cancelled_entries_never_win(tenant):
    event = factories.make_event(tenant)
    add_participants(event, MEMBERS[:100])
    add_participants(event, MEMBERS[100:], cancelled_at=timezone.now())
    end(event)
    draw = run(committed_draw(event, [("all", 150)]))
    assert {m for _, _, m in winners_of(draw)} == set(MEMBERS[:100])


def test_a_member_with_several_entries_is_one_participant(tenant):
    event = factories.make_event(tenant, entries_per_member=3)
    for entry in (1, 2, 3):
        add_participants(event, ["multi"], entry_no=entry)
    add_participants(event, ["single"])
    end(event)
    draw = run(committed_draw(event, [("all", 5)]))
    assert draw.participants_count == 2
    assert sorted(m for _, _, m in winners_of(draw)) == ["multi", "single"]


def test_a_crash_mid_draw_then_a_rerun_gives_the_same_winners_as_an_uninterrupted_run(tenant, monkeypatch):
    event = ended_event_with(tenant, MEMBERS)
    clean = committed_draw(event, [("first", 3), ("second", 40)])
    crashed = committed_draw(event, [("first", 3), ("second", 40)])
    Draw.objects.filter(pk=crashed.pk).update(seed_sealed=clean.seed_sealed, seed_hash=clean.seed_hash)
    expected = winners_of(run(clean))

    monkeypatch.setattr(services, "WINNER_CHUNK", 10)
    real_insert, calls = services._insert_winners, []

    def crash_after_two_chunks(draw, rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        real_insert(draw, rows)

    monkeypatch.setattr(services, "_insert_winners", crash_after_two_chunks)
    with pytest.raises(RuntimeError):
        run(crashed)
    crashed.refresh_from_db()
    assert crashed.status == Draw.Status.RUNNING
    assert DrawWinner.objects.filter(draw=crashed).count() == 20
    monkeypatch.setattr(services, "_insert_winners", real_insert)

    resumed = run(crashed)
    assert resumed.status == Draw.Status.DONE
    assert winners_of(resumed) == expected
    assert DrawWinner.objects.filter(draw=crashed).count() == 43
    assert AuditLog.objects.filter(action="draw.resume", object_id=str(crashed.pk)).count() == 1


def test_a_rerun_refuses_to_draw_from_a_changed_participant_list(tenant, monkeypatch):
    event = ended_event_with(tenant, MEMBERS)
    draw = committed_draw(event)
    monkeypatch.setattr(services, "_insert_winners", lambda d, rows: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        run(draw)
    monkeypatch.undo()
    EventStaffMember.objects.create(tenant=tenant, member_id=MEMBERS[0])
    with pytest.raises(ParticipantsChanged):
        run(draw)
    draw.refresh_from_db()
    assert draw.status == Draw.Status.FAILED
    assert DrawWinner.objects.filter(draw=draw).count() == 0


def test_a_draw_waits_for_its_event_to_end_and_for_its_time(tenant):
    event = factories.make_event(tenant)
    add_participants(event, MEMBERS)
    draw = committed_draw(event)
    with pytest.raises(EventNotEnded):
        run(draw)
    end(event)
    later = committed_draw(event, draw_at=timezone.now() + timedelta(hours=1))
    with pytest.raises(DrawNotReady):
        run(later)
    assert services.draw_run(draw_id=later.pk, actor=ACTOR, before_draw_at=True).status == Draw.Status.DONE
    assert Draw.objects.get(pk=draw.pk).status == Draw.Status.COMMITTED


def test_a_redraw_is_a_new_committed_round_that_excludes_earlier_winners(tenant):
    event = ended_event_with(tenant, MEMBERS[:10])
    draw = run(committed_draw(event, [("first", 2), ("second", 3)]))
    forfeited = draw.winners.order_by("tier__position", "rank")[1]
    services.winner_forfeit(winner=forfeited, actor=ACTOR)
    redraw = services.draw_redraw_create(draw=draw, actor=ACTOR)
    assert (redraw.round, redraw.parent_id, redraw.status) == (2, draw.pk, Draw.Status.COMMITTED)
    assert redraw.seed_hash and redraw.seed_hash != draw.seed_hash
    assert list(redraw.tiers.values_list("position", "name", "winners")) == [(1, "first", 1)]
    redraw = run(redraw)
    earlier = {m for _, _, m in winners_of(draw)}
    (new_winner,) = [m for _, _, m in winners_of(redraw)]
    assert new_winner not in earlier
    assert redraw.participants_count == 5
    assert AuditLog.objects.filter(action="draw.redraw", object_id=str(redraw.pk)).count() == 1
    assert AuditLog.objects.filter(action="draw.forfeit", object_id=str(forfeited.pk)).count() == 1
    with pytest.raises(DrawNotReady):
        services.draw_redraw_create(draw=draw, actor=ACTOR)


def test_winners_of_a_tier_with_an_inventory_get_a_coupon_once(tenant, django_capture_on_commit_callbacks):
    prize_event = factories.make_event(tenant)
    inventory, _ = factories.make_pool(tenant, size=5, event=prize_event)
    event = ended_event_with(tenant, MEMBERS[:20])
    draw = committed_draw(event, [("coupon", 3), ("thanks", 2)], inventories={"coupon": inventory})
    with django_capture_on_commit_callbacks(execute=True):
        run(draw)
    granted = DrawWinner.objects.filter(draw=draw, coupon__isnull=False)
    assert granted.count() == 3
    assert {w.coupon.member_id for w in granted.select_related("coupon")} == set(granted.values_list("member_id",
                                                                                                   flat=True))
    assert DrawWinner.objects.filter(draw=draw, tier__position=2, coupon__isnull=False).count() == 0
    again = services.draw_grant_prizes(draw_id=draw.pk, actor=ACTOR)
    assert (again.granted, again.failed) == (0, {})
    from coupons.models import CouponCode

    assert CouponCode.objects.filter(inventory=inventory, status="ISSUED").count() == 3


def test_run_due_draws_commits_scheduled_seeds_and_runs_due_draws_once(tenant):
    event = ended_event_with(tenant, MEMBERS)
    scheduled = committed_draw(event, commit=False)
    waiting_event = factories.make_event(tenant)
    waiting = committed_draw(waiting_event)
    assert scheduled.status == Draw.Status.SCHEDULED and scheduled.seed_hash == ""

    from io import StringIO

    out = StringIO()
    call_command("run_due_draws", "--dry-run", stdout=out)
    assert out.getvalue().strip().startswith(  # R-OPS-2 summary line
        "run_due_draws: committed=1 started=0 resumed=0 waiting=1 grants=0 dry_run=yes seconds=")
    assert Draw.objects.get(pk=scheduled.pk).status == Draw.Status.SCHEDULED
    call_command("run_due_draws", stdout=StringIO())
    assert Draw.objects.get(pk=scheduled.pk).status == Draw.Status.COMMITTED  # hash published; drawn next pass
    out = StringIO()
    call_command("run_due_draws", stdout=out)
    assert " started=1 " in out.getvalue()
    assert Draw.objects.get(pk=scheduled.pk).status == Draw.Status.DONE
    assert Draw.objects.get(pk=waiting.pk).status == Draw.Status.COMMITTED
    call_command("run_due_draws", stdout=StringIO())
    assert DrawWinner.objects.filter(draw=scheduled).count() == 4


def test_run_due_draws_resumes_a_draw_stuck_running(tenant, monkeypatch):
    event = ended_event_with(tenant, MEMBERS)
    draw = committed_draw(event)
    monkeypatch.setattr(services, "_insert_winners", lambda d, rows: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        run(draw)
    monkeypatch.undo()
    call_command("run_due_draws")  # started just now: not yet considered crashed
    assert Draw.objects.get(pk=draw.pk).status == Draw.Status.RUNNING
    Draw.objects.filter(pk=draw.pk).update(started_at=timezone.now() - timedelta(minutes=11))
    call_command("run_due_draws")
    assert Draw.objects.get(pk=draw.pk).status == Draw.Status.DONE
    assert DrawWinner.objects.filter(draw=draw).count() == 4


def test_an_unrelated_participant_row_does_not_leak_into_another_event(tenant, other_tenant):
    event = ended_event_with(tenant, MEMBERS[:3])
    ended_event_with(other_tenant, ["foreign-1", "foreign-2"])
    EventParticipant.objects.create(tenant=tenant, event=factories.make_event(tenant), member_id="other-event",
                                    joined_at=timezone.now())
    draw = run(committed_draw(event, [("all", 10)]))
    assert sorted(m for _, _, m in winners_of(draw)) == MEMBERS[:3]


def test_run_due_draws_hands_over_prize_grants_whose_job_never_ran(tenant, monkeypatch):
    from coupons.models import CouponCode

    prize_event = factories.make_event(tenant)
    inventory, _ = factories.make_pool(tenant, size=5, event=prize_event)
    event = ended_event_with(tenant, MEMBERS[:20])
    draw = committed_draw(event, [("coupon", 2)], inventories={"coupon": inventory})
    run(draw)  # on_commit callbacks are not run here: the grant job "never ran"
    assert DrawWinner.objects.filter(draw=draw, coupon__isnull=False).count() == 0
    call_command("run_due_draws")  # finished just now: its own job may still be on its way
    assert DrawWinner.objects.filter(draw=draw, coupon__isnull=False).count() == 0
    Draw.objects.filter(pk=draw.pk).update(finished_at=timezone.now() - timedelta(minutes=11))
    call_command("run_due_draws")
    call_command("run_due_draws")
    assert DrawWinner.objects.filter(draw=draw, coupon__isnull=False).count() == 2
    assert CouponCode.objects.filter(inventory=inventory, status="ISSUED").count() == 2
