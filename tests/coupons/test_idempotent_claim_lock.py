"""Issue #18 (R-ISS-3, R-NFR-3): a member's claims sent with Idempotency-Keys are never refused by their own lock.

The Idempotency-Key wrapper commits the claim and its stored answer in one outer transaction (core/api/idempotency.py).
The member's Redis lock used to be released when the claim service returned — before that outer commit — so the
member's next claim took the lock, counted the slots without the uncommitted issue, picked the same slot and was
refused by the unique index: ``422 limit_reached`` for a member holding fewer than the limit. The lock is now held
until the wrapper's transaction has ended.

The race is made certain, not likely: the first claim to finish its handler waits, before committing, until the
other claim has either read the member's slot count (the lock was free: the bug) or been refused the lock after that
point (the lock is still held: the fix). The twin removes the fix and shows the false refusal.
"""
from __future__ import annotations

import threading
from collections import Counter

import pytest
import redis.lock

from core.api.views import TenantAPIView
from coupons.services import issue as issuing
from coupons.models import CouponIssue
from tests import factories
from tests.coupons.concurrency import race
from tests.factories import api_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("races")]

MEMBER = "m-idem"


class FirstCommitWaits:
    """The synchronisation described in the module docstring."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cond = threading.Condition()
        self.first: int | None = None  # thread of the claim that finished its handler first
        self.other_ready = False
        original_call, original_slot, original_acquire = (TenantAPIView._call, issuing._next_slot,
                                                          redis.lock.Lock.do_acquire)
        sync = self

        def call(view, handler, request, *args, **kwargs):
            response = original_call(view, handler, request, *args, **kwargs)
            with sync.cond:
                if sync.first is None:
                    sync.first = threading.get_ident()
                    sync.cond.wait_for(lambda: sync.other_ready, timeout=20)
            return response

        def next_slot(*args, **kwargs):
            slot = original_slot(*args, **kwargs)
            sync._other_event()
            return slot

        def do_acquire(lock, token):
            got = original_acquire(lock, token)
            if not got and lock.name.startswith("coupons:lock:member:"):
                sync._other_event()
            return got

        monkeypatch.setattr(TenantAPIView, "_call", call)
        monkeypatch.setattr(issuing, "_next_slot", next_slot)
        monkeypatch.setattr(redis.lock.Lock, "do_acquire", do_acquire)

    def _other_event(self) -> None:
        with self.cond:
            if self.first is not None and threading.get_ident() != self.first:
                self.other_ready = True
                self.cond.notify_all()


def two_idempotent_claims(monkeypatch):
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=10, per_member_limit=3)
    token = factories.make_client(tenant)[1]
    FirstCommitWaits(monkeypatch)

    def claim(i: int):
        return api_for(token).post("/api/v1/claims", {"member_id": MEMBER, "inventory": inventory.public_id},
                                   format="json", HTTP_IDEMPOTENCY_KEY=f"key-{i}")

    responses = race(claim, range(2), threads=2)
    held = CouponIssue.objects.filter(inventory=inventory, member_id=MEMBER).count()
    return responses, held


def test_two_claims_of_one_member_with_their_own_keys_both_succeed_under_a_limit_of_three(monkeypatch):
    responses, held = two_idempotent_claims(monkeypatch)
    assert Counter(r.status_code for r in responses) == {201: 2}, [r.json() for r in responses]
    assert held == 2


def test_twin_releasing_the_member_lock_before_the_idempotent_commit_refuses_a_member_below_the_limit(monkeypatch):
    import core.locks

    monkeypatch.setattr(core.locks, "defer_release", lambda release: False)  # the guard removed
    responses, held = two_idempotent_claims(monkeypatch)
    refused = [r.json() for r in responses if r.status_code != 201]
    assert [r["code"] for r in refused] == ["limit_reached"]  # the false refusal of issue #18 …
    assert held == 1  # … for a member holding one coupon of three
