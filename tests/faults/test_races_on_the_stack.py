"""Fault suite, issue #18: the three remaining defects of the fault-injection run, reproduced on the throwaway stack.

- idempotent claims refused by their own lock (R-ISS-3): 40 members × 3 simultaneous claims, each with its own
  Idempotency-Key, limit 3, through gunicorn — every claim succeeds (the run that found it saw 13 of 120 members get
  a false ``limit_reached``; the deterministic twin is tests/coupons/test_idempotent_claim_lock.py);
- overlapping draw runs (R-DRAW-3): six runs of one draw at once write one ``draw.start``, one ``draw.done`` and no
  ``draw.resume`` (twin: tests/draws/test_draw_races.py);
- webhook jobs (R-RISK-3): a receiver down for three attempts gets the delivery from the same job after backoff.
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.utils import timezone

from core.models import AuditLog
from draws import services as draws
from draws.models import Draw
from tests import factories
from tests.draws.helpers import ACTOR, committed_draw, ended_event_with
from tests.faults import invariants
from tests.faults.harness import Server

# One xdist worker runs the fault suite, one test at a time, on one throwaway stack (tests/faults/conftest.py).
pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]


def test_three_simultaneous_idempotent_claims_per_member_are_never_refused_below_the_limit(on_stack):
    stack = on_stack
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=200, per_member_limit=3)
    token = factories.make_client(tenant)[1]
    server = Server(stack)
    members = [f"m-{i}" for i in range(40)]
    answers = invariants.Answers()
    lock = threading.Lock()

    def member_claims(member: str) -> list[int]:
        statuses = []

        def one(n: int) -> None:
            body = {"member_id": member, "inventory": inventory.public_id}
            barrier_for_member.wait(timeout=30)
            response = server.post("/api/v1/claims", token, body, key=f"{member}-{n}")
            with lock:
                statuses.append(response.status_code)
                answers.record("claim", response, body)

        barrier_for_member = threading.Barrier(3)
        threads = [threading.Thread(target=one, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return statuses

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(member_claims, members))
    server.stop()
    refused = {m: s for m, s in zip(members, results, strict=True) if Counter(s) != {201: 3}}
    assert not refused, refused
    invariants.check(stack.db_url, answers)


def test_six_overlapping_runs_of_one_draw_write_no_resume(on_stack):
    event = ended_event_with(factories.make_tenant(), [f"p-{i:04d}" for i in range(300)])
    draw = committed_draw(event, [("first", 10), ("second", 50)])
    start = threading.Barrier(6)

    def run(_):
        start.wait(timeout=30)
        try:
            draws.draw_run(draw_id=draw.pk, actor=ACTOR)
        finally:
            connection.close()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(run, range(6)))
    # a run turned away by the lock returns at once; the live run finishes the draw
    draw.refresh_from_db()
    assert draw.status == Draw.Status.DONE
    counts = Counter(AuditLog.objects.filter(object_id=str(draw.pk), action__startswith="draw.")
                     .values_list("action", flat=True))
    assert (counts["draw.start"], counts["draw.resume"], counts["draw.done"]) == (1, 0, 1), counts
    invariants.check(on_stack.db_url)


def test_a_webhook_receiver_down_for_three_attempts_gets_the_delivery_from_one_job(on_stack, settings, monkeypatch):
    import risk.jobs
    from risk import budgets
    from risk.models import WebhookDelivery, WebhookEndpoint
    from tests.risk.test_webhooks import DownReceiver

    settings.COUPON_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.COUPON_WEBHOOK_JOB_ATTEMPTS, settings.COUPON_WEBHOOK_JOB_BACKOFF_SECONDS = 5, 0.05
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=1)
    hook = DownReceiver()
    pauses: list[float] = []
    real_sleep = risk.jobs.time.sleep

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        real_sleep(seconds)
        if len(pauses) == 3:
            hook.up()

    monkeypatch.setattr(risk.jobs.time, "sleep", pause)
    try:
        WebhookEndpoint.objects.create(tenant=tenant, name="ops", url=hook.url)
        with transaction.atomic():
            alarm = budgets.raise_alarm(inventory=inventory, budget="issue_count", threshold=80, spent=8, limit=10,
                                        now=timezone.now())
        delivery = WebhookDelivery.objects.get(alarm=alarm)  # its job ran when the alarm committed (jobs inline)
    finally:
        hook.close()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, hook.statuses) == ("DELIVERED", 4, [204])
    assert pauses == [0.05, 0.1, 0.2]
    invariants.check(on_stack.db_url)
