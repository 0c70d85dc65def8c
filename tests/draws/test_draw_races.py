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
