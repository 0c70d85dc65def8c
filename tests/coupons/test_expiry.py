"""R-LIFE-3, R-OPS-2: expiry and stale-lock release — chunked, idempotent, never two runs at once."""
from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from core.models import AuditLog
from coupons.services import lifecycle
from coupons.services.issue import RequestContext, issue_from_pool
from coupons.models import CouponCode, CouponPolicy
from tests import factories


def issue(inventory, member):
    return issue_from_pool(inventory=inventory, member_id=member, via="grant", ctx=RequestContext())


@pytest.fixture
def mixed(tenant):
    """Codes past validity (issued and not), one still valid, one used, one locked past validity."""
    inventory, codes = factories.make_pool(tenant, size=6, per_member_limit=6)
    past = timezone.now() - timedelta(minutes=1)
    a, b, c, d = (issue(inventory, "m") for _ in range(4))
    CouponCode.objects.filter(pk__in=[a.pk, b.pk]).update(valid_until=past)
    CouponCode.objects.filter(pk=c.pk).update(status="USED", used_at=past, valid_until=past)
    CouponCode.objects.filter(pk=d.pk).update(status="LOCKED", locked_order_id="o", locked_at=past,
                                              valid_until=past)
    return inventory, {"past": [a, b], "used": c, "locked": d}


def test_expire_marks_issued_codes_past_validity_and_nothing_else(mixed):
    inventory, rows = mixed
    assert lifecycle.coupons_expire(chunk=1) == 2  # chunks of one: the loop goes round
    statuses = dict(CouponCode.objects.filter(inventory=inventory).values_list("pk", "status"))
    assert [statuses[r.pk] for r in rows["past"]] == ["EXPIRED", "EXPIRED"]
    assert statuses[rows["used"].pk] == "USED"
    assert statuses[rows["locked"].pk] == "LOCKED"
    assert sorted(s for s in statuses.values()) == ["AVAILABLE", "AVAILABLE", "EXPIRED", "EXPIRED", "LOCKED", "USED"]
    assert sum(row.after["codes"] for row in AuditLog.objects.filter(action="coupon.expire")) == 2


def test_a_second_run_finds_nothing_to_do(mixed):
    assert lifecycle.coupons_expire() == 2
    assert lifecycle.coupons_expire() == 0


def test_dry_run_counts_and_changes_nothing(mixed, capsys):
    call_command("expire_coupons", "--dry-run")
    assert "expire_coupons: expired=2 dry_run=yes seconds=" in capsys.readouterr().out
    assert not CouponCode.objects.filter(status="EXPIRED").exists()


def test_unissued_codes_expire_with_their_policys_end(tenant):
    inventory, codes = factories.make_pool(tenant, size=3)
    end = CouponPolicy.objects.get(pk=inventory.policy_id).valid_until
    assert lifecycle.coupons_expire(now=end - timedelta(seconds=1)) == 0
    assert lifecycle.coupons_expire(now=end + timedelta(seconds=1)) == 3
    assert set(CouponCode.objects.filter(inventory=inventory).values_list("status", flat=True)) == {"EXPIRED"}


@pytest.mark.django_db(transaction=True)
def test_a_run_while_another_holds_the_lock_does_nothing_and_says_so(capsys):
    tenant = factories.make_tenant()
    inventory, _ = factories.make_pool(tenant, size=1)
    coupon = issue(inventory, "m")
    CouponCode.objects.filter(pk=coupon.pk).update(valid_until=timezone.now() - timedelta(seconds=5))
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"],
                         autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [lifecycle.EXPIRY_LOCK])
        call_command("expire_coupons")
        assert "expire_coupons: already running" in capsys.readouterr().out
        assert CouponCode.objects.get(pk=coupon.pk).status == "ISSUED"
    call_command("expire_coupons")
    assert "expire_coupons: expired=1 seconds=" in capsys.readouterr().out


def test_stale_locks_go_back_to_issued_after_the_ttl(tenant, capsys):
    inventory, _ = factories.make_pool(tenant, size=2, per_member_limit=2)
    old, fresh = issue(inventory, "m"), issue(inventory, "m")
    now = timezone.now()
    CouponCode.objects.filter(pk=old.pk).update(status="LOCKED", locked_order_id="o-1",
                                                locked_at=now - timedelta(hours=2))
    CouponCode.objects.filter(pk=fresh.pk).update(status="LOCKED", locked_order_id="o-2", locked_at=now)
    call_command("release_stale_locks", "--ttl", "3600")
    assert "release_stale_locks: released=1 ttl=3600 seconds=" in capsys.readouterr().out
    assert CouponCode.objects.get(pk=old.pk).status == "ISSUED"
    assert CouponCode.objects.get(pk=old.pk).locked_order_id is None
    assert CouponCode.objects.get(pk=fresh.pk).status == "LOCKED"


def test_the_expiry_job_runs_both_sweeps(mixed):
    from coupons.jobs import expire_job

    assert expire_job(reschedule=False) == 2
