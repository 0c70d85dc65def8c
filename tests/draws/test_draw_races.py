"""R-DRAW-3 under real concurrency: workers running the same draw at once store one set of winners."""
from __future__ import annotations

import pytest
from django.db import connection

from core.exceptions import DomainError
from core.models import AuditLog
from draws import algorithm, services
from draws.models import Draw, DrawWinner
from tests import factories
from tests.coupons.concurrency import race
from tests.draws.helpers import ACTOR, committed_draw, ended_event_with, winners_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]

MEMBERS = [f"m-{i:04d}" for i in range(500)]


def test_eight_workers_running_the_same_draw_at_once_store_exactly_one_set_of_winners():
    event = ended_event_with(factories.make_tenant(), MEMBERS)
    draw = committed_draw(event, [("first", 10), ("second", 100)])

    def run(_):
        try:
            services.draw_run(draw_id=draw.pk, actor=ACTOR)
        except DomainError as exc:
            return exc.code
        finally:
            connection.close()
        return "ok"

    assert set(race(run, range(8), threads=8)) == {"ok"}
    draw.refresh_from_db()
    assert draw.status == Draw.Status.DONE
    assert DrawWinner.objects.filter(draw=draw).count() == 110
    assert winners_of(draw) == algorithm.winners(bytes.fromhex(draw.seed), MEMBERS, [(1, 10), (2, 100)])
    assert AuditLog.objects.filter(action="draw.done", object_id=str(draw.pk)).count() == 1
    assert AuditLog.objects.filter(action="draw.start", object_id=str(draw.pk)).count() == 1


# --- issue #18: only a real resume writes draw.resume ------------------------------------------------------------

def _two_runs_overlapping(monkeypatch):
    """Two runs of one draw, certain to overlap: the first to reach the participant list waits there until the other
    has either reached it too (both went past the start) or been turned away by the draw's run lock."""
    import threading
    from contextlib import contextmanager

    barrier = threading.Barrier(2, timeout=20)
    original_participants, original_lock = services.eligible_participants, services.session_lock

    def participants(draw):
        barrier.wait()
        return original_participants(draw)

    @contextmanager
    def lock(key, **kwargs):
        with original_lock(key, **kwargs) as got:
            if not got:
                barrier.wait()  # turned away: the live run may go on
            yield got

    monkeypatch.setattr(services, "eligible_participants", participants)
    monkeypatch.setattr(services, "session_lock", lock)
    event = ended_event_with(factories.make_tenant(), MEMBERS[:50])
    draw = committed_draw(event, [("first", 5)])

    def run(_):
        try:
            services.draw_run(draw_id=draw.pk, actor=ACTOR)
        finally:
            connection.close()

    race(run, range(2), threads=2)
    draw.refresh_from_db()
    assert draw.status == Draw.Status.DONE
    return {action: AuditLog.objects.filter(action=action, object_id=str(draw.pk)).count()
            for action in ("draw.start", "draw.resume", "draw.done")}


def test_two_overlapping_runs_of_a_draw_write_one_start_and_no_resume(monkeypatch):
    assert _two_runs_overlapping(monkeypatch) == {"draw.start": 1, "draw.resume": 0, "draw.done": 1}


def test_twin_without_the_draws_run_lock_an_overlapping_run_writes_a_false_resume(monkeypatch):
    from contextlib import contextmanager

    @contextmanager
    def no_lock(key, **kwargs):  # the guard removed: every run "gets" the lock
        yield True

    monkeypatch.setattr(services, "session_lock", no_lock)
    counts = _two_runs_overlapping(monkeypatch)
    assert counts["draw.resume"] == 1 and counts["draw.start"] == 1


def test_a_run_that_takes_over_from_a_dead_run_writes_one_resume():
    """A real resume: the draw is RUNNING and nobody holds its run lock (the first run's connection died)."""
    event = ended_event_with(factories.make_tenant(), MEMBERS[:50])
    draw = committed_draw(event, [("first", 5)])
    Draw.objects.filter(pk=draw.pk).update(status=Draw.Status.RUNNING)
    services.draw_run(draw_id=draw.pk, actor=ACTOR)
    assert AuditLog.objects.filter(action="draw.resume", object_id=str(draw.pk)).count() == 1
