"""R-LIFE: the lifecycle services against a model of SPEC §4. Hypothesis drives random sequences of lock, release,
redeem, refund (full or partial), revoke, the passing of the validity end and the expiry job; after every step the
service's answer (success or error code) and the stored state must be exactly what the model predicts."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from core.exceptions import DomainError
from coupons.services import lifecycle
from coupons.discounts import validate_order_payload
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode, CouponUsage
from tests import factories

ORDERS = st.sampled_from(["o-1", "o-2"])
_members = itertools.count()


def outcome(fn, **kwargs):
    try:
        fn(**kwargs)
        return "ok"
    except DomainError as exc:
        return exc.code


@pytest.mark.django_db
def test_lifecycle_matches_the_model(tenant):
    inventory, _ = factories.make_pool(tenant, size=400)
    ctx = RequestContext()

    class Lifecycle(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.member = f"m-{next(_members)}"
            self.code = issue_from_pool(inventory=inventory, member_id=self.member, via="grant", ctx=ctx).code
            self.status, self.order, self.past = "ISSUED", None, False

        def usable_refusal(self, order):
            if self.status == "EXPIRED" or (self.past and self.status in ("ISSUED", "LOCKED")):
                return "expired"
            if self.status == "USED":
                return "already_used"
            if self.status == "LOCKED" and self.order != order:
                return "locked_by_other_order"
            if self.status not in ("ISSUED", "LOCKED"):
                return "invalid_state"
            return None

        @rule(order=ORDERS)
        def lock(self, order):
            expected = self.usable_refusal(order) or "ok"
            got = outcome(lifecycle.coupon_lock, tenant=tenant, code=self.code, member_id=self.member,
                          order_id=order, order=validate_order_payload(factories.order(order_id=order)), ctx=ctx)
            assert got == expected
            if got == "ok":
                self.status, self.order = "LOCKED", order

        @rule(order=ORDERS)
        def release(self, order):
            expected = ("invalid_state" if self.status != "LOCKED"
                        else "locked_by_other_order" if self.order != order else "ok")
            assert outcome(lifecycle.coupon_release, tenant=tenant, code=self.code, order_id=order, ctx=ctx) == expected
            if expected == "ok":
                self.status, self.order = "ISSUED", None

        @rule(order=ORDERS)
        def redeem(self, order):
            expected = self.usable_refusal(order) or "ok"
            got = outcome(lifecycle.coupon_redeem, tenant=tenant, code=self.code, member_id=self.member,
                          order_id=order, order=validate_order_payload(factories.order(order_id=order)), ctx=ctx)
            assert got == expected
            if got == "ok":
                self.status, self.order = "USED", order

        @rule(order=ORDERS, full=st.booleans())
        def refund(self, order, full):
            expected = ("invalid_state" if self.status != "USED"
                        else "order_mismatch" if self.order != order else "ok")
            assert outcome(lifecycle.coupon_refund, tenant=tenant, code=self.code, order_id=order, full=full,
                           ctx=ctx) == expected
            if expected == "ok" and full:
                self.status, self.order = ("EXPIRED" if self.past else "ISSUED"), None

        @rule()
        def revoke(self):
            expected = {"LOCKED": "locked_by_other_order", "USED": "already_used",
                        "ISSUED": "ok"}.get(self.status, "invalid_state")
            assert outcome(lifecycle.coupon_revoke, tenant=tenant, code=self.code, reason="test", ctx=ctx) == expected
            if expected == "ok":
                self.status = "REVOKED"

        @rule()
        def validity_ends(self):
            CouponCode.objects.filter(code=self.code).update(valid_until=timezone.now() - timedelta(seconds=1))
            self.past = True

        @rule()
        def expiry_job_runs(self):
            lifecycle.coupons_expire()
            if self.past and self.status == "ISSUED":
                self.status = "EXPIRED"

        @invariant()
        def stored_state_matches_the_model(self):
            row = CouponCode.objects.get(code=self.code)
            assert row.status == self.status
            assert row.locked_order_id == (self.order if self.status == "LOCKED" else None)
            active = CouponUsage.objects.filter(coupon=row, refunded_at__isnull=True)
            assert active.count() == (1 if self.status == "USED" else 0)
            if self.status == "USED":
                assert active.get().order_id == self.order

    run_state_machine_as_test(Lifecycle, settings=hyp_settings(max_examples=60, stateful_step_count=25,
                                                               deadline=None))
